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

A MAC limit (``--max-macs F``, `check_mac_factor`) keeps only the schedules whose MACs are at most
``F`` times the layer-based MACs: ``min-memory`` then takes the smallest peak among them, ``auto``
with a budget the fewest MACs among those that fit (`DoesNotFitError` when none does), ``auto``
without a budget the smallest peak within ``F`` instead of ``AUTO_MAC_BUDGET``. Layer-based
execution is always within the limit (``F >= 1``).
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


def check_mac_factor(max_mac_factor: float | None) -> None:
    """Raise `McuforgeError` unless ``max_mac_factor`` is None or a finite factor >= 1 (the
    layer-based MACs are the least any schedule needs)."""
    if max_mac_factor is not None and not 1.0 <= max_mac_factor < float("inf"):
        raise McuforgeError(f"--max-macs {max_mac_factor}: a factor of the layer-based MACs, at "
                            "least 1.0 (e.g. 1.10 for +10 %)")


def within_macs(search: PatchSearch, max_mac_factor: float | None) -> list[Candidate]:
    """The candidates whose MACs are at most ``max_mac_factor`` x the layer-based MACs (all of
    them when it is None); layer-based execution is always one of them."""
    if max_mac_factor is None:
        return list(search.candidates)
    limit = search.layer_based.macs * max_mac_factor
    return [c for c in search.candidates if c.macs <= limit]


def choose(search: PatchSearch, policy: str, sram_bytes: int | None = None,
           max_mac_factor: float | None = None) -> Candidate:
    """The schedule ``policy`` (``auto`` or ``min-memory``) picks, with MACs at most
    ``max_mac_factor`` x layer-based when given (see module docstring)."""
    check_mac_factor(max_mac_factor)
    if policy not in ("auto", "min-memory"):
        raise McuforgeError(f"unknown patch policy {policy!r}")
    allowed = pareto_front(within_macs(search, max_mac_factor))
    if policy == "min-memory":
        return allowed[0]
    if sram_bytes is not None:
        fitting = [c for c in within_macs(search, max_mac_factor) if c.peak_bytes <= sram_bytes]
        if not fitting:
            what = "the smallest patch schedule " + allowed[0].label
            if max_mac_factor is not None:
                what += f" within {max_mac_factor:g}x the layer-based MACs"
            raise DoesNotFitError(what, allowed[0].peak_bytes, sram_bytes)
        # Equal MACs: layer-based first (nothing to gain from patches), then the smaller peak.
        return min(fitting, key=lambda c: (c.macs, c.plan is not None, c.peak_bytes))
    budget = search.layer_based.macs * (AUTO_MAC_BUDGET if max_mac_factor is None
                                        else max_mac_factor)
    return min((c for c in allowed if c.macs <= budget), key=lambda c: (c.peak_bytes, c.macs))
