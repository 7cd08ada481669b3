"""Model file formats only: the `.tflite` reader (`tflite`, with `tflite_decode`, `tflite_fold`,
`tflite_blocks`, `tflite_schema`, `tflite_options`) and writer (`tflite_writer`),
ProxylessNAS/MCUNet JSON configs (`proxyless_json`), and `load`, which turns a user's MODEL
argument (zoo name, DSL spec string, JSON config or .tflite path) into a `Graph`. The DSL and the
zoo live in `models`.

May import: errors, the foundation modules (atomic, reference, targets, layers), stages, arith, ir,
ops, models, analysis, planner, patch, runtime, codegen (the layers below it in `mcuforge.layers`);
not rivals, data, quant, train or anything above."""
