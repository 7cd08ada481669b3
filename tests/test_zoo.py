"""The model zoo: every entry builds an nn.Module and an IR graph that agree on shapes and
parameters, and the MCUNet transcriptions match the JSON configs they come from."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from mcuforge.analysis.cost import graph_cost
from mcuforge.analysis.conventions import REFERENCE_CONVENTIONS
from mcuforge.analysis.memory import memory_profile
from mcuforge.errors import SpecError, UnknownModelError
from mcuforge.frontends.proxyless_json import load_config
from mcuforge.models.spec_graph import build_graph
from mcuforge.models.spec_torch import build_torch
from mcuforge.frontends.load import load_graph
from mcuforge.models.zoo import CONFIG_OF_MODEL, get_spec, list_models, normalise_model_name
from mcuforge.reference import published_numbers

from conftest import require_reference_file

SMALL_RESOLUTION = 64  # per-block shape checks at a small resolution keep the test fast

# reference/numbers.json's conventions without in-place depthwise (its "in + out + residual" rule)
NO_INPLACE = dataclasses.replace(REFERENCE_CONVENTIONS, inplace_depthwise=False)


@pytest.mark.parametrize("name", list_models())
def test_torch_and_graph_agree_on_block_shapes_and_params(name):
    spec = get_spec(name)
    if spec.input_width is None:  # square image nets are checked at a small resolution
        spec = spec.with_resolution(max(SMALL_RESOLUTION, spec.resolution // 4 // 16 * 16))
    graph = build_graph(spec)
    model = build_torch(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == graph.metadata["params_incl_bn"]
    assert len(model.blocks) == len(graph.blocks)
    x = torch.zeros(1, spec.in_channels, *spec.input_hw)
    with torch.no_grad():
        for module, block in zip(model.blocks, graph.blocks):
            x = module(x)
            nhwc = graph.tensors[graph.op(block.ops[-1]).outputs[0]].shape
            if x.dim() == 2:  # torch flattens after the global pool; the graph keeps 1x1 spatial dims
                assert (x.shape[0], x.shape[1]) == (nhwc[0], math.prod(nhwc[1:])), f"{name} {block.name}"
            else:
                assert (x.shape[0], x.shape[2], x.shape[3], x.shape[1]) == nhwc, f"{name} {block.name}"


def test_published_model_sizes():
    """MACs and params of the families against their papers / torchvision."""
    expected = {"mobilenet-v2": (300_774_272, 3_504_872), "mobilenet-v3-small": (None, 2_542_856),
                "mobilenet-v3-large": (None, 5_483_032), "mobilenet-v1": (None, 4_231_976)}
    for name, (macs, params) in expected.items():
        cost = graph_cost(build_graph(get_spec(name)))
        assert cost.params_incl_bn == params, name
        if macs:
            assert cost.macs == macs, name


@pytest.mark.parametrize("name", sorted(CONFIG_OF_MODEL))
def test_zoo_entry_equals_its_json_config(name):
    config_name = CONFIG_OF_MODEL[name]
    config = load_config(require_reference_file(f"configs/mcunet/{config_name}"))
    zoo = get_spec(name)
    numbers = published_numbers()["analytic_from_mcunet_json_configs"][config_name]
    for spec in (config, zoo):
        graph = build_graph(spec)
        cost = graph_cost(graph)
        assert cost.macs == numbers["macs"]
        assert cost.params_incl_bn == numbers["params_incl_bn"]
        assert memory_profile(graph, REFERENCE_CONVENTIONS).peak_activation_bytes == \
            numbers["peak_with_inplace_depthwise"]
        assert memory_profile(graph, NO_INPLACE).peak_activation_bytes == \
            numbers["peak_in_plus_out_plus_residual"]
    assert [dataclasses.replace(b, int4=False) for b in zoo.blocks] == list(config.blocks)


def test_every_json_config_is_in_numbers(reference):
    configs = sorted((reference / "configs" / "mcunet").glob("*.json"))
    numbers = published_numbers()["analytic_from_mcunet_json_configs"]
    assert len(configs) == 13
    for path in configs:
        graph = build_graph(load_config(path))
        cost = graph_cost(graph)
        expected = numbers[path.name]
        assert (cost.macs, cost.params_incl_bn) == (expected["macs"], expected["params_incl_bn"]), path.name
        assert memory_profile(graph, REFERENCE_CONVENTIONS).peak_activation_bytes == \
            expected["peak_with_inplace_depthwise"], path.name


def test_mobilenet_v2_peak_memory_matches_reference():
    numbers = published_numbers()["mobilenet_v2_w1.0_r224_int8"]
    graph = build_graph(get_spec("mobilenet-v2", width=1.0, resolution=224))
    assert memory_profile(graph, REFERENCE_CONVENTIONS).peak_activation_bytes == \
        numbers["peak_layer_based_inplace_dw"] == 1_404_928
    assert memory_profile(graph, NO_INPLACE).peak_activation_bytes == \
        numbers["peak_layer_based_no_inplace"] == 1_505_280
    stem = memory_profile(graph, REFERENCE_CONVENTIONS).per_op[0]
    assert stem.live_bytes == numbers["first_conv_in_plus_out"]


def test_mcunet_in3_peak():
    assert memory_profile(build_graph(get_spec("mcunet-in3")),
                          REFERENCE_CONVENTIONS).peak_activation_bytes == 247_808


def test_int4_variant_halves_weight_bytes():
    spec = get_spec("mcunet-in3-int4")
    assert all(b.int4 for b in spec.blocks if b.kind != "pool")
    as_int8 = dataclasses.replace(spec, stages=tuple(
        tuple(dataclasses.replace(b, int4=False) for b in stage) for stage in spec.stages))
    int4_graph, int8_graph = build_graph(spec), build_graph(as_int8)
    int4_weights = sum(t.nbytes for t in int4_graph.tensors.values() if t.constant and t.dtype.bits == 4)
    int8_weights = sum(t.nbytes for t in int8_graph.tensors.values() if t.constant and t.dtype.bits == 8)
    assert abs(int4_weights - int8_weights / 2) <= len(int4_graph.ops)  # one byte of rounding per tensor
    assert graph_cost(int4_graph).flash_bytes < 0.6 * graph_cost(int8_graph).flash_bytes


def test_unknown_model_and_bad_width():
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        get_spec("nope")
    with pytest.raises(SpecError, match="fixed width"):
        get_spec("mcunet-in3", width=0.5)
    with pytest.raises(SpecError, match="multiple of 16"):
        get_spec("mobilenet-v2", resolution=100)


@pytest.mark.parametrize("typed", ["mobilenet-v2", "mobilenet_v2", "mobilenetv2", "MobileNetV2",
                                   "MOBILENET-V2"])
def test_zoo_names_accept_the_spellings_users_type(typed):
    spec = get_spec(typed, width=0.35, resolution=144)
    assert spec.name == "mobilenet-v2"
    assert spec == get_spec("mobilenet-v2", width=0.35, resolution=144)
    assert load_graph(typed).name == "mobilenet-v2"


def test_spellings_of_every_zoo_name_stay_distinct():
    assert len({normalise_model_name(name) for name in list_models()}) == len(list_models())
    assert get_spec("MCUNet_in3").name == "mcunet-in3"
    with pytest.raises(UnknownModelError, match="unknown model 'mobilenet-v9'"):
        get_spec("mobilenet-v9")


def test_width_and_classes_scaling():
    spec = get_spec("mobilenet-v2", width=0.35, resolution=32, num_classes=10, in_channels=1)
    assert spec.blocks[-1].out_channels == 10 and spec.in_channels == 1 and spec.resolution == 32
    assert spec.blocks[0].out_channels == 16


def test_dscnn_is_the_mlperf_tiny_keyword_spotting_network():
    """Same MACs, Flash and peak as MLPerf Tiny's kws_ref_model.tflite (the params differ by the
    batch-norm parameters the zoo counts: 4 x 64 x 2 + 64 x 2 + ... = 576)."""
    path = require_reference_file("models/mlperf_tiny/kws_ref_model.tflite")
    ours, theirs = load_graph("dscnn"), load_graph(str(path))
    assert graph_cost(ours).macs == graph_cost(theirs).macs == 2_656_768
    assert memory_profile(ours).peak_activation_bytes == memory_profile(theirs).peak_activation_bytes
