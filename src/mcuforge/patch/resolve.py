"""The one ``--patch`` resolver: ``none | auto | min-memory | RxC@SPLIT[+halo-MODE]`` to the figures
of the schedule it names (`evaluate.PatchPlan`; None for layer-based execution).

Every command resolves ``--patch`` here (profile, compile, bench, NAS deployment, the demo), under
one `analysis.conventions.MemoryConventions`. What differs between them is only the set of schedules
the search may pick, given as `GridFamily` values and an optional ``check`` that refuses a schedule
(the code generator passes the schedules its C supports, `codegen.patch_emit.C_GRID_FAMILIES` and
`check_c_patch_support`), and, for code that needs it, a floor under each schedule's peak: the arena
the planner gives the rest of the graph after the split (the greedy planner cannot always lay the
rest's pointwise overlaps out at their analytic figure; the C needs that arena whatever the stage).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ..analysis.conventions import DEFAULT_CONVENTIONS, MemoryConventions
from ..errors import McuforgeError, UnsupportedOpError
from ..ir import Graph
from ..planner.arena import PlanOptions, plan_arena
from .arena import rest_graph
from .evaluate import PatchEvaluator, PatchPlan
from .geometry import PatchConfig, PatchGeometry, parse_patch_option, patch_geometry
from .halo_cache import HALO_MODES
from .search import Candidate, PatchSearch, check_mac_factor, choose, pareto_front, search_patches

HALO_CHOICES = HALO_MODES + ("any",)


@dataclass(frozen=True)
class GridFamily:
    """Schedules a search tries: ``grids`` (``square`` n x n or ``rows`` n x 1) up to ``max_grid``,
    under each of ``halo_modes``; with ``stage_overlap_pointwise`` False the patch stage is
    evaluated without pointwise overlaps (as the C generates cached halos)."""

    grids: str
    halo_modes: tuple[str, ...]
    max_grid: int
    stage_overlap_pointwise: bool = True


def resolve_schedule(graph: Graph, option: str, conventions: MemoryConventions = DEFAULT_CONVENTIONS,
                     sram_bytes: int | None = None, halo: str = "none",
                     families: tuple[GridFamily, ...] | None = None,
                     check: Callable[[Graph, PatchGeometry], None] | None = None,
                     rest_floor: PlanOptions | None = None,
                     max_mac_factor: float | None = None) -> PatchPlan | None:
    """The plan ``option`` names (None for ``none`` or when ``auto`` keeps layer-based execution).
    ``halo`` is the halo mode of an explicit schedule, or the modes the default search (square
    grids up to 8x8) may use (``any``: all of them); ``families`` replace that search; ``check``
    raises `UnsupportedOpError` for a schedule that cannot run (an explicit one: the error
    propagates; a searched one: it is skipped); ``rest_floor`` raises each searched schedule's peak
    to the planned arena of the rest of the graph under those plan options. ``max_mac_factor``
    (``--max-macs``) limits the searched schedules to that factor of the layer-based MACs
    (`search.choose`) and refuses an explicit schedule above it."""
    if halo not in HALO_CHOICES:
        raise McuforgeError(f"--halo {halo!r}: choose from {', '.join(HALO_CHOICES)}")
    check_mac_factor(max_mac_factor)
    explicit_halo = "none" if halo == "any" else halo
    parsed = parse_patch_option(option, graph, explicit_halo)
    if parsed == "none":
        if max_mac_factor is not None:
            raise McuforgeError("--max-macs limits the schedule --patch auto or min-memory "
                                "picks: give one of them")
        return None
    if isinstance(parsed, PatchConfig):
        if check is not None:
            check(graph, patch_geometry(graph, parsed))
        plan = PatchEvaluator(graph, conventions).evaluate(parsed)
        _check_explicit_macs(plan, max_mac_factor)
        return plan
    if families is None:
        families = (GridFamily("square", HALO_MODES if halo == "any" else (halo,), 8),)
    searches = [search_patches(graph, conventions, halo_modes=family.halo_modes,
                               grids=family.grids, max_grid=family.max_grid,
                               stage_options=None if family.stage_overlap_pointwise
                               else replace(conventions, overlap_pointwise=False))
                for family in families]
    layer_based = searches[0].layer_based
    candidates = [layer_based]
    rest_arenas: dict[str, int] = {}
    for search in searches:
        for candidate in search.candidates:
            if candidate.plan is None:
                continue
            if check is not None:
                try:
                    check(graph, patch_geometry(graph, candidate.plan.config))
                except UnsupportedOpError:
                    continue
            if rest_floor is not None:
                candidate = _with_rest_arena(graph, candidate, rest_floor, rest_arenas)
            candidates.append(candidate)
    combined = PatchSearch(tuple(candidates), pareto_front(candidates), layer_based, False)
    return choose(combined, parsed, sram_bytes, max_mac_factor).plan


def _check_explicit_macs(plan: PatchPlan, max_mac_factor: float | None) -> None:
    """Refuse an explicit schedule whose MACs exceed ``max_mac_factor`` x layer-based."""
    if max_mac_factor is None:
        return
    layer_macs = plan.total_macs_layer
    if plan.total_macs > layer_macs * max_mac_factor:
        raise McuforgeError(f"--patch {plan.config.to_string()} needs {plan.total_macs:,} MACs, "
                            f"{plan.total_macs / layer_macs:.3f}x the layer-based {layer_macs:,}: "
                            f"above --max-macs {max_mac_factor:g}")


def _with_rest_arena(graph: Graph, candidate: Candidate, plan_options: PlanOptions,
                     rest_arenas: dict[str, int]) -> Candidate:
    """``candidate`` with its peak raised to the planned arena of the rest after its split."""
    split = candidate.plan.config.split_block
    if split not in rest_arenas:
        geometry = patch_geometry(graph, PatchConfig((1, 1), split))
        rest_arenas[split] = plan_arena(rest_graph(graph, geometry), plan_options).arena_bytes
    return replace(candidate, peak_bytes=max(candidate.peak_bytes, rest_arenas[split]))
