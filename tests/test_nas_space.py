"""TinyNAS search space: samples are valid DSL specs, the closed-form profile equals the graph's, it is
fast, and stage-1 ranking prefers the spaces with more FLOPs under the same memory."""

from __future__ import annotations

import random
import time

import pytest

from mcuforge.analysis.cost import graph_cost
from mcuforge.analysis.conventions import MemoryConventions, REFERENCE_CONVENTIONS
from mcuforge.analysis.memory import memory_profile
from mcuforge.models.dsl import parse_spec
from mcuforge.models.spec_graph import build_graph
from mcuforge.models.zoo import get_spec
from mcuforge.nas.constraints import DEFAULT_SRAM_RESERVE_BYTES, Constraints, measure
from mcuforge.nas.fast_profile import UnsupportedSpecError, spec_figures
from mcuforge.nas.space import ArchConfig, SearchSpace, default_resolutions
from mcuforge.nas.space_opt import plot_cdfs, profile_space, rank_spaces


@pytest.mark.parametrize("width,resolution", [(0.2, 32), (0.5, 48), (1.0, 96)])
def test_samples_are_valid_specs_in_the_space(width, resolution):
    space = SearchSpace(width, resolution, in_channels=1, num_classes=10)
    rng = random.Random(0)
    for _ in range(20):
        arch = space.sample(rng)
        space.check(arch)
        text = space.spec_string(arch)
        spec = parse_spec(text)
        assert spec.to_string() == text  # printable and diffable: round-trips exactly
        ir_blocks = [b for b in spec.blocks if b.kind == "ir"]
        assert len(ir_blocks) == 1 + sum(arch.depths) + 1
        assert {b.kernel for b in ir_blocks[1:]} <= {3, 5, 7}
        assert {b.expand for b in ir_blocks[1:]} <= {3.0, 4.0, 6.0}
        build_graph(spec)  # builds without error
        assert ArchConfig.from_dict(arch.to_dict()) == arch


def test_width_half_matches_mcunet_layout():
    space = SearchSpace(0.5, 176)
    widths = [b.out_channels for b in space.spec(space.largest()).blocks if b.kind in ("cn", "ir")]
    in3 = [b.out_channels for b in get_spec("mcunet-in3").blocks if b.kind in ("cn", "ir")]
    assert sorted(set(widths)) == sorted(set(in3))


def test_bad_space_is_a_clear_error():
    from mcuforge.errors import McuforgeError
    with pytest.raises(McuforgeError, match="multiple of 16"):
        SearchSpace(0.5, 40)


@pytest.mark.parametrize("inplace", [True, False])
def test_closed_form_equals_graph_analysis(inplace):
    rng = random.Random(1)
    for width, resolution in [(0.2, 32), (0.3, 64), (0.7, 48), (1.0, 112)]:
        space = SearchSpace(width, resolution, in_channels=1 + 2 * (width > 0.5), num_classes=10)
        for _ in range(8):
            spec = space.spec(space.sample(rng))
            graph = build_graph(spec)
            figures = spec_figures(spec, inplace_depthwise=inplace)
            cost = graph_cost(graph)
            memory = memory_profile(graph, MemoryConventions(overlap_pointwise=False,
                                                             inplace_depthwise=inplace))
            assert (figures.macs, figures.params, figures.flash_bytes) == (cost.macs, cost.params, cost.flash_bytes)
            assert figures.peak_activation_bytes == memory.peak_activation_bytes


@pytest.mark.parametrize("name", ["mobilenet-v1", "mobilenet-v2", "mcunet-in1", "mcunet-in3-int4",
                                  "proxyless-w0.25-r112", "mbv2-w0.35-r144"])
def test_closed_form_equals_graph_on_zoo(name):
    spec = get_spec(name)
    graph = build_graph(spec)
    figures = spec_figures(spec)
    assert figures.macs == graph_cost(graph).macs
    assert figures.flash_bytes == graph_cost(graph).flash_bytes
    assert figures.peak_activation_bytes == \
        memory_profile(graph, REFERENCE_CONVENTIONS).peak_activation_bytes


