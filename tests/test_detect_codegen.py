"""The generated C's ``mf_detect`` gives exactly the reference decoder's boxes (`detect.fixed` on the
reference runtime's outputs): several YOLO-style models (three scales as YOLOv3, one scale, a
non-square input, float I/O), random and extreme inputs, thresholds that leave many overlapping
candidates for NMS, per-class and class-agnostic NMS, a candidate buffer smaller than the
candidates; the host build under AddressSanitizer, and Cortex-M4 under QEMU (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codegen_support import HAVE_ARM, random_inputs
from detect_support import c_boxes, yolo_graph, yolo_head
from mcuforge.cli import main
from mcuforge.codegen.build import run_host_console
from mcuforge.detect.c_module import parse_box_lines
from mcuforge.detect.fixed import DetectConfig
from mcuforge.detect.head import head_to_json
from mcuforge.detect.run import detect_reference, make_detector
from mcuforge.frontends.tflite_writer import write_tflite

CASES = {
    "yolov3-3-scales": (dict(), DetectConfig(score_threshold=0.3)),
    "one-scale-5-classes-agnostic": (dict(input_size=(40, 40), strides=(8,), classes=5,
                                          anchors_per_output=2, seed=3),
                                     DetectConfig(score_threshold=0.2, iou_threshold=0.3,
                                                  class_agnostic=True)),
    "non-square-float-io-small-buffer": (dict(input_size=(48, 80), strides=(16, 32), classes=3,
                                              seed=5, float_io=True),
                                         DetectConfig(score_threshold=0.05, iou_threshold=0.5,
                                                      max_candidates=40, max_boxes=25)),
}


def _reference(graph, head, inputs, config):
    detector = make_detector(graph, head)
    return [detect_reference(detector, x[0], config) for x in inputs]


@pytest.mark.parametrize("case", sorted(CASES))
def test_c_boxes_equal_the_reference_decoder(case, tmp_path):
    arguments, config = CASES[case]
    graph = yolo_graph(**arguments)
    head = yolo_head(**{k: v for k, v in arguments.items() if k not in ("seed", "float_io")})
    inputs = random_inputs(make_detector(graph, head).graph, 3, seed=7)
    expected = _reference(graph, head, inputs, config)
    got = c_boxes(graph, head, [x[0] for x in inputs], tmp_path, config)
    assert len(got) == len(expected)
    for want, have in zip(expected, got):
        assert np.array_equal(want, have), (want[:5], have[:5])
    random_boxes = expected[2:]
    assert all(len(b) >= 5 for b in random_boxes)  # real detections, not an empty comparison
    no_nms = DetectConfig(config.score_threshold, iou_threshold=1.0, max_boxes=10**6,
                          max_candidates=10**6, class_agnostic=config.class_agnostic)
    candidates = _reference(graph, head, inputs[2:], no_nms)
    assert all(len(c) > len(b) for c, b in zip(candidates, random_boxes))  # NMS dropped boxes
    if config.max_candidates < DetectConfig().max_candidates:  # the bounded ranking is exercised
        assert any(len(c) > config.max_candidates for c in candidates)


def test_compile_with_head_prints_the_reference_boxes(tmp_path):
    graph, head = yolo_graph(float_io=True, seed=2), yolo_head()
    model, head_path = tmp_path / "yolo.tflite", tmp_path / "head.json"
    write_tflite(graph, model)
    head_path.write_text(json.dumps(head_to_json(head)))
    out = tmp_path / "project"
    assert main(["compile", str(model), "-o", str(out), "--core", "host", "--head", str(head_path),
                 "--score", "0.3"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["postprocess"]["name"] == "detect" and report["postprocess"]["score_threshold"] == 0.3
    detector = make_detector(graph, head)
    inputs = [x[0] for x in random_inputs(detector.graph, 2, seed=3)]
    _, console = run_host_console(out / "build" / "host" / "app", b"".join(x.tobytes() for x in inputs),
                                  report["output_bytes"], len(inputs))
    printed = parse_box_lines(console)
    config = DetectConfig(score_threshold=0.3)
    assert [len(b) for b in printed] == [len(detect_reference(detector, x, config)) for x in inputs]
    for x, boxes in zip(inputs, printed):
        assert np.array_equal(boxes, detect_reference(detector, x, config))
    assert sum(len(b) for b in printed) > 0


def test_compile_refuses_a_head_that_does_not_match(tmp_path, capsys):
    from conftest import one_error_line

    graph = yolo_graph()
    model, head_path = tmp_path / "yolo.tflite", tmp_path / "head.json"
    write_tflite(graph, model)
    head_path.write_text(json.dumps(head_to_json(yolo_head(classes=4))))
    assert main(["compile", str(model), "-o", str(tmp_path / "out"), "--core", "host",
                 "--head", str(head_path), "--no-measure"]) == 2
    line = one_error_line(capsys)
    assert "channels" in line and "27 = 3 anchors x (5 + 4 classes)" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc or qemu-system-arm missing")
def test_cortex_m4_boxes_equal_the_reference_decoder(tmp_path):
    arguments, config = CASES["yolov3-3-scales"]
    graph, head = yolo_graph(**arguments), yolo_head()
    inputs = random_inputs(make_detector(graph, head).graph, 2, seed=11)
    expected = _reference(graph, head, inputs, config)
    got = c_boxes(graph, head, [x[0] for x in inputs], tmp_path, config, qemu_target="cortex-m4")
    assert len(got) == len(expected) and sum(len(b) for b in expected) > 10
    for want, have in zip(expected, got):
        assert np.array_equal(want, have)
