"""One patch package: the per-patch graph serves evaluation and planning alike, the planned
`PatchSchedule` is the one source of a project's figures, and profile and compile count a schedule
under the same conventions."""

from __future__ import annotations

import pytest

from mcuforge.analysis.conventions import DEFAULT_CONVENTIONS, REFERENCE_CONVENTIONS
from mcuforge.codegen.patch_emit import generate_patched, patch_report_fields, resolve_c_patch
from mcuforge.codegen.targets import get_core
from mcuforge.patch import PatchConfig, PatchEvaluator, patch_geometry, resolve_schedule
from mcuforge.patch.arena import plan_patches
from mcuforge.patch.evaluate import patch_live_bytes
from mcuforge.planner.arena import PlanOptions

from conftest import require_reference_file
from test_patch_codegen import codegen_net


CONFIGS = [PatchConfig((3, 1), "b2"), PatchConfig((2, 2), "b2"), PatchConfig((4, 3), "b3"),
           PatchConfig((4, 1), "b3", "full"), PatchConfig((3, 3), "b4", "cols")]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.to_string())
@pytest.mark.parametrize("conventions", [DEFAULT_CONVENTIONS, REFERENCE_CONVENTIONS],
                         ids=["default", "reference"])
def test_arena_plans_lay_out_the_graph_the_evaluation_counts(config, conventions):
    """Each patch's arena plan (no scratch) starts from the same per-patch graph as its evaluation:
    the plan's analytic peak is the largest live set the evaluation counts for that patch."""
    _, graph = codegen_net(1)
    geometry = patch_geometry(graph, config)
    ops = geometry.stage_ops(graph)
    grid = [(row, col) for row in geometry.rows for col in geometry.cols]
    plans = plan_patches(graph, geometry, ops, grid, [{}] * len(grid), PlanOptions(conventions))
    for (row, col), plan in zip(grid, plans.plans):
        live = patch_live_bytes(graph, geometry.stage, ops, row, col, conventions)
        assert plan.peak_activation_bytes == max(live)


@pytest.mark.parametrize("config", [PatchConfig((3, 1), "b2"), PatchConfig((2, 2), "b3"),
                                    PatchConfig((4, 1), "b3", "full")], ids=lambda c: c.to_string())
def test_the_schedule_is_the_one_source_of_the_project_figures(config):
    """The generated project's plan and report read the planned schedule: its analytic peak is the
    schedule's figure under the stage's conventions, and no second evaluation is needed."""
    _, graph = codegen_net(2)
    model = generate_patched(graph, get_core("host"), config)
    schedule = model.patch_schedule
    assert schedule is not None and schedule.config == config
    expected = PatchEvaluator(graph, DEFAULT_CONVENTIONS, schedule.stage_conventions).evaluate(config)
    assert model.plan.peak_activation_bytes == schedule.figures.peak_activation_bytes \
        == expected.peak_activation_bytes
    assert model.plan.arena_bytes == schedule.regions.arena_bytes
    assert model.macs == schedule.figures.total_macs
    fields = patch_report_fields(model)
    assert fields["peak_activation_bytes"] == model.plan.peak_activation_bytes
    assert fields["schedule"] == config.to_string()
    assert fields["patch_stage_overlap_pointwise"] == schedule.stage_conventions.overlap_pointwise
    if config.halo == "full":  # outputs land below their cached rows: no pointwise overlaps
        assert not schedule.stage_conventions.overlap_pointwise


def test_profile_and_compile_report_the_same_peak_for_the_same_schedule(reference):
    """`mcuforge profile X --patch S` and `mcuforge compile X --patch S` count S under the same
    conventions (pointwise overlap on by default), so min-memory's schedule has one peak."""
    from mcuforge.frontends.load import load_graph
    graph = load_graph(str(require_reference_file("models/tinyengine/vww.tflite")))
    config = resolve_c_patch(graph, "min-memory")
    assert config == PatchConfig((7, 7), "block2")
    profiled = resolve_schedule(graph, config.to_string())
    compiled = generate_patched(graph, get_core("host"), config)
    assert profiled.peak_activation_bytes == compiled.plan.peak_activation_bytes == 28_001
    assert resolve_schedule(graph, "min-memory").config == config  # profile's own search agrees
