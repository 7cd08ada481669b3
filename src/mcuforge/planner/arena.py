"""The static arena planner: one buffer, an offset for every activation tensor, kernel scratch in gaps.

API (stable; the code generator builds on it)::

    plan = plan_arena(graph, PlanOptions(), scratch_sizes={"conv_3": 1152})
    plan.arena_bytes                      # size of the one static arena
    plan.placements["conv_3:out"]         # TensorPlacement(name, offset, size, first, last)
    plan.overlaps                         # the Overlaps (analysis/overlap.py) the layout uses
    plan.overlap_buffers["dw_4"]          # ScratchPlacement of the temp buffer an overlap needs
    plan.scratch["conv_3"]                # ScratchPlacement of the kernel scratch asked for
    verify_plan(graph, plan)              # raises PlanError unless the layout is sound

Figures: ``arena_bytes = peak_activation_bytes + gap_bytes + scratch_bytes``, where
``peak_activation_bytes`` is the analytic peak (`analysis.memory.memory_profile` under the same
conventions), ``gap_bytes`` what the layout of activations loses to it (0 when the planner reaches the
analytic figure) and ``scratch_bytes`` the growth that kernel scratch caused when it did not fit in the
gaps of the activation layout.

Conventions shared with the analysis and the kernels: a tensor occupies its bytes from the op that
writes it to the last op that reads it, both included (`analysis.liveness`); graph inputs are in the
arena unless the conventions' ``count_network_input`` is off (then the caller's buffer is read
directly); the float tensors of edge QUANTIZE/DEQUANTIZE are the caller's and are not placed. An op
may write its output over a dying input only as `analysis.overlap.find_overlap` allows, at exactly
the offset it gives. The lifetimes are the analysis' own (`MemoryProfile.lifetimes`). The temp
buffer such an overlap needs (the in-place depthwise channel plane, the pointwise pixel buffer, i.e.
``Overlap.extra_bytes``) is planned here, in ``overlap_buffers``: kernel ``scratch_sizes`` must not
include it.

Algorithm.
1. Overlap selection. For each op, `find_overlap` gives the legal overlap (if any). The *needed*
   policy always uses reshape aliases and element-wise overlaps and uses in-place depthwise and
   pointwise overlaps only at ops whose live set would exceed the analytic peak without them (plain
   kernels are simpler and faster, and unneeded pointwise overlaps drift: chained expansion and
   projection shift offsets further at every block). The *all* policy (every legal overlap) is tried
   only when *needed* does not reach the analytic peak. An op listed in ``plan.overlaps`` must run its
   overlap-safe kernel variant; every other op reads and writes disjoint buffers.
2. Rigid groups. Tensors chained by the selected overlaps are merged, in execution order, into groups
   with fixed relative offsets (an in-place depthwise output at its input's offset; a pointwise
   expansion input at ``N*(C_out - C_in)`` inside its output; a stride-2 in-place depthwise output
   fills the start of its input, whose tail is free afterwards). A merge is refused (the op then runs
   without the overlap) when it would make two other members of the group share bytes while both are
   live, or make the group wider than the analytic peak.
3. Offsets. Groups, single tensors and overlap buffers are placed by `placement.greedy_place` (several
   orders, best and first fit, lowest arena kept, then order repair by local search); when there are
   at most ``exact_search_max_tensors`` items, `placement.exact_place` (branch and bound over
   placement orders) tries to improve it. Offsets of items are multiples of ``alignment``; a member
   whose offset is fixed by an overlap keeps it.
4. Scratch. Each op's scratch is placed, largest first, by best fit among the bytes free while that op
   runs (scratch sharing: it lives in the gaps of the activation layout); only when no gap fits does
   the arena grow, and that growth is ``scratch_bytes``. When it grows, steps 3-4 are also tried with
   the scratch buffers placed together with the activations (the activations may then leave a gap).
The candidate with the smallest arena wins (then the smaller activation gap, then fewer overlaps).
The result is checked by `verify_plan` before it is returned. Limits: finding the smallest arena is
NP-complete (dynamic storage allocation); the greedy orders and the order repair are heuristics and the
exact search is for small graphs only; the execution order is taken as given (no branch reordering).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Mapping

from ..analysis.conventions import DEFAULT_CONVENTIONS, MemoryConventions
from ..analysis.liveness import Lifetime
from ..analysis.memory import memory_profile
from ..analysis.overlap import Overlap, OverlapKind
from ..ir import Graph
from .placement import (Block, Item, Member, blocks_of, exact_place, greedy_place, live_lower_bound,
                        place_one)
from .verify import PlanError, verify_plan

__all__ = ["ArenaPlan", "PlanError", "PlanOptions", "ScratchPlacement", "TensorPlacement",
           "plan_arena", "verify_plan"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanOptions:
    """Settings of one plan: the memory ``conventions`` (`analysis.conventions`; the analytic peak is
    computed under the same ones), ``alignment`` (the offset granularity in bytes), and
    ``exact_search_max_tensors`` (graphs with at most that many items also get the exact search)."""

    conventions: MemoryConventions = DEFAULT_CONVENTIONS
    alignment: int = 4
    exact_search_max_tensors: int = 12

    def with_conventions(self, **changes: bool) -> "PlanOptions":
        """These options with some convention switches changed (e.g. ``overlap_pointwise=False``)."""
        return replace(self, conventions=replace(self.conventions, **changes))


@dataclass(frozen=True)
class TensorPlacement:
    """Where a tensor lives: bytes ``[offset, offset + size)`` of the arena, from op ``first`` to op
    ``last`` (both included; -1 is before the first op, ``len(ops)`` after the last)."""

    name: str
    offset: int
    size: int
    first: int
    last: int

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.offset + self.size


@dataclass(frozen=True)
class ScratchPlacement:
    """A buffer used only while op ``op_name`` runs: bytes ``[offset, offset + size)``."""

    op_name: str
    offset: int
    size: int

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.offset + self.size


@dataclass(frozen=True)
class ArenaPlan:
    """A layout of one static arena (see the module docstring for the figures)."""

    arena_bytes: int
    placements: Mapping[str, TensorPlacement]
    overlaps: tuple[Overlap, ...]
    scratch: Mapping[str, ScratchPlacement]
    scratch_bytes: int
    peak_activation_bytes: int
    gap_bytes: int
    algorithm: str
    overlap_buffers: Mapping[str, ScratchPlacement]
    options: PlanOptions
    activation_arena_bytes: int


def plan_arena(graph: Graph, options: PlanOptions = PlanOptions(),
               scratch_sizes: Mapping[str, int] | None = None) -> ArenaPlan:
    """Lay out ``graph``'s activations (and its kernels' scratch, by op name) in one arena."""
    if options.alignment < 1:
        raise ValueError("alignment must be >= 1")
    scratch_items = _scratch_items(graph, scratch_sizes or {})
    profile = memory_profile(graph, options.conventions)
    spans = dict(profile.lifetimes)  # the one lifetime sweep (streamed input already left out)
    peak = profile.peak_activation_bytes
    candidates = [(entry.index, entry.overlap) for entry in profile.per_op
                  if entry.overlap is not None and entry.overlap.input in spans
                  and entry.overlap.output in spans]
    live_without = {entry.index: sum(graph.tensors[n].nbytes for n in entry.live_tensors)
                    for entry in profile.per_op}
    always = (OverlapKind.ALIAS, OverlapKind.ELEMENTWISE)
    needed = [(i, ov) for i, ov in candidates if ov.kind in always or live_without[i] > peak]
    policies = [("needed overlaps", needed)]
    if len(needed) != len(candidates):
        policies.append(("all overlaps", candidates))

    best: tuple[tuple[int, int, int], _Layout] | None = None
    for policy_name, selected in policies:
        for joint in (False, True):
            layout = _layout(graph, spans, selected, peak, options, scratch_items, joint, policy_name)
            key = (layout.top, layout.activation_top, len(layout.used))
            if best is None or key < best[0]:
                best = (key, layout)
            if layout.top <= peak or not scratch_items or layout.top == layout.activation_top:
                break  # scratch fitted in gaps: placing it jointly cannot help
        if best[1].top <= peak:
            break  # nothing is below the analytic peak, and fewer overlaps win ties
    assert best is not None
    layout = best[1]
    plan = _plan_of(graph, spans, layout, peak, options)
    verify_plan(graph, plan)
    naive = sum(graph.tensors[name].nbytes for name in spans)
    log.info("%s: memory reduced from %d B (every tensor apart) to %d B", graph.name, naive,
             plan.arena_bytes)
    log.info("arena: %d B, analytic peak %d B, gap %d B, scratch %d B (%s)", plan.arena_bytes, peak,
             plan.gap_bytes, plan.scratch_bytes, plan.algorithm)
    return plan


@dataclass(frozen=True)
class _Layout:
    """One candidate layout: placed blocks (tensors, overlap buffers, scratch), the top of the
    activation blocks, the top of all, the overlaps used and how it was found."""

    blocks: tuple[Block, ...]
    activation_top: int
    top: int
    used: tuple[tuple[int, Overlap], ...]
    label: str


def _buffer_name(op_name: str) -> str:
    return f"{op_name}::overlap_buffer"


def _scratch_name(op_name: str) -> str:
    return f"{op_name}::scratch"


def _scratch_items(graph: Graph, scratch_sizes: Mapping[str, int]) -> list[Item]:
    """One single-op item per op with scratch, largest first."""
    index_of = graph.op_index()
    unknown = sorted(set(scratch_sizes) - set(index_of))
    if unknown:
        raise ValueError(f"scratch sizes given for ops not in graph {graph.name}: {unknown}")
    negative = sorted(name for name, size in scratch_sizes.items() if size < 0)
    if negative:
        raise ValueError(f"negative scratch sizes for ops {negative}")
    ordered = sorted((kv for kv in scratch_sizes.items() if kv[1] > 0),
                     key=lambda kv: (-kv[1], index_of[kv[0]]))
    return [Item((Member(_scratch_name(name), 0, size, index_of[name], index_of[name]),))
            for name, size in ordered]


def _layout(graph: Graph, spans: Mapping[str, Lifetime], selected: list[tuple[int, Overlap]],
            peak: int, options: PlanOptions, scratch_items: list[Item], joint: bool,
            policy_name: str) -> _Layout:
    """Groups, items and offsets for one overlap selection; scratch placed in the gaps afterwards, or
    (``joint``) placed together with the activations."""
    groups, used = _rigid_groups(graph, spans, selected, peak)
    items = [Item(tuple(Member(name, rel, graph.tensors[name].nbytes, spans[name].first,
                               spans[name].last) for name, rel in sorted(group.items(),
                                                                         key=lambda kv: kv[1])))
             for group in groups]
    for index, overlap in used:
        if overlap.extra_bytes > 0:
            name = _buffer_name(graph.ops[index].name)
            items.append(Item((Member(name, 0, overlap.extra_bytes, index, index),)))
    if joint:
        items += scratch_items
    bases, top, label = greedy_place(items, options.alignment)
    if top <= live_lower_bound(items):
        label += " (optimal: equals the live-bytes lower bound)"
    elif len(items) <= options.exact_search_max_tensors:
        exact_bases, exact_top, finished = exact_place(items, options.alignment, top)
        if exact_bases is not None:
            bases, top = exact_bases, exact_top
            label = "exact search" if finished else "exact search (node budget spent)"
        else:
            label += ", exact search found nothing smaller" if finished else \
                ", exact search (node budget spent) found nothing smaller"
    blocks = [block for item, base in zip(items, bases) for block in blocks_of(item, base)]
    scratch_names = {m.name for item in scratch_items for m in item.members}
    activation_top = max((b.end for b in blocks if b.name not in scratch_names), default=0)
    if joint:
        label += "; scratch placed with the activations"
    else:
        # Scratch sharing: best fit among the bytes free while the op runs, largest first; the
        # arena grows only when no gap fits.
        for item in scratch_items:
            member = item.members[0]
            live = [b for b in blocks if b.first <= member.first <= b.last]
            base = place_one(item, live, options.alignment, top, best_fit=True)
            blocks.extend(blocks_of(item, base))
            top = max(top, base + member.size)
    return _Layout(tuple(blocks), activation_top, top, tuple(used), f"{label}; {policy_name}")


def _plan_of(graph: Graph, spans: Mapping[str, Lifetime], layout: _Layout, peak: int,
             options: PlanOptions) -> ArenaPlan:
    """The public plan of a layout."""
    by_name = {b.name: b for b in layout.blocks}
    placements = {name: TensorPlacement(name, by_name[name].start, graph.tensors[name].nbytes,
                                        span.first, span.last) for name, span in spans.items()}
    buffers: dict[str, dict[str, ScratchPlacement]] = {"buffer": {}, "scratch": {}}
    for op in graph.ops:
        for kind, name in (("buffer", _buffer_name(op.name)), ("scratch", _scratch_name(op.name))):
            if name in by_name:
                block = by_name[name]
                buffers[kind][op.name] = ScratchPlacement(op.name, block.start, block.end - block.start)
    return ArenaPlan(
        arena_bytes=layout.top, placements=MappingProxyType(placements),
        overlaps=tuple(ov for _, ov in layout.used), scratch=MappingProxyType(buffers["scratch"]),
        scratch_bytes=layout.top - layout.activation_top, peak_activation_bytes=peak,
        gap_bytes=layout.activation_top - peak, algorithm=layout.label,
        overlap_buffers=MappingProxyType(buffers["buffer"]), options=options,
        activation_arena_bytes=layout.activation_top)


def _rigid_groups(graph: Graph, spans: Mapping[str, Lifetime], selected: list[tuple[int, Overlap]],
                  max_span: int) -> tuple[list[dict[str, int]], list[tuple[int, Overlap]]]:
    """Merge tensors chained by overlaps into groups ``{name: offset from the group's start}``."""
    group_of = {name: name for name in spans}
    members: dict[str, dict[str, int]] = {name: {name: 0} for name in spans}
    size = {name: graph.tensors[name].nbytes for name in spans}
    used = []
    for index, overlap in selected:
        root_in, root_out = group_of[overlap.input], group_of[overlap.output]
        if root_in == root_out:
            continue
        delta = members[root_in][overlap.input] + overlap.output_offset - \
            members[root_out][overlap.output]
        shifted = {name: rel + delta for name, rel in members[root_out].items()}
        if _conflicts(members[root_in], shifted, spans, size, (overlap.input, overlap.output)):
            continue
        merged = {**members[root_in], **shifted}
        low = min(merged.values())
        if max(rel + size[name] for name, rel in merged.items()) - low > max_span:
            continue
        members[root_in] = {name: rel - low for name, rel in merged.items()}
        for name in shifted:
            group_of[name] = root_in
        del members[root_out]
        used.append((index, overlap))
    return list(members.values()), used


def _conflicts(group_a: Mapping[str, int], group_b: Mapping[str, int], spans: Mapping[str, Lifetime],
               size: Mapping[str, int], allowed: tuple[str, str]) -> bool:
    """True when a member of ``group_a`` and one of ``group_b`` share bytes while both are live."""
    for a, rel_a in group_a.items():
        for b, rel_b in group_b.items():
            if (a, b) == allowed:
                continue
            if spans[a].first <= spans[b].last and spans[b].first <= spans[a].last \
                    and rel_a < rel_b + size[b] and rel_b < rel_a + size[a]:
                return True
    return False
