"""Object detection post-processing: YOLO-style heads and their decoding, in the reference runtime and
in the generated C.

- `head`: `YoloOutput` / `YoloHead` (anchors, strides, classes per output scale), the head JSON file.
- `fixed`: the integer decoding of int8 outputs through 256-entry lookup tables, threshold, ranking
  and NMS (`detect_fixed`): the one definition the C's ``mf_detect`` follows bit for bit.
- `postprocess`: the float decoding (training and evaluation in Python), `detect_int8`, matching a
  head to a model's outputs; `letterbox`: image <-> model input.
- `c_module`: ``postprocess/mf_detect.{h,c}`` of a generated project (a `codegen.postprocess`
  module) and the boxes its runners print; `run`: images through the int8 reference runtime, and
  drawing; `mcu`: images through a compiled project (host or QEMU).
- `metrics`: mAP@0.5 (VOC all-point) and COCO-style mAP@[.5:.95] (equal to pycocotools').
- `anchors`: anchor sizes by k-means over a data set's box shapes.

May import: errors, atomic, reference, targets, arith, ir, ops, runtime, codegen (the layers below it
in `mcuforge.layers`); not frontends or anything above."""
