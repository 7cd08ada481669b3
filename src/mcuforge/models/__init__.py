"""Model descriptions: the block-string DSL (`dsl`), the model zoo and its families (`zoo`,
`zoo_families`, `zoo_redistributed`), and the two builders from a spec, `spec_graph` (spec -> IR
graph) and `spec_torch` (spec -> PyTorch module). Frontends, NAS, training and quantisation all
describe networks with these.

May import: errors, the foundation modules (atomic, reference, targets, layers), stages, arith, ir,
ops (the layers below it in `mcuforge.layers`); not frontends, analysis or anything above."""
