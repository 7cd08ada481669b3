"""Multi-stage fusion (in the spirit of msf-CNN): several patch stages per network, the last of
which may reach the classifier by accumulating the global pooling patch by patch.

A `MultiStageSchedule` is a tuple of `FusedStage` s, in network order, that do not overlap; every
block outside them runs layer by layer. A fused stage is a run of consecutive blocks
``first_block .. last_block`` computed patch by patch on its own ``rows x cols`` grid of its output
tensor, with its own halo mode (`halo_cache.py`); its input is the one tensor it reads from
outside (the network input or the previous segment's output, materialised) and its output is
materialised in full, unless the stage is ``pooled``: then the block after ``last_block`` is a
global pooling (one window over the whole map, `OpDef.pools_globally`), and each patch's
output tile is summed into an int32 accumulator per channel instead, so the last feature map never
exists; after the last patch the pool's output is computed from the sums and the classifier runs
layer by layer.

Memory (bytes; the conventions of `geometry.py`, under one `MemoryConventions`), per fused stage and
patch: the patch's live set (`evaluate.StageLiveness`, the same rules as a single patch stage) +
the halo caches + the stage input in full (not counted when it is the network input and the input
is streamed) + the output tensor in full, or, pooled, the patch's output tile and the accumulator
(4 bytes per channel). A pooled stage's finish holds the accumulator and the pool output. Layer-by-
layer ops count their live bytes in the layer-based profile (block boundaries are clean: exactly
one tensor crosses, so the live set of an op outside the stages is the same as layer by layer).
The schedule's peak is the largest of these.

MACs: every fused stage's ops compute their fresh regions per patch (`evaluate.stage_macs`); the
overhead over layer-based execution is the recomputed halo; the global pool's MACs are unchanged.

`evaluate` gives a schedule's figures; `msf_search.py` searches stage boundaries, grids and halo
modes; `runtime.multistage` executes a schedule bit-exact with layer-based execution.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..analysis.conventions import DEFAULT_CONVENTIONS, MemoryConventions
from ..analysis.cost import op_macs
from ..analysis.memory import memory_profile
from ..analysis.receptive import AxisPatch, axis_geometry, axis_window, tile_intervals
from ..errors import McuforgeError
from ..ir import Graph, Op
from ..ops import op_def
from .evaluate import StageLiveness, stage_macs
from .geometry import (PatchConfig, PatchGeometry, PatchStage, check_grid_and_halo, patch_geometry,
                       patch_stage)
from .halo_cache import halo_cache_layout

ACCUMULATOR_BYTES = 4  # an int32 sum per channel


@dataclass(frozen=True)
class FusedStage:
    """Blocks ``first_block .. last_block`` computed patch by patch on a ``grid`` of the last
    block's output, with halo mode ``halo``; ``pooled``: the global pooling block after
    ``last_block`` accumulates the tiles (the stage reaches the classifier)."""

    first_block: str
    last_block: str
    grid: tuple[int, int]
    halo: str = "none"
    pooled: bool = False

    def __post_init__(self) -> None:
        check_grid_and_halo(self.grid, self.halo)

    def to_string(self) -> str:
        """``RxC@FIRST-LAST`` (``+pool`` when pooled, ``+halo-MODE`` when caching)."""
        text = f"{self.grid[0]}x{self.grid[1]}@{self.first_block}-{self.last_block}"
        text += "+pool" if self.pooled else ""
        return text if self.halo == "none" else f"{text}+halo-{self.halo}"


@dataclass(frozen=True)
class MultiStageSchedule:
    """Fused stages in network order; every block outside them runs layer by layer."""

    stages: tuple[FusedStage, ...]

    def to_string(self) -> str:
        """The stages as text, ``none`` for layer-based execution."""
        return " ".join(stage.to_string() for stage in self.stages) or "none"


@dataclass(frozen=True)
class ResolvedStage:
    """A `FusedStage` on its graph: the patch geometry (its `PatchStage` holds the ops, input and
    output tensor), the global pool op when pooled, and the graph-op index range it covers."""

    stage: FusedStage
    geometry: PatchGeometry
    pool: Op | None
    start_index: int
    stop_index: int  # one past the last op covered (the pool included)


def global_pool_after(graph: Graph, stage: PatchStage) -> Op | None:
    """The op after the stage when it is a global pooling whose only input is the stage's output,
    read by nothing else, and the only op of its block; else None."""
    if stage.end_index + 1 >= len(graph.ops):
        return None
    op = graph.ops[stage.end_index + 1]
    if graph.activation_inputs(op) != [stage.split]:
        return None
    readers = [o for o in graph.ops if stage.split in graph.activation_inputs(o)]
    block = graph.block_of_op().get(op.name)
    if len(readers) != 1 or block is None:
        return None
    if [b.ops for b in graph.blocks if b.name == block] != [(op.name,)]:
        return None
    return op if op_def(op.kind).pools_globally(graph, op) else None


def resolve_stage(graph: Graph, stage: FusedStage, patch: PatchStage | None = None,
                  axes: dict[tuple, tuple[AxisPatch, ...]] | None = None) -> ResolvedStage:
    """``stage`` on ``graph`` (``patch``: its `PatchStage` when already known; ``axes``: a memo of
    per-axis geometries, for a search); raises `McuforgeError` naming the reason when it cannot
    run."""
    where = f"fused stage {stage.to_string()}"
    if patch is None:
        patch = patch_stage(graph, stage.last_block, first_block=stage.first_block)
    height, width = graph.tensor(patch.split).shape[1:3]
    if stage.grid[0] > height or stage.grid[1] > width:
        raise McuforgeError(f"{where}: the output {patch.split} is only {height}x{width}")
    pool = global_pool_after(graph, patch) if stage.pooled else None
    if stage.pooled and pool is None:
        raise McuforgeError(f"{where}: block {stage.last_block} is not followed by a global "
                            "pooling block that reads only its output")
    config = PatchConfig(stage.grid, stage.last_block, stage.halo)
    if axes is None:
        geometry = patch_geometry(graph, config, patch)
    else:
        ops = [graph.op(name) for name in patch.ops]
        per_axis = []
        for axis, (parts, size) in enumerate(zip(stage.grid, (height, width)), start=1):
            cache = stage.halo == "full" or (axis == 2 and stage.halo == "cols")
            # Both axes of a square stage with the same windows share one geometry.
            profile = (size, graph.tensor(patch.input).shape[axis]) + tuple(
                (axis_window(graph, op, axis), graph.tensor(op.outputs[0]).shape[axis])
                for op in ops)
            key = (stage.first_block, stage.last_block, profile, parts, cache)
            if key not in axes:
                axes[key] = axis_geometry(graph, ops, patch.split, axis,
                                          tile_intervals(size, parts), cache)
            per_axis.append(axes[key])
        geometry = PatchGeometry(config, patch, per_axis[0], per_axis[1])
    start = graph.op_index()[patch.ops[0]]
    return ResolvedStage(stage, geometry, pool, start, patch.end_index + 1 + (pool is not None))


def resolve_schedule(graph: Graph, schedule: MultiStageSchedule) -> tuple[ResolvedStage, ...]:
    """Every stage of ``schedule`` resolved, checked to be in network order and disjoint."""
    resolved = tuple(resolve_stage(graph, stage) for stage in schedule.stages)
    for before, after in zip(resolved, resolved[1:]):
        if after.start_index < before.stop_index:
            raise McuforgeError(f"fused stages {before.stage.to_string()} and "
                                f"{after.stage.to_string()} overlap or are out of order")
    return resolved


@dataclass(frozen=True)
class StageFigures:
    """Figures of one fused stage: its peak (bytes), the peak of its worst patch's op, its MACs
    layer by layer and patch by patch, and its halo caches (bytes)."""

    stage: FusedStage
    peak_bytes: int
    peak_op: str
    macs_layer: int
    macs_patch: int
    cache_bytes: int

    @property
    def mac_overhead(self) -> int:
        """Recomputed MACs over layer-based execution."""
        return self.macs_patch - self.macs_layer


@dataclass(frozen=True)
class MultiStageFigures:
    """Figures of a schedule: peak (bytes), MACs, layer-based MACs and each stage's figures."""

    schedule: MultiStageSchedule
    peak_activation_bytes: int
    macs: int
    layer_macs: int
    layer_peak_activation_bytes: int
    stages: tuple[StageFigures, ...]

    @property
    def mac_factor(self) -> float:
        """MACs relative to layer-based execution."""
        return self.macs / self.layer_macs if self.layer_macs else 1.0

    def to_json(self) -> dict:
        """JSON-ready figures."""
        return {"schedule": self.schedule.to_string(),
                "peak_activation_bytes": self.peak_activation_bytes, "macs": self.macs,
                "layer_macs": self.layer_macs, "mac_factor": round(self.mac_factor, 4),
                "layer_peak_activation_bytes": self.layer_peak_activation_bytes,
                "stages": [{"stage": f.stage.to_string(), "peak_bytes": f.peak_bytes,
                            "peak_op": f.peak_op, "mac_overhead": f.mac_overhead,
                            "halo_cache_bytes": f.cache_bytes} for f in self.stages]}


