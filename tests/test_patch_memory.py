"""Patch-stage memory, MACs, halo caches, the search and its Pareto front."""

from __future__ import annotations

import pytest

from mcuforge.analysis.conventions import MemoryConventions, REFERENCE_CONVENTIONS
from mcuforge.errors import DoesNotFitError, McuforgeError
from mcuforge.frontends.load import load_graph
from mcuforge.patch import (PatchConfig, evaluate_patch, parse_patch_option, patch_geometry,
                                    split_candidates)
from mcuforge.patch.evaluate import StageLiveness, patch_live_bytes
from mcuforge.patch.search import choose, pareto_front, search_patches
from mcuforge.reference import published_numbers

from conftest import require_reference_file
from test_patch_execution import mixed_net


@pytest.fixture(scope="module")
def mbv2():
    return load_graph("mobilenet-v2", 224, 1.0)


def test_mobilenet_v2_4x4_matches_the_paper(mbv2):
    """MCUNetV2 Table 1: 4x4 patches, 75 px input patch, 172 kB in the paper's convention; the
    naive patch stage costs 129.5M MACs instead of 91.3M (numbers.json)."""
    paper = published_numbers()["mobilenet_v2_w1.0_r224_int8"]
    plan = evaluate_patch(mbv2, PatchConfig((4, 4), "b4"), REFERENCE_CONVENTIONS)
    assert plan.input_patch == (75, 75)
    assert plan.layer_peak_activation_bytes == paper["peak_layer_based_inplace_dw"]
    # Worst op: the interior patch's b2 expansion, 35x35x16 in + 35x35x96 out, + the 28x28x32 buffer.
    assert plan.patch_stage_peak_bytes_input_streamed == 35 * 35 * 16 + 35 * 35 * 96 + 28 * 28 * 32
    assert plan.patch_stage_peak_bytes_input_streamed <= paper["paper_patch_4x4_kB"] * 1024
    assert plan.patch_stage_peak_bytes == plan.patch_stage_peak_bytes_input_streamed + 224 * 224 * 3
    assert round(plan.stage_macs_layer / 1e6, 1) == 91.3
    assert round(plan.stage_macs_naive / 1e6, 1) == 129.5
    assert round(plan.total_macs_layer / 1e6, 1) == 300.8
    # Border patches do not compute their padding: less than the naive figure, more than layer-based.
    assert plan.stage_macs_layer < plan.stage_macs_patch < plan.stage_macs_naive
    windows = {w.index: w for w in plan.patches}
    assert len(windows) == 16
    assert windows[(0, 0)].input_window == ((0, 62), (0, 62)) and windows[(0, 0)].input_pads == (1, 0, 1, 0)
    assert windows[(1, 1)].input_window == ((43, 118), (43, 118)) and windows[(1, 1)].input_pads == (0,) * 4
    assert windows[(3, 3)].tile == ((21, 28), (21, 28)) and windows[(3, 3)].input_window == ((155, 224),) * 2
    assert max(w.peak_bytes_input_streamed for w in plan.patches) == plan.patch_stage_peak_bytes_input_streamed
    assert windows[(0, 0)].peak_bytes_input_streamed < windows[(1, 1)].peak_bytes_input_streamed


def test_mobilenet_v2_4x4_reaches_the_paper_with_row_buffered_depthwise(mbv2):
    """172 kB = 176,128 B in the paper's convention (input streamed): with pointwise overlaps the
    layer-based rest is bounded by the in-place depthwise plane (e + 28x28 plane + x); a ring of two
    28-pixel output rows instead brings the whole schedule under the paper's figure."""
    paper_bytes = published_numbers()["mobilenet_v2_w1.0_r224_int8"]["paper_patch_4x4_kB"] * 1024
    plane = evaluate_patch(mbv2, PatchConfig((4, 4), "b4"), MemoryConventions(overlap_pointwise=True))
    assert plane.rest_peak_bytes == 150528 + 784 + 25088 > paper_bytes
    for halo in ("none", "cols", "full"):
        plan = evaluate_patch(mbv2, PatchConfig((4, 4), "b4", halo),
                              MemoryConventions(overlap_pointwise=True, depthwise_row_buffer=True))
        assert plan.peak_activation_bytes_input_streamed <= paper_bytes
        # The b6 projection (d + C_in pixel buffer + x) bounds the rest; the 28x28 depthwise ops
        # need e + 56 B of rows (+ x) instead of e + 784 B.
        assert plan.rest_peak_bytes == 28 * 28 * 192 + 192 + 28 * 28 * 32 == 175808
        if halo == "none":
            assert plan.input_patch == (75, 75)
            assert plan.mac_overhead == plane.mac_overhead > 0
    assert plan.mac_overhead == 0


def test_halo_caching_lowers_the_mac_overhead(mbv2):
    plans = {halo: evaluate_patch(mbv2, PatchConfig((4, 4), "b4", halo), REFERENCE_CONVENTIONS)
             for halo in ("none", "cols", "full")}
    assert plans["none"].cache.total_bytes == 0
    assert 0 < plans["cols"].cache.total_bytes < plans["full"].cache.total_bytes
    assert 0 == plans["full"].mac_overhead < plans["cols"].mac_overhead < plans["none"].mac_overhead
    # Column caching also shrinks the buffers: its stage peak is below recomputation's.
    assert plans["cols"].patch_stage_peak_bytes < plans["none"].patch_stage_peak_bytes


@pytest.mark.parametrize("options", [REFERENCE_CONVENTIONS,
                         MemoryConventions(overlap_pointwise=False, depthwise_row_buffer=True)])