def test_closed_form_refuses_squeeze_excite():
    with pytest.raises(UnsupportedSpecError):
        spec_figures(get_spec("mobilenet-v3-small"))


def test_profiling_a_sample_takes_milliseconds():
    space = SearchSpace(0.5, 64, in_channels=1, num_classes=10)
    rng = random.Random(2)
    specs = [space.spec(space.sample(rng)) for _ in range(200)]
    started = time.perf_counter()
    for spec in specs:
        spec_figures(spec)
    per_sample_ms = (time.perf_counter() - started) / len(specs) * 1000
    assert per_sample_ms < 20, per_sample_ms


def test_measure_flags_what_does_not_fit():
    space = SearchSpace(0.5, 64, in_channels=1, num_classes=10)
    spec = space.spec(space.largest())
    tight = measure(spec, Constraints(32 * 1024, 256 * 1024))
    assert not tight.fits and "sram" in tight.reason and "flash" in tight.reason
    loose = measure(spec, Constraints(10 * 2**20, 10 * 2**20))
    assert loose.fits and loose.peak_sram_bytes == spec_figures(spec).peak_activation_bytes


def test_space_ranking_prefers_more_flops_under_the_same_memory(tmp_path):
    constraints = Constraints(64 * 1024, 256 * 1024)
    spaces = [SearchSpace(w, r, 1, 10) for w in (0.2, 0.3) for r in (32, 64)]
    ranked = rank_spaces(spaces, constraints, samples=100, seed=0)
    assert [s.space.name for s in ranked][0] in {"w0.3-r64", "w0.2-r64"}
    means = [s.mean_macs for s in ranked if s.fit_fraction >= 0.05]
    assert means == sorted(means, reverse=True)
    # A larger space at the same resolution has more FLOPs when both fit comfortably.
    big = profile_space(SearchSpace(0.3, 32, 1, 10), Constraints(2**20, 2**20), samples=50)
    small = profile_space(SearchSpace(0.2, 32, 1, 10), Constraints(2**20, 2**20), samples=50)
    assert big.mean_macs > small.mean_macs and big.fit_fraction == small.fit_fraction == 1.0
    plot_cdfs(ranked, tmp_path / "cdf.png", "test")
    assert (tmp_path / "cdf.png").stat().st_size > 1000


def test_space_samples_do_not_depend_on_other_spaces():
    constraints = Constraints(64 * 1024, 256 * 1024)
    alone = profile_space(SearchSpace(0.3, 48, 1, 10), constraints, samples=50, seed=3)
    together = rank_spaces([SearchSpace(0.2, 32, 1, 10), SearchSpace(0.3, 48, 1, 10)], constraints,
                           samples=50, seed=3)
    assert alone.fitting_macs == next(s for s in together if s.space.name == "w0.3-r48").fitting_macs


def test_default_resolutions_suit_the_data():
    assert max(default_resolutions(28)) <= 96
    assert min(default_resolutions(224)) >= 96
    for r in default_resolutions(28) + default_resolutions(224):
        SearchSpace(0.5, r)


def test_patch_schedule_rescues_a_network_layer_based_execution_cannot_fit():
    space = SearchSpace(0.2, 96, in_channels=1, num_classes=10)
    spec = space.spec(space.smallest())
    layer = measure(spec, Constraints(64 * 1024, 256 * 1024))
    patched = measure(spec, Constraints(64 * 1024, 256 * 1024, patch=True))
    assert not layer.fits and layer.reason.startswith("sram")
    assert patched.fits and patched.schedule != "layer-based"
    assert patched.peak_sram_bytes <= 64 * 1024 - DEFAULT_SRAM_RESERVE_BYTES < patched.peak_layer_bytes
    assert patched.patch_mac_factor >= 1.0
