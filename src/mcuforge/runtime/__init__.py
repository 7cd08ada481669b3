"""The int8 reference runtime, bit-exact with TensorFlow Lite Micro's reference kernels: the
interpreter that runs a graph op by op (`reference`, with each op's numpy kernel from its op module,
`mcuforge.ops`) and patch-based execution that must give the layer-based output exactly (`patch`, and `multistage` for schedules of several fused
stages). The generated C is checked against it.

May import: errors, the foundation modules (atomic, reference, targets, layers), stages, arith, ir,
ops, models, analysis, planner, patch (the layers below it in `mcuforge.layers`); not codegen,
frontends or anything above."""
