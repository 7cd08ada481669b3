"""Analytic figures of a graph, no file and no arena involved: MACs, parameters and Flash (`cost`),
tensor lifetimes (`liveness`, computed once and read by everything that counts memory), which op
may write over which input (`overlap`), the memory-accounting switches (`conventions`), the
analytic activation peak per op, block and graph (`memory`), receptive fields and patch windows
(`receptive`), the whole profile `mcuforge profile` prints (`profile`), and latency and energy per
inference on a board from counted instructions or measured cycles (`latency_energy`).

May import: errors, the foundation modules (atomic, reference, targets, layers), stages, arith, ir,
ops, models (the layers below it in `mcuforge.layers`); not planner, patch, runtime, codegen,
frontends or anything above."""
