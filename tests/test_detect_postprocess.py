"""Detection post-processing in Python: the head JSON, the decoders on hand-made outputs whose boxes
are known, thresholds, NMS (per class, class-agnostic, ties), output matching and the letterbox."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcuforge.detect.fixed import DetectConfig, detect_fixed, output_tables
from mcuforge.detect.head import (HeadError, YoloHead, YoloOutput, load_head_json, save_head_json,
                                  sidecar_head_path)
from mcuforge.detect.postprocess import (boxes_to_image, decode_float, detect_float, detect_int8,
                                         letterbox_image, letterbox_transform, match_outputs)

SCALE, ZERO = 1 / 16, 0  # q / 16: exact in the tables' input
HEAD = YoloHead((YoloOutput(8, ((10.0, 13.0), (16.0, 30.0)), 3),
                 YoloOutput(16, ((30.0, 61.0),), 3)), (48, 64))


def _blank(head: YoloHead) -> list[np.ndarray]:
    """Outputs where nothing is detected: every objectness at the minimum."""
    outputs = []
    for index, spec in enumerate(head.outputs):
        array = np.zeros(head.output_shape(index), dtype=np.int8)
        array.reshape(*array.shape[:3], len(spec.anchors), -1)[..., 4] = -128
        outputs.append(array)
    return outputs


def _put(outputs, output: int, gy: int, gx: int, anchor: int, t: tuple[int, int, int, int],
         obj: int, logits: tuple[int, ...]) -> None:
    cells = outputs[output].reshape(*outputs[output].shape[:3], -1, 5 + len(logits))
    cells[0, gy, gx, anchor] = (*t, obj, *logits)


def test_hand_made_box_decodes_to_its_known_place():
    outputs = _blank(HEAD)
    _put(outputs, 0, 2, 3, 1, (0, 0, 0, 4), 127, (-128, 127, -128))  # th = 1/4
    fixed = detect_fixed(outputs, [(SCALE, ZERO)] * 2, HEAD, DetectConfig(score_threshold=0.5))
    assert fixed.shape == (1, 6)
    x0, y0, x1, y1, score, cls = fixed[0]
    assert (x0 + x1) == 2 * 28 * 256  # cx = (0.5 + 3) * 8, exactly in Q8
    assert x1 - x0 == 16 * 256 and cls == 1
    assert abs((y1 - y0) / 256 - 30 * math.exp(0.25)) < 1 / 128
    assert abs((y0 + y1) / 512 - 20) <= 1 / 256
    sigmoid = 1 / (1 + math.exp(-127 / 16))
    assert abs(score / 32768 - sigmoid * sigmoid) < 1e-4
    floats = detect_float([(o.astype(np.float64) - ZERO) * SCALE for o in outputs], HEAD,
                          DetectConfig(score_threshold=0.5))
    assert np.allclose(floats, detect_int8(outputs, [(SCALE, ZERO)] * 2, HEAD,
                                           DetectConfig(score_threshold=0.5)), atol=1 / 64)


def test_boxes_are_clipped_to_the_input_and_decode_float_is_not():
    outputs = _blank(HEAD)
    _put(outputs, 1, 0, 0, 0, (0, 0, 48, 48), 127, (127, 0, 0))  # w = 30 e^3: wider than 64
    boxes = detect_int8(outputs, [(SCALE, ZERO)] * 2, HEAD, DetectConfig(score_threshold=0.5))
    assert boxes[0, 0] == 0 and boxes[0, 2] == 64 and boxes[0, 1] == 0
    decoded = decode_float([(o.astype(np.float64) - ZERO) * SCALE for o in outputs], HEAD)
    assert decoded.shape == (8 * 6 * 2 + 3 * 4, 4 + 3)
    assert decoded[:, 0].min() < 0


def test_threshold_drops_low_scores():
    outputs = _blank(HEAD)
    _put(outputs, 0, 1, 1, 0, (0, 0, 0, 0), 0, (0, -128, -128))  # 0.5 * 0.5 = 0.25
    assert len(detect_fixed(outputs, [(SCALE, ZERO)] * 2, HEAD, DetectConfig(0.25))) == 1
    assert len(detect_fixed(outputs, [(SCALE, ZERO)] * 2, HEAD, DetectConfig(0.26))) == 0


def _two_overlapping(classes: tuple[int, int]) -> list[np.ndarray]:
    outputs = _blank(HEAD)
    one_hot = [tuple(127 if c == k else -128 for k in range(3)) for c in classes]
    _put(outputs, 0, 2, 2, 1, (0, 0, 0, 0), 127, tuple(one_hot[0]))
    _put(outputs, 0, 2, 2, 0, (0, 0, 8, 0), 100, tuple(one_hot[1]))  # same centre, lower score
    return outputs


def test_nms_per_class_and_class_agnostic():
    quant = [(SCALE, ZERO)] * 2
    same = detect_fixed(_two_overlapping((1, 1)), quant, HEAD, DetectConfig(0.5, iou_threshold=0.3))
    assert len(same) == 1 and same[0, 5] == 1
    other = _two_overlapping((1, 2))
    assert len(detect_fixed(other, quant, HEAD, DetectConfig(0.5, iou_threshold=0.3))) == 2
    agnostic = DetectConfig(0.5, iou_threshold=0.3, class_agnostic=True)
    assert len(detect_fixed(other, quant, HEAD, agnostic)) == 1
    assert len(detect_fixed(_two_overlapping((1, 1)), quant, HEAD,
                            DetectConfig(0.5, iou_threshold=0.99))) == 2


def test_ties_rank_by_scan_order_and_caps_apply():
    outputs = _blank(HEAD)
    for gx in range(6):  # equal scores, disjoint boxes
        _put(outputs, 0, 3, gx, 0, (0, 0, -64, -64), 127, (127, -128, -128))
    fixed = detect_fixed(outputs, [(SCALE, ZERO)] * 2, HEAD, DetectConfig(0.5, max_candidates=4))
    assert list(fixed[:, 0]) == sorted(fixed[:, 0]) and len(fixed) == 4
    capped = detect_fixed(outputs, [(SCALE, ZERO)] * 2, HEAD, DetectConfig(0.5, max_boxes=2))
    assert np.array_equal(capped, fixed[:2])


def test_tables_saturate_and_are_monotone():
    tables = output_tables(0.5, -10)
    assert tables.sigmoid_q15.dtype == np.uint16 and tables.sigmoid_q15[-1] == 32768
    assert np.all(np.diff(tables.sigmoid_q15.astype(int)) >= 0)
    assert tables.exp_q16[-1] == 2**31 - 1 and tables.exp_q16[0] == 0


def test_head_json_round_trip_and_errors(tmp_path):
    path = save_head_json(HEAD, sidecar_head_path(tmp_path / "model.tflite"))
    assert path.name == "model.head.json" and load_head_json(path) == HEAD
    for text, needle in (("{", "not valid JSON"), ('{"outputs": []}', "input_size"),
                         ('{"input_size": [32, 32], "outputs": [{"stride": 8, "anchors": [[1, -2]],'
                          ' "num_classes": 2}]}', r"outputs\[0\]"),
                         ('{"input_size": [32, 32], "outputs": [{"stride": 8, "anchors": [[1, 2]]}]}',
                          "num_classes")):
        path.write_text(text)
        with pytest.raises(HeadError, match=needle) as error:
            load_head_json(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(HeadError, match="cannot read"):
        load_head_json(tmp_path / "missing.json")


def test_match_outputs_reorders_and_names_the_bad_tensor():
    shapes = [(1, 3, 4, 8), (1, 6, 8, 16)]
    assert match_outputs(["small", "large"], shapes, HEAD) == (1, 0)
    with pytest.raises(HeadError, match=r"output tensor large .* 16 = 2 anchors x \(5 \+ 3"):
        match_outputs(["small", "large"], [(1, 3, 4, 8), (1, 6, 8, 12)], HEAD)
    with pytest.raises(HeadError, match="the head has 2 outputs, the model has 1"):
        match_outputs(["small"], shapes[:1], HEAD)


def test_letterbox_round_trip():
    image = np.zeros((30, 90, 3), dtype=np.uint8)
    image[10:20, 30:60] = 255
    canvas, letterbox = letterbox_image(image, (48, 64))
    assert canvas.shape == (48, 64, 3) and letterbox.pad == (13, 0)
    assert canvas[0, 0, 0] == 114 and canvas[24, 32, 0] == 255
    assert letterbox == letterbox_transform((30, 90), (48, 64)) and letterbox.resized == (21, 64)
    sy, sx = 21 / 30, 64 / 90
    box = np.array([[30 * sx, 13 + 10 * sy, 60 * sx, 13 + 20 * sy, 0.9, 0]])
    assert np.allclose(boxes_to_image(box, letterbox)[0], [30, 10, 60, 20, 0.9, 0])
