"""Object detection post-processing: YOLO-style heads and their decoding, in the reference runtime and
in the generated C.

- `head`: `YoloOutput` / `YoloHead` (anchors, strides, classes per output scale), the head JSON file.
- `postprocess`: float decoding (training and evaluation in Python), the integer decoding of the
  int8 outputs through 256-entry lookup tables (`detect_int8`, bit-identical with the generated C's
  ``mf_detect``), score threshold, NMS, and the letterbox transform back to the image's pixels.
- `metrics`: mAP@0.5 (VOC all-point) and COCO-style mAP@[.5:.95] (equal to pycocotools').
- `anchors`: anchor sizes by k-means over a data set's box shapes.

May import: errors, atomic, reference, targets, arith, ir, ops, runtime, codegen (the layers below it
in `mcuforge.layers`); not frontends or anything above."""
