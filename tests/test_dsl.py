"""The block-string DSL: parsing, printing, errors, repeats."""

from __future__ import annotations

import pytest

from mcuforge.errors import SpecError
from mcuforge.models.dsl import make_divisible, parse_block, parse_spec, resolution_divisor
from mcuforge.models.zoo import get_spec, list_models


@pytest.mark.parametrize("name", list_models())
def test_spec_round_trips_through_text(name):
    spec = get_spec(name)
    assert parse_spec(spec.to_string()) == spec


def test_repeat_uses_stride_only_once():
    blocks = parse_block("ir_r3_k5_s2_e6_c24")
    assert [b.stride for b in blocks] == [2, 1, 1]
    assert all(b.kernel == 5 and b.expand == 6 and b.out_channels == 24 for b in blocks)


def test_options_and_defaults():
    block, = parse_block("ir_k7_m48_se0.25_c16_nhs_nores_w4")
    assert (block.kernel, block.mid_channels, block.se_ratio, block.act, block.residual, block.int4) == \
        (7, 48, 0.25, "hswish", False, True)
    fc, = parse_block("fc_c10")
    assert fc.act == "none"
    assert parse_block("cn_k3_c8")[0].act == "relu6"


@pytest.mark.parametrize("text, message", [
    ("xx_k3_c8", "unknown kind"),
    ("ir_k4_c8", "odd"),
    ("ir_k3", "output channels"),
    ("ir_k3_c8_zz", "cannot read option"),
])
def test_bad_blocks_are_named(text, message):
    with pytest.raises(SpecError, match=message):
        parse_block(text)


def test_bad_header():
    with pytest.raises(SpecError, match="res<N>"):
        parse_spec("in3 | cn_k3_c8")
    with pytest.raises(SpecError):
        parse_spec("res32")


def test_make_divisible_mobilenet_rule():
    assert [make_divisible(c * 0.35) for c in (32, 16, 24, 32, 64, 96, 160, 320)] == \
        [16, 8, 8, 16, 24, 32, 56, 112]


def test_resolution_divisor():
    assert resolution_divisor(get_spec("mobilenet-v2")) == 16
    assert resolution_divisor(parse_spec("res32 | cn_k3_s2_c8 | pool fc_c10")) == 1


def test_non_square_input_and_kernel_round_trip():
    spec = parse_spec("res49x10 in1 cls12 | cn_k10x4_s2_c64_nre | ds_k3_c64_nre | pool fc_c12")
    assert spec.input_hw == (49, 10)
    assert spec.blocks[0].kernel_hw == (10, 4)
    assert spec.to_string() == "res49x10 in1 cls12 | cn_k10x4_s2_c64_nre | ds_k3_c64_nre | pool fc_c12"
    assert parse_spec("res32x32 | cn_k3x3_c8 | pool fc_c2") == parse_spec("res32 | cn_k3_c8 | pool fc_c2")


def test_depthwise_kernels_stay_square_and_odd():
    with pytest.raises(SpecError, match="depthwise kernels are square and odd"):
        parse_block("ds_k3x5_c8")
    with pytest.raises(SpecError, match="depthwise kernels are square and odd"):
        parse_block("ir_k4_c8")