class MultiStageEvaluator:
    """Figures of multi-stage schedules of one graph under one set of conventions (the network
    input counted or streamed as ``conventions.count_network_input`` says); stages and patch
    shapes seen before are looked up, so a search over many schedules stays fast."""

    def __init__(self, graph: Graph, conventions: MemoryConventions = DEFAULT_CONVENTIONS):
        self.graph = graph
        self.conventions = conventions
        self.layer = memory_profile(graph, conventions)
        self.op_live_bytes = [entry.live_bytes for entry in self.layer.per_op]
        self.total_macs = sum(op_macs(graph, op) for op in graph.ops)
        self._liveness: dict[tuple[str, str], StageLiveness] = {}
        self._live_memo: dict[tuple, tuple[int, str]] = {}
        self.axes: dict[tuple, tuple[AxisPatch, ...]] = {}
        self._stages: dict[FusedStage, StageFigures] = {}

    def layer_bytes(self, start: int, stop: int) -> int:
        """The largest layer-based live bytes of graph ops ``[start, stop)``."""
        return max(self.op_live_bytes[start:stop], default=0)

    def stage_figures(self, stage: FusedStage, resolved: ResolvedStage | None = None
                      ) -> StageFigures:
        """Peak, MACs and caches of one fused stage (see the module docstring)."""
        if stage in self._stages:
            return self._stages[stage]
        graph = self.graph
        resolved = resolve_stage(graph, stage) if resolved is None else resolved
        geometry = resolved.geometry
        patch = geometry.stage
        ops = geometry.stage_ops(graph)
        key = (stage.first_block, stage.last_block)
        if key not in self._liveness:
            self._liveness[key] = StageLiveness(graph, patch, ops,
                                                replace(self.conventions, count_network_input=False))
        liveness = self._liveness[key]
        cache = halo_cache_layout(graph, geometry)
        input_bytes = graph.tensor(patch.input).nbytes
        if patch.input in graph.inputs and not self.conventions.count_network_input:
            input_bytes = 0
        output = graph.tensor(patch.split)
        element_bytes = output.nbytes // output.num_elements
        channel_bytes = output.shape[3] * element_bytes
        accumulator = ACCUMULATOR_BYTES * output.shape[3]
        names = sorted({n for op in ops for n in op.inputs + op.outputs if graph.is_activation(n)})
        row_keys = [tuple(row.buffers[n].size for n in names) for row in geometry.rows]
        col_keys = [tuple(col.buffers[n].size for n in names) for col in geometry.cols]
        held = input_bytes + cache.total_bytes + (accumulator if resolved.pool is not None
                                                  else output.nbytes)
        peak, peak_op = -1, ""
        for row, row_key in zip(geometry.rows, row_keys):
            for col, col_key in zip(geometry.cols, col_keys):
                signature = key + (row_key, col_key)
                if signature not in self._live_memo:
                    live = liveness.live_bytes(row, col)
                    worst = max(range(len(ops)), key=live.__getitem__)
                    self._live_memo[signature] = (live[worst], ops[worst].name)
                live_bytes, op_name = self._live_memo[signature]
                tile = (row.tile.size * col.tile.size * channel_bytes
                        if resolved.pool is not None else 0)
                if live_bytes + held + tile > peak:
                    peak, peak_op = live_bytes + held + tile, op_name
        if resolved.pool is not None:
            finish = accumulator + graph.tensor(resolved.pool.outputs[0]).nbytes
            if finish > peak:
                peak, peak_op = finish, resolved.pool.name
        macs_layer, macs_patch, _ = stage_macs(graph, ops, geometry)
        figures = StageFigures(stage, peak, peak_op, macs_layer, macs_patch, cache.total_bytes)
        self._stages[stage] = figures
        return figures

    def evaluate(self, schedule: MultiStageSchedule) -> MultiStageFigures:
        """Peak and MACs of ``schedule`` (see the module docstring)."""
        resolved = resolve_schedule(self.graph, schedule)
        figures = tuple(self.stage_figures(r.stage, r) for r in resolved)
        peak, position = 0, 0
        for stage, stage_figures in zip(resolved, figures):
            peak = max(peak, self.layer_bytes(position, stage.start_index), stage_figures.peak_bytes)
            position = stage.stop_index
        peak = max(peak, self.layer_bytes(position, len(self.graph.ops)))
        macs = self.total_macs + sum(f.mac_overhead for f in figures)
        return MultiStageFigures(schedule, peak, macs, self.total_macs,
                                 self.layer.peak_activation_bytes, figures)


def evaluate_multistage(graph: Graph, schedule: MultiStageSchedule,
                        conventions: MemoryConventions = DEFAULT_CONVENTIONS) -> MultiStageFigures:
    """Peak and MACs of ``schedule`` on ``graph`` under ``conventions``."""
    return MultiStageEvaluator(graph, conventions).evaluate(schedule)


__all__ = ["FusedStage", "MultiStageEvaluator", "MultiStageFigures", "MultiStageSchedule",
           "ResolvedStage", "StageFigures", "evaluate_multistage", "global_pool_after",
           "resolve_schedule", "resolve_stage"]
