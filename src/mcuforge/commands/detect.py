"""`mcuforge detect MODEL.tflite IMAGE [-o boxes.png] [--json] [--anchors head.json]`.

Letterboxes IMAGE to the model's input, quantises it, runs the int8 reference runtime, decodes the
YOLO-style outputs with the integer decoder (the boxes the generated C's ``mf_detect`` gives), NMS,
and maps the boxes back to IMAGE's pixels. The head (anchors, strides, classes per output; format in
`mcuforge.detect.head`) comes from ``--anchors`` or, for a model mcuforge trained, from
``MODEL.head.json`` beside the model. ``--json`` prints ``[[x0, y0, x1, y1, score, class], ...]``;
``-o`` draws the boxes on the image; otherwise one line per box.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..detect.fixed import DetectConfig
from ..detect.head import HeadError, load_head_json, sidecar_head_path
from ..detect.run import detect_image, draw_boxes, load_image, make_detector
from ..errors import McuforgeError
from ..frontends.load import load_graph
from ..ops.support import require_executable


def _head_path(model: Path, anchors: Path | None) -> Path:
    if anchors is not None:
        return anchors
    sidecar = sidecar_head_path(model)
    if not sidecar.exists():
        raise HeadError(f"{model}: no detection head; give --anchors head.json (anchors, strides and "
                        f"classes per output) or put {sidecar.name} beside the model")
    return sidecar


@click.command("detect")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Draw the boxes on the image into this file (.png, .jpg).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the boxes as JSON [[x0, y0, x1, y1, score, class], ...] (image pixels).")
@click.option("--anchors", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Head JSON (input_size, input_range; per output: stride, anchors, num_classes) "
                   "for a model made by another tool (default: MODEL.head.json).")
@click.option("--score", "score", type=float, default=DetectConfig.score_threshold, show_default=True,
              help="Score threshold (objectness x class probability).")
@click.option("--iou", "iou", type=float, default=DetectConfig.iou_threshold, show_default=True,
              help="NMS IoU threshold: a box overlapping a better one by more is dropped.")
@click.option("--max-boxes", type=int, default=DetectConfig.max_boxes, show_default=True,
              help="The most boxes kept.")
@click.option("--class-agnostic", is_flag=True, help="NMS across classes instead of per class.")
def command(model: Path, image: Path, output: Path | None, as_json: bool, anchors: Path | None,
            score: float, iou: float, max_boxes: int, class_agnostic: bool) -> None:
    """Detect objects in IMAGE with the int8 detector MODEL (reference runtime)."""
    config = DetectConfig(score_threshold=score, iou_threshold=iou, max_boxes=max_boxes,
                          class_agnostic=class_agnostic)
    head = load_head_json(_head_path(model, anchors))
    pixels = load_image(image)
    graph = load_graph(str(model))
    if graph.metadata.get("quantisation") == "float" or graph.metadata.get("source") == "torch.export":
        raise McuforgeError(f"{model} is a float model; detection runs int8 models (.tflite)")
    graph = require_executable(graph, str(model), c_code=False)
    detector = make_detector(graph, head)
    boxes = detect_image(detector, pixels, config)
    rows = [[round(float(v), 2) for v in box[:4]] + [round(float(box[4]), 4), int(box[5])]
            for box in boxes]
    if output is not None:
        draw_boxes(pixels, boxes, output)
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for row in rows:
            click.echo(f"class {row[5]} score {row[4]:.4f} box [{row[0]}, {row[1]}, {row[2]}, {row[3]}]")
        click.echo(f"{len(rows)} boxes" + (f"; drew them in {output}" if output is not None else ""))
