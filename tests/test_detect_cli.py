"""`mcuforge detect`: a YOLOv3-style int8 .tflite "made by another tool" (three output scales, strides
8/16/32, float I/O as converters write it, random weights) with its anchors in a head JSON; boxes
in the image's pixels as JSON and drawn; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import one_error_line
from detect_support import yolo_graph, yolo_head
from mcuforge.cli import main
from mcuforge.detect.fixed import DetectConfig
from mcuforge.detect.head import head_to_json
from mcuforge.detect.run import detect_image, load_image, make_detector
from mcuforge.frontends.load import load_graph
from mcuforge.frontends.tflite_writer import write_tflite

Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def files(tmp_path):
    """model.tflite, head.json and a 100 x 60 photo-like image (smooth gradients and a block)."""
    model, head = tmp_path / "yolo.tflite", tmp_path / "head.json"
    write_tflite(yolo_graph(float_io=True, seed=4), model)
    head.write_text(json.dumps(head_to_json(yolo_head())))
    yy, xx = np.mgrid[0:60, 0:100]
    pixels = np.stack([xx * 2.5, yy * 4.0, (xx + yy) * 1.5], axis=-1).astype(np.uint8)
    pixels[20:45, 30:70] = (250, 30, 30)
    image = tmp_path / "photo.png"
    Image.fromarray(pixels).save(image)
    return model, head, image


def test_json_boxes_are_the_reference_decoders_in_image_pixels(files, tmp_path, capsys):
    model, head, image = files
    drawn = tmp_path / "boxes.png"
    assert main(["detect", str(model), str(image), "--anchors", str(head), "--json", "--score",
                 "0.3", "-o", str(drawn)]) == 0
    rows = json.loads(capsys.readouterr().out)
    detector = make_detector(load_graph(str(model)), yolo_head())
    expected = detect_image(detector, load_image(image), DetectConfig(score_threshold=0.3))
    assert len(rows) == len(expected) > 0
    assert np.allclose(np.asarray(rows), expected, atol=0.006)
    boxes = np.asarray(rows)
    assert boxes[:, [0, 2]].min() >= 0 and boxes[:, [0, 2]].max() <= 100
    assert boxes[:, [1, 3]].min() >= 0 and boxes[:, [1, 3]].max() <= 60
    assert all(float(r[5]).is_integer() and 0 <= r[5] < 2 for r in rows)
    with Image.open(drawn) as picture:
        assert picture.size == (100, 60)
    assert main(["detect", str(model), str(image), "--anchors", str(head), "--json", "--score",
                 "0.3", "--iou", "0.1"]) == 0
    assert len(json.loads(capsys.readouterr().out)) < len(rows)  # a lower IoU suppresses more


def test_head_beside_the_model_is_the_default(files, capsys):
    model, head, image = files
    assert main(["detect", str(model), str(image), "--json"]) == 2
    assert "--anchors" in one_error_line(capsys)
    shutil.copy(head, model.with_suffix(".head.json"))
    assert main(["detect", str(model), str(image)]) == 0
    assert capsys.readouterr().out.strip().endswith("boxes")


def test_bad_input_is_one_line(files, tmp_path, capsys):
    model, head, image = files
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert main(["detect", str(model), str(text), "--anchors", str(head)]) == 2
    line = one_error_line(capsys)
    assert str(text) in line and "not an image" in line
    broken = tmp_path / "broken.json"
    broken.write_text('{"input_size": [64, 64], "outputs": [')
    assert main(["detect", str(model), str(image), "--anchors", str(broken)]) == 2
    line = one_error_line(capsys)
    assert str(broken) in line and "JSON" in line
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(head_to_json(yolo_head(classes=3))))
    assert main(["detect", str(model), str(image), "--anchors", str(wrong)]) == 2
    line = one_error_line(capsys)
    assert "output tensor" in line and "24 = 3 anchors x (5 + 3 classes)" in line
    two = tmp_path / "two.json"
    two.write_text(json.dumps(head_to_json(yolo_head(strides=(8, 16)))))
    assert main(["detect", str(model), str(image), "--anchors", str(two)]) == 2
    assert "the head has 2 outputs, the model has 3" in one_error_line(capsys)
    assert main(["detect", str(model), str(image), "--anchors", str(head), "--score", "2"]) == 2
    assert "score threshold" in one_error_line(capsys)
