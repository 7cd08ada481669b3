"""Receptive-field redistributed zoo variants: smaller input patch, lower recomputation overhead."""

from __future__ import annotations

import pytest

from mcuforge.analysis.conventions import REFERENCE_CONVENTIONS
from mcuforge.frontends.load import load_graph
from mcuforge.models.zoo import get_spec, list_models
from mcuforge.models.zoo_redistributed import PATCH_SPLIT
from mcuforge.patch import PatchConfig, evaluate_patch


@pytest.mark.parametrize("name", sorted(PATCH_SPLIT))
def test_redistribution_shrinks_the_input_patch_and_the_overhead(name):
    base = name.removesuffix("-rd")
    assert name in list_models()
    split = PATCH_SPLIT[name]
    before = evaluate_patch(load_graph(base), PatchConfig((4, 4), split), REFERENCE_CONVENTIONS)
    after = evaluate_patch(load_graph(name), PatchConfig((4, 4), split), REFERENCE_CONVENTIONS)
    assert after.split_shape == before.split_shape
    assert after.input_patch[0] < before.input_patch[0]
    assert after.receptive_field[0] < before.receptive_field[0]
    assert after.mac_overhead / after.total_macs_layer < before.mac_overhead / before.total_macs_layer
    assert after.patch_stage_peak_bytes <= before.patch_stage_peak_bytes
    # The blocks moved after the split: more blocks, kernels in the stage at most 3.
    spec, base_spec = get_spec(name), get_spec(base)
    assert len(spec.blocks) == len(base_spec.blocks) + 2
    stage = spec.blocks[1:int(split[1:]) + 1]
    assert all(block.kernel <= 3 for block in stage)


def test_mobilenet_v2_rd_input_patch():
    plan = evaluate_patch(load_graph("mobilenet-v2-rd"), PatchConfig((4, 4), "b4"),
                          REFERENCE_CONVENTIONS)
    assert plan.input_patch == (63, 63)  # 75 px for MobileNetV2
