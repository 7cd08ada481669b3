"""PyTorch quantisation of a `SpecNet` to an int8 IR graph: batch-norm folding (`bn_fold`), range
observers (`observers`) and calibration (`calibrate`), weight quantisation (`weights`, int8 and
int4), post-training quantisation (`ptq`), quantisation-aware training (`qat`), pretrained MCUNet
weights (`pretrained`) and evaluation of a quantised graph on float data (`inference`, through
the reference runtime).

May import: every layer below it in `mcuforge.layers` (errors, the foundation modules (atomic,
reference, targets, layers), stages, arith, ir, ops, models, analysis, planner, patch, runtime,
codegen, frontends, rivals, data); not train (its peer in the same layer), report or anything
above."""
