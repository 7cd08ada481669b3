"""Search over patch schedules (split, grid, halo mode): the Pareto front of peak memory vs MACs.

Candidates: every split where patching can lower the peak, every square grid ``n x n`` with
``2 <= n <= min(max_grid, split size)``, and each requested halo mode. A split can only help if the
layer-based peak of the rest of the graph is below the layer-based peak; a later split is tried only
when its rest is strictly smaller than every earlier split's (a later split with the same rest only
adds ops, hence memory and MACs, to the patch stage). Each candidate is evaluated exactly
(`evaluate.py`); the front keeps the candidates no other candidate beats on both peak and MACs.
Layer-based execution (no patches) is always a candidate.

Choices: ``min-memory`` takes the smallest peak (then the fewest MACs); ``auto`` with an SRAM budget
takes the fewest MACs among the schedules that fit (layer-based when it fits, even if halo caching
matches its MACs with a smaller peak), and raises
`DoesNotFitError` when none does; ``auto`` without a budget takes the smallest peak whose MACs are
within ``AUTO_MAC_BUDGET`` of layer-based (MCUNetV2 accepts about 10% overhead).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.conventions import DEFAULT_CONVENTIONS, MemoryConventions
from ..errors import DoesNotFitError, McuforgeError
from ..ir import Graph
from .evaluate import PatchEvaluator, PatchPlan
from .geometry import PatchConfig, split_candidates

AUTO_MAC_BUDGET = 1.10


@dataclass(frozen=True)
class Candidate:
    """One point of the search: a plan (None = layer-based), its peak and MACs."""

    plan: PatchPlan | None
    peak_bytes: int
    macs: int

    @property
    def label(self) -> str:
        """The schedule as text (``none`` for layer-based)."""
        return "none" if self.plan is None else self.plan.config.to_string()


@dataclass(frozen=True)
class PatchSearch:
    """Every candidate evaluated, the Pareto front (ascending peak) and the layer-based point."""

    candidates: tuple[Candidate, ...]
    front: tuple[Candidate, ...]
    layer_based: Candidate
    input_streamed: bool


def _peak(plan: PatchPlan, input_streamed: bool) -> int:
    return plan.peak_activation_bytes_input_streamed if input_streamed else plan.peak_activation_bytes


def pareto_front(candidates: list[Candidate]) -> tuple[Candidate, ...]:
    """The candidates not dominated on (peak, MACs), by ascending peak."""
    front: list[Candidate] = []
    for candidate in sorted(candidates, key=lambda c: (c.peak_bytes, c.macs)):
        if not front or candidate.macs < front[-1].macs:
            front.append(candidate)
    return tuple(front)


def search_patches(graph: Graph, options: MemoryConventions = DEFAULT_CONVENTIONS,
                   halo_modes: tuple[str, ...] = ("none",), max_grid: int = 8,
                   input_streamed: bool = False, grids: str = "square",
                   stage_options: MemoryConventions | None = None) -> PatchSearch:
    """Evaluate the candidate schedules of ``graph`` (see module docstring). ``grids`` is
    ``square`` (n x n) or ``rows`` (n x 1 row strips, the grids whose halos the generated C caches);
    ``stage_options`` are the patch stage's memory conventions when they differ from ``options``."""
    if grids not in ("square", "rows"):
        raise McuforgeError(f"grids must be 'square' or 'rows', not {grids!r}")
    evaluator = PatchEvaluator(graph, options, stage_options)
    layer_profile = evaluator.streamed if input_streamed else evaluator.layer
    layer = Candidate(None, layer_profile.peak_activation_bytes, evaluator.total_macs)
    candidates = [layer]
    best_rest = layer.peak_bytes
    for stage in split_candidates(graph):
        rest = max((e.live_bytes for e in evaluator.layer.per_op[stage.end_index + 1:]), default=0)
        if rest >= best_rest:
            continue
        best_rest = rest
        height, width = graph.tensor(stage.split).shape[1:3]
        size = height if grids == "rows" else min(height, width)
        for n in range(2, min(max_grid, size) + 1):
            for halo in halo_modes:
                grid = (n, 1) if grids == "rows" else (n, n)
                plan = evaluator.evaluate(PatchConfig(grid, stage.split_block, halo))
                candidates.append(Candidate(plan, _peak(plan, input_streamed), plan.total_macs))
    return PatchSearch(tuple(candidates), pareto_front(candidates), layer, input_streamed)


def choose(search: PatchSearch, policy: str, sram_bytes: int | None = None) -> Candidate:
    """The schedule ``policy`` (``auto`` or ``min-memory``) picks (see module docstring)."""
    if policy == "min-memory":
        return search.front[0]
    if policy != "auto":
        raise McuforgeError(f"unknown patch policy {policy!r}")
    if sram_bytes is not None:
        fitting = [c for c in search.candidates if c.peak_bytes <= sram_bytes]
        if not fitting:
            raise DoesNotFitError("the smallest patch schedule " + search.front[0].label,
                                  search.front[0].peak_bytes, sram_bytes)
        # Equal MACs: layer-based first (nothing to gain from patches), then the smaller peak.
        return min(fitting, key=lambda c: (c.macs, c.plan is not None, c.peak_bytes))
    budget = search.layer_based.macs * AUTO_MAC_BUDGET
    return min((c for c in search.front if c.macs <= budget), key=lambda c: (c.peak_bytes, c.macs))
