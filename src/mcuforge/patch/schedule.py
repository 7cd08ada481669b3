"""`PatchSchedule`: a patch schedule planned for one arena, the one object whose figures (peak,
MACs, overhead, arena layout) every report of it reads.

`plan_schedule` plans the stage patch by patch and the rest of the graph layer by layer
(`arena.py`), decides once under which conventions the stage runs (with pointwise overlaps, or
without them where the planner cannot lay them out at the analytic peak, `arena.plan_stage`), and
evaluates the analytic figures under exactly those conventions (`evaluate.py`). The code generator
lowers and renders the result; it neither re-plans nor re-evaluates it. Bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..analysis.conventions import MemoryConventions
from ..analysis.receptive import AxisPatch
from ..ir import Graph, Op
from ..planner.arena import ArenaPlan, PlanOptions, ScratchPlacement, TensorPlacement
from ..planner.placement import align_up
from .arena import RegionLayout, StagePlans, layout_regions, plan_patches, plan_stage, with_caches
from .evaluate import PatchEvaluator, PatchPlan
from .geometry import PatchConfig, PatchGeometry
from .halo_cache import HaloCacheLayout, halo_cache_layout


@dataclass(frozen=True)
class PatchSchedule:
    """A planned patch schedule: its geometry, the stage's per-patch plans (``stage_plans``, in
    raster order over ``grid``), the halo caches, the rest of the graph (``rest``) and where the
    stage's regions sit beside it (``regions``); ``figures`` are the analytic figures under the
    conventions the stage runs with (``stage_plans.options``); ``activation_arena_bytes`` is the
    arena the same layout needs without kernel scratch."""

    config: PatchConfig
    geometry: PatchGeometry
    grid: tuple[tuple[AxisPatch, AxisPatch], ...]
    plan_options: PlanOptions
    stage_plans: StagePlans
    cache: HaloCacheLayout
    rest: Graph
    regions: RegionLayout
    figures: PatchPlan
    activation_arena_bytes: int

    @property
    def stage_conventions(self) -> MemoryConventions:
        """The conventions the patch stage is planned and evaluated under."""
        return self.stage_plans.options.conventions

    @property
    def local_offset(self) -> int:
        """Arena offset of the patch-local region."""
        return self.regions.local_offset

    @property
    def row_cache_offset(self) -> int:
        """Arena offset of the row caches (after the largest per-patch plan)."""
        return self.regions.local_offset + align_up(self.stage_plans.arena_bytes,
                                                    self.plan_options.alignment)

    def arena_plan(self, placements: Mapping[str, TensorPlacement],
                   scratch: Mapping[str, ScratchPlacement],
                   overlap_buffers: Mapping[str, ScratchPlacement]) -> ArenaPlan:
        """The schedule's `ArenaPlan` holding ``placements``, ``scratch`` and ``overlap_buffers``
        (the rest's and every patch's, at their arena offsets); its figures are this schedule's:
        arena = peak + gap + scratch growth."""
        arena = self.regions.arena_bytes
        peak = self.figures.peak_activation_bytes
        overlaps = {(o.kind, o.input, o.output): o for plan in self.stage_plans.plans
                    for o in plan.overlaps}
        worst = max(self.stage_plans.plans, key=lambda plan: plan.arena_bytes)
        rest_plan = self.regions.rest_plan
        return ArenaPlan(
            arena_bytes=arena,
            placements=MappingProxyType(dict(placements)),
            overlaps=tuple(overlaps.values()) + tuple(rest_plan.overlaps),
            scratch=MappingProxyType(dict(scratch)),
            scratch_bytes=max(0, arena - max(self.activation_arena_bytes, peak)),
            peak_activation_bytes=peak,
            gap_bytes=max(0, self.activation_arena_bytes - peak),
            algorithm=f"patch {self.config.to_string()}: stage planned per patch, largest "
                      f"{worst.algorithm}; rest {rest_plan.algorithm}",
            overlap_buffers=MappingProxyType(dict(overlap_buffers)),
            options=self.plan_options,
            activation_arena_bytes=self.activation_arena_bytes)


def plan_schedule(graph: Graph, geometry: PatchGeometry, ops: list[Op], rest: Graph,
                  patch_scratch: list[dict[str, int]], rest_scratch: dict[str, int],
                  plan_options: PlanOptions) -> PatchSchedule:
    """Plan ``geometry`` (the stage ``ops``; ``rest`` = `arena.rest_graph`) for one arena:
    ``patch_scratch[p]`` is the kernel scratch of patch ``p`` (raster order; bytes by op name),
    ``rest_scratch`` that of the rest's ops."""
    grid = tuple((row, col) for row in geometry.rows for col in geometry.cols)  # raster order
    stage_plans = plan_stage(graph, geometry, ops, list(grid), patch_scratch, plan_options)
    cache = halo_cache_layout(graph, geometry)
    local_bytes = with_caches(stage_plans.arena_bytes, cache.total_bytes, plan_options.alignment)
    stage = geometry.stage
    input_bytes = graph.tensor(stage.input).nbytes
    regions = layout_regions(rest, stage.split, input_bytes, local_bytes, plan_options, rest_scratch)
    figures = PatchEvaluator(graph, plan_options.conventions,
                             stage_plans.options.conventions).evaluate(geometry.config)
    # The activations alone (plans without kernel scratch): arena = peak + gap + scratch growth.
    local_alone = plan_patches(graph, geometry, ops, list(grid), [{}] * len(grid),
                               stage_plans.options)
    local_alone_bytes = with_caches(local_alone.arena_bytes, cache.total_bytes,
                                    plan_options.alignment)
    activation_arena = layout_regions(rest, stage.split, input_bytes, local_alone_bytes,
                                      plan_options, {}).arena_bytes
    return PatchSchedule(geometry.config, geometry, grid, plan_options, stage_plans, cache, rest,
                         regions, figures, activation_arena)
