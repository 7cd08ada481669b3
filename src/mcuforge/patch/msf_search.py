"""Search over multi-stage schedules (`multistage.py`): stage boundaries, grids and halo modes, by
dynamic programming over block boundaries; the Pareto front of peak memory vs MACs.

State ``k``: blocks ``0 .. k-1`` are done (their one output tensor is materialised). From ``k`` a
schedule goes on with block ``k`` layer by layer (to ``k + 1``), or with a fused stage of blocks
``k .. j`` (at most ``max_stage_blocks`` of them) on an ``n x n`` grid (``2 <= n <= max_grid``)
with one of ``halo_modes`` (to ``j + 1``), or, when block ``j + 1`` is a global pooling, the
same stage pooled (to ``j + 2``). A schedule's peak is the largest of its segments' peaks and its
MACs the layer-based MACs plus each stage's overhead; both combine monotonically, so keeping at
every state only the (peak, overhead) pairs no other pair at that state beats on both gives the
exact front over every schedule of these candidates. A fused stage that does not lower the peak
below what its blocks need layer by layer is dominated by running them layer by layer, and is
dropped. Figures are `multistage.MultiStageEvaluator`'s; the front's points re-evaluate to them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from tqdm import tqdm

from ..analysis.conventions import DEFAULT_CONVENTIONS, MemoryConventions
from ..errors import McuforgeError
from ..ir import Graph
from .geometry import PatchStage, patch_stage
from .halo_cache import HALO_MODES
from .multistage import (ACCUMULATOR_BYTES, FusedStage, MultiStageEvaluator, MultiStageSchedule,
                         global_pool_after, resolve_stage)


@dataclass(frozen=True)
class MultiStagePoint:
    """One schedule of the search with its peak (bytes) and MACs."""

    schedule: MultiStageSchedule
    peak_bytes: int
    macs: int


@dataclass(frozen=True)
class MultiStageSearch:
    """The Pareto front (ascending peak), the layer-based point, how many fused stages were
    evaluated and how long the search took (seconds: wall clock and this process's CPU time)."""

    front: tuple[MultiStagePoint, ...]
    layer_based: MultiStagePoint
    stages_evaluated: int
    seconds: float
    cpu_seconds: float
    conventions: MemoryConventions


@dataclass(frozen=True)
class _Partial:
    """A schedule of the first blocks: its peak, MAC overhead and stages (in order)."""

    peak_bytes: int
    overhead_macs: int
    stages: tuple[FusedStage, ...]


def _prune(partials: list[_Partial]) -> list[_Partial]:
    """The partials no other beats on both peak and overhead (ascending peak)."""
    kept: list[_Partial] = []
    for partial in sorted(partials, key=lambda p: (p.peak_bytes, p.overhead_macs, len(p.stages))):
        if not kept or partial.overhead_macs < kept[-1].overhead_macs:
            kept.append(partial)
    return kept


def square_grids(graph: Graph, stage: PatchStage, max_grid: int) -> list[tuple[int, int]]:
    """The ``n x n`` grids (2 <= n <= max_grid) of the stage's output, the smallest ``n`` for each
    largest tile size (a larger ``n`` with the same largest tile only adds patches)."""
    height, width = graph.tensor(stage.split).shape[1:3]
    grids, seen = [], set()
    for n in range(2, min(max_grid, height, width) + 1):
        tile = (-(-height // n), -(-width // n))
        if tile not in seen:
            seen.add(tile)
            grids.append((n, n))
    return grids


def _least_bytes(graph: Graph, stage: PatchStage, pooled: bool, streamed: bool) -> int:
    """A lower bound of a fused stage's peak: its input (unless streamed) and its output in full
    (pooled: the accumulator)."""
    output = graph.tensor(stage.split)
    held = ACCUMULATOR_BYTES * output.shape[3] if pooled else output.nbytes
    streamed_input = streamed and stage.input in graph.inputs
    return held + (0 if streamed_input else graph.tensor(stage.input).nbytes)


def _block_spans(graph: Graph) -> list[tuple[int, int]]:
    """Per block: the range ``[start, stop)`` of graph ops it holds (blocks in network order)."""
    index = graph.op_index()
    return [(min(index[n] for n in block.ops), max(index[n] for n in block.ops) + 1)
            for block in graph.blocks]


def search_multistage(graph: Graph, conventions: MemoryConventions = DEFAULT_CONVENTIONS,
                      halo_modes: tuple[str, ...] = HALO_MODES, max_grid: int = 8,
                      max_stage_blocks: int = 8, progress: bool = False) -> MultiStageSearch:
    """The Pareto front of multi-stage schedules of ``graph`` (see the module docstring), under
    ``conventions`` (``count_network_input`` off: the input streamed)."""
    if max_grid < 2 or max_stage_blocks < 1:
        raise McuforgeError(f"max_grid must be at least 2 and max_stage_blocks at least 1, got "
                            f"{max_grid} and {max_stage_blocks}")
    started, cpu_started = time.perf_counter(), time.process_time()
    evaluator = MultiStageEvaluator(graph, conventions)
    blocks = [block.name for block in graph.blocks]
    spans = _block_spans(graph)
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
        raise McuforgeError(f"{graph.name}: its blocks are not consecutive runs of ops")
    ops_count = len(graph.ops)
    streamed = not conventions.count_network_input
    lead = evaluator.layer_bytes(0, spans[0][0]) if spans else evaluator.layer_bytes(0, ops_count)
    states: list[list[_Partial]] = [[] for _ in range(len(blocks) + 1)]
    states[0] = [_Partial(lead, 0, ())]
    evaluated = 0
    steps = tqdm(range(len(blocks)), desc=f"msf search {graph.name}", disable=not progress,
                 leave=False)
    for k in steps:
        states[k] = _prune(states[k])
        if not states[k]:
            continue
        moves: list[tuple[int, int, int, FusedStage | None]] = []
        layer_peak = evaluator.layer_bytes(spans[k][0], spans[k][1])
        moves.append((k + 1, layer_peak, 0, None))
        for j in range(k, min(len(blocks), k + max_stage_blocks)):
            try:
                stage = patch_stage(graph, blocks[j], first_block=blocks[k])
            except McuforgeError:
                continue
            poolable = global_pool_after(graph, stage) is not None
            for pool in (False, True) if poolable else (False,):
                stop = j + 2 if pool else j + 1
                layer = evaluator.layer_bytes(spans[k][0], spans[stop - 1][1])
                if _least_bytes(graph, stage, pool, streamed) >= layer:
                    continue  # layer by layer needs no more memory, and no extra MACs
                for grid in square_grids(graph, stage, max_grid):
                    for halo in halo_modes:
                        fused = FusedStage(blocks[k], blocks[j], grid, halo, pool)
                        resolved = resolve_stage(graph, fused, stage, evaluator.axes)
                        figures = evaluator.stage_figures(fused, resolved)
                        evaluated += 1
                        if figures.peak_bytes < layer:
                            moves.append((stop, figures.peak_bytes, figures.mac_overhead, fused))
        for stop, peak, overhead, fused in moves:
            between = evaluator.layer_bytes(spans[stop - 1][1],
                                            spans[stop][0] if stop < len(blocks) else ops_count)
            for partial in states[k]:
                stages = partial.stages + ((fused,) if fused is not None else ())
                states[stop].append(_Partial(max(partial.peak_bytes, peak, between),
                                             partial.overhead_macs + overhead, stages))
    final = _prune(states[len(blocks)])
    front = tuple(MultiStagePoint(MultiStageSchedule(p.stages), p.peak_bytes,
                                  evaluator.total_macs + p.overhead_macs) for p in final)
    layer = MultiStagePoint(MultiStageSchedule(()), evaluator.layer.peak_activation_bytes,
                            evaluator.total_macs)
    return MultiStageSearch(front, layer, evaluated, time.perf_counter() - started,
                            time.process_time() - cpu_started, conventions)


def search_both_conventions(graph: Graph, conventions: MemoryConventions = DEFAULT_CONVENTIONS,
                            **options) -> tuple[MultiStageSearch, MultiStageSearch]:
    """`search_multistage` with the network input in the arena and streamed."""
    return (search_multistage(graph, replace(conventions, count_network_input=True), **options),
            search_multistage(graph, replace(conventions, count_network_input=False), **options))


__all__ = ["MultiStagePoint", "MultiStageSearch", "search_both_conventions", "search_multistage"]
