"""The yolo head in the DSL: grammar, torch module and IR agree, PTQ to int8 (bit-exact with TFLite
Micro), the detector zoo family, and the YOLO loss's anchor matching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcuforge.analysis.profile import profile_graph
from mcuforge.errors import SpecError
from mcuforge.models.dsl import is_detector, parse_block, parse_spec, resolution_divisor, total_stride
from mcuforge.models.spec_graph import build_graph
from mcuforge.models.spec_torch import build_torch
from mcuforge.models.zoo import get_spec
from mcuforge.quant.inference import quantize_input
from mcuforge.quant.ptq import quantize_spec_net
from mcuforge.train.yolo_loss import yolo_loss
from test_quant_ptq import inputs, random_net
from tflm_support import assert_matches_tflm

TINY = "res64 in3 cls2 | cn_k3_s2_c8 | ir_k3_s2_e2_c16 ir_k3_e2_c16 | ir_k5_s2_e3_c24 | cn_k3_s2_c24 | yolo_a3"


def test_yolo_block_grammar_and_round_trip():
    head, = parse_block("yolo_a3")
    assert (head.kind, head.anchors, head.kernel, head.act) == ("yolo", 3, 1, "none")
    spec = parse_spec(TINY)
    assert is_detector(spec) and parse_spec(spec.to_string()) == spec
    assert parse_block("yolo_k3_a2")[0].to_string() == "yolo_k3_a2"
    assert total_stride(spec) == 16 and resolution_divisor(spec) == 16


@pytest.mark.parametrize("text, message", [
    ("res64 | cn_k3_s2_c8 | yolo", "anchors per cell"),
    ("res64 | cn_k3_s2_c8 | yolo_a2 cn_k3_c8", "last block"),
    ("res64 | ir_k3_a2_c8 | yolo_a2", "only a yolo head"),
])
def test_bad_heads_are_named(text, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(text)


def test_torch_and_graph_agree_on_the_head_layout():
    spec = parse_spec(TINY)
    graph = build_graph(spec)
    model = build_torch(spec).eval()
    assert graph.tensors[graph.outputs[0]].shape == (1, 4, 4, 3 * (5 + 2))
    with torch.no_grad():
        assert tuple(model(torch.zeros(1, 3, 64, 64)).shape) == (1, 21, 4, 4)
    assert sum(p.numel() for p in model.parameters()) == graph.metadata["params_incl_bn"]


def test_detector_family_on_a_zoo_backbone():
    spec = get_spec("mcunet-in3-yolo", num_classes=1)
    assert spec.resolution == 256 and spec.blocks[-1].to_string() == "yolo_a3"
    assert [b.kind for b in spec.blocks].count("fc") == 0
    report = profile_graph(build_graph(spec))
    assert report.peak_activation_bytes > 256 * 1024  # layer by layer it does not fit 256 KB
    with pytest.raises(SpecError, match="multiple of 32"):
        get_spec("mcunet-in3-yolo", resolution=176)


def test_int8_detector_tracks_float_and_matches_tflm():
    spec = parse_spec(TINY)
    model = random_net(spec)
    graph = quantize_spec_net(model, [inputs(spec, 32, seed=5)])
    x = inputs(spec, 1, seed=9)
    out = assert_matches_tflm(graph, [quantize_input(graph, x)])
    quant = graph.tensor(graph.outputs[0]).quant
    got = (out.astype(np.float64) - quant.zero_point[0]) * quant.scale[0]
    with torch.no_grad():
        expected = model(x).permute(0, 2, 3, 1).double().numpy()
    spread = expected.max() - expected.min()
    assert np.abs(got - expected).max() < 0.05 * spread


def _encode(box, anchors, stride, grid, classes, anchor_index, confident=8.0):
    """Raw head output that decodes to exactly ``box`` at anchor ``anchor_index``, nothing elsewhere."""
    fields = 5 + classes
    raw = torch.full((1, len(anchors) * fields, grid, grid), 0.0)
    raw.view(len(anchors), fields, grid, grid)[:, 4] = -confident
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    gx, gy = int(cx // stride), int(cy // stride)
    w, h = box[2] - box[0], box[3] - box[1]
    logit = lambda p: float(np.log(p / (1 - p)))  # noqa: E731
    values = [logit(cx / stride - gx), logit(cy / stride - gy), float(np.log(w / anchors[anchor_index][0])),
              float(np.log(h / anchors[anchor_index][1])), confident] + [confident] + [-confident] * (classes - 1)
    raw.view(len(anchors), fields, grid, grid)[anchor_index, :, gy, gx] = torch.tensor(values)
    return raw


def test_yolo_loss_is_lowest_for_the_matching_anchor_and_cell():
    anchors = torch.tensor([[10.0, 10.0], [30.0, 20.0], [50.0, 60.0]])
    box = [20.0, 30.0, 48.0, 52.0]  # 28 x 22: anchor 1's shape
    targets = [(torch.tensor([box]), torch.tensor([0]))]
    right = _encode(box, anchors.tolist(), 16, 4, 2, anchor_index=1)
    wrong = _encode(box, anchors.tolist(), 16, 4, 2, anchor_index=2)
    loss_right, parts = yolo_loss(right, targets, anchors, 16, 2)
    loss_wrong, wrong_parts = yolo_loss(wrong, targets, anchors, 16, 2)
    assert loss_right < loss_wrong
    assert parts["obj"] + parts["noobj"] + parts["cls"] < 0.05 < wrong_parts["obj"]
    # the box part is the xy BCE at exact offsets (their entropy: wh is exact)
    offsets = torch.tensor([34 / 16 - 2, 41 / 16 - 2])
    entropy = -(offsets * offsets.log() + (1 - offsets) * (1 - offsets).log()).sum()
    assert parts["box"] == pytest.approx(float(entropy) * (2 - 28 * 22 / 64 ** 2), rel=1e-4)
    raw = right.clone().requires_grad_(True)
    yolo_loss(raw, targets, anchors, 16, 2)[0].backward()
    assert torch.isfinite(raw.grad).all() and raw.grad.abs().sum() > 0