def test_fast_live_bytes_agree_with_a_full_memory_profile(options):
    net, graph = mixed_net(2, (7, 3, 5))
    for stage in split_candidates(graph):
        height, width = graph.tensor(stage.split).shape[1:3]
        for grid in [(2, 2), (min(3, height), min(4, width))]:
            for halo in ("none", "cols", "full"):
                geometry = patch_geometry(graph, PatchConfig(grid, stage.split_block, halo))
                ops = geometry.stage_ops(graph)
                fast = StageLiveness(graph, geometry.stage, ops, options)
                for row in geometry.rows:
                    for col in geometry.cols:
                        assert fast.live_bytes(row, col) == patch_live_bytes(
                            graph, geometry.stage, ops, row, col, options)


def test_patch_peak_counts_the_split_buffer_and_input():
    net, graph = mixed_net(1, (3, 5, 7))
    plan = evaluate_patch(graph, PatchConfig((2, 2), "b2"), REFERENCE_CONVENTIONS)
    input_bytes = graph.tensor("input").nbytes
    assert plan.patch_stage_peak_bytes == plan.patch_stage_peak_bytes_input_streamed + input_bytes
    assert plan.patch_stage_peak_bytes_input_streamed > plan.split_buffer_bytes
    assert plan.peak_activation_bytes == max(plan.patch_stage_peak_bytes, plan.rest_peak_bytes)


def test_patch_option_parsing(mbv2):
    assert parse_patch_option("auto", mbv2) == "auto"
    assert parse_patch_option("4x4@b4", mbv2) == PatchConfig((4, 4), "b4")
    assert parse_patch_option("3x2@4", mbv2, "cols") == PatchConfig((3, 2), "b4", "cols")
    full = PatchConfig((7, 7), "b4", "full")
    assert parse_patch_option(full.to_string(), mbv2) == full
    for bad in ("4x4", "4x4@b99", "29x29@b4", "2x2@b20", "fast", "4x4@b4+halo-some"):
        with pytest.raises(McuforgeError):
            parse_patch_option(bad, mbv2)


def test_pareto_front_is_sorted_and_non_dominated(mbv2):
    search = search_patches(mbv2, REFERENCE_CONVENTIONS, halo_modes=("none", "cols"), max_grid=5)
    front = search.front
    assert [c.peak_bytes for c in front] == sorted(c.peak_bytes for c in front)
    assert all(a.macs > b.macs for a, b in zip(front, front[1:]))
    for candidate in search.candidates:
        assert any(f.peak_bytes <= candidate.peak_bytes and f.macs <= candidate.macs for f in front)
    assert front[0].peak_bytes < search.layer_based.peak_bytes / 4
    assert pareto_front(list(search.candidates)) == front


def test_choices_under_an_sram_budget(mbv2):
    search = search_patches(mbv2, REFERENCE_CONVENTIONS, halo_modes=("none",), max_grid=4)
    smallest = choose(search, "min-memory")
    assert smallest == search.front[0]
    roomy = choose(search, "auto", search.layer_based.peak_bytes)
    assert roomy.plan is None  # layer-based fits: no recomputation
    tight = choose(search, "auto", smallest.peak_bytes)
    assert tight.peak_bytes <= smallest.peak_bytes and tight.plan is not None
    with pytest.raises(DoesNotFitError):
        choose(search, "auto", smallest.peak_bytes - 1)


def test_a_mac_limit_keeps_the_smallest_schedule_within_it(mbv2):
    search = search_patches(mbv2, REFERENCE_CONVENTIONS, halo_modes=("none", "cols"), max_grid=4)
    layer_macs = search.layer_based.macs
    smallest = choose(search, "min-memory")
    assert smallest.macs > 1.03 * layer_macs  # the limit below bites
    limited = choose(search, "min-memory", max_mac_factor=1.03)
    within = [c for c in search.candidates if c.macs <= 1.03 * layer_macs]
    assert limited.macs <= 1.03 * layer_macs
    assert limited.peak_bytes == min(c.peak_bytes for c in within) > smallest.peak_bytes
    assert choose(search, "min-memory", max_mac_factor=1.0).macs == layer_macs
    unlimited = max(c.macs for c in search.candidates) / layer_macs
    assert choose(search, "min-memory", max_mac_factor=unlimited) == smallest
    # auto without a budget: the factor replaces AUTO_MAC_BUDGET; with one: fewest MACs that fit.
    assert choose(search, "auto", max_mac_factor=1.03) == limited
    assert choose(search, "auto", limited.peak_bytes, max_mac_factor=1.03).peak_bytes \
        <= limited.peak_bytes
    with pytest.raises(DoesNotFitError, match="within 1.03x the layer-based MACs"):
        choose(search, "auto", limited.peak_bytes - 1, max_mac_factor=1.03)
    for bad in (0.9, float("inf"), float("nan")):
        with pytest.raises(McuforgeError, match="at least 1.0"):
            choose(search, "min-memory", max_mac_factor=bad)


def test_tinyengine_vww_patch_schedule_beats_its_planner():
    """TinyEngine's planner needs 57,600 B for vww.tflite with patches (numbers.json)."""
    graph = load_graph(str(require_reference_file("models/tinyengine/vww.tflite")))
    tinyengine = published_numbers()["tinyengine_planner_measured"]["vww.tflite (mcunet-vww1, 80x80)"]
    search = search_patches(graph, REFERENCE_CONVENTIONS, halo_modes=("none", "cols", "full"))
    best = choose(search, "min-memory")
    assert best.plan is not None
    assert best.peak_bytes < tinyengine["patch_3x3_split5"]
    recompute = search_patches(graph, REFERENCE_CONVENTIONS, halo_modes=("none",))
    assert choose(recompute, "min-memory").peak_bytes < tinyengine["patch_3x3_split5"]
