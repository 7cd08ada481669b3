"""Proof that an arena plan is sound: every byte has one owner at every op, save legal overlaps.

`verify_plan` recomputes everything it checks from the graph, not from the plan's own bookkeeping:
- every activation tensor (under the plan's conventions) is placed, with its own size and lifetime;
- every block (tensor, overlap buffer, kernel scratch) lies inside ``[0, arena_bytes)``; offsets are
  multiples of the alignment, except a tensor whose offset an overlap dictates;
- every overlap the plan uses is the one `find_overlap` allows at that op under the plan's options,
  and its geometry is the kernel's: reshape alias, element-wise and in-place depthwise outputs start at
  the input's offset; a pointwise expansion's input sits at ``N*(C_out - C_in)`` inside its output and
  a pointwise projection's output starts at its input's start; the overlap's temp buffer is planned;
- at every op, no two live blocks share a byte, except the input and output of the overlap that op uses;
- the figures add up and the arena is not below the analytic peak (which a sound layout cannot beat).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..analysis.memory import memory_profile
from ..analysis.overlap import Overlap, OverlapKind, find_overlap
from ..ir import Graph

if TYPE_CHECKING:
    from .arena import ArenaPlan


class PlanError(Exception):
    """An arena plan that breaks one of the rules `verify_plan` checks (a planner bug or a corrupted
    plan, never the user's input)."""


def expected_output_offset(graph: Graph, overlap: Overlap) -> int:
    """Where the overlap's output must start relative to its input's start, from the shapes alone."""
    if overlap.kind is OverlapKind.POINTWISE:
        src = graph.tensors[overlap.input].shape
        dst = graph.tensors[overlap.output].shape
        pixels = src[1] * src[2]
        return -pixels * (dst[3] - src[3]) if dst[3] > src[3] else 0
    return 0


def verify_plan(graph: Graph, plan: "ArenaPlan") -> None:
    """Raise `PlanError` naming the first broken rule (see the module docstring); None if sound."""
    options = plan.options
    analysis = memory_profile(graph, options.conventions)
    spans = analysis.lifetimes  # the analysis' one lifetime sweep (streamed input left out)
    missing = sorted(set(spans) - set(plan.placements))
    extra = sorted(set(plan.placements) - set(spans))
    if missing or extra:
        raise PlanError(f"placements missing {missing[:5]} / not activations {extra[:5]}")
    for name, span in spans.items():
        p = plan.placements[name]
        if p.name != name or p.size != graph.tensors[name].nbytes or (p.first, p.last) != \
                (span.first, span.last):
            raise PlanError(f"tensor {name}: placement {p} does not match size "
                            f"{graph.tensors[name].nbytes} and lifetime {span}")

    index_of = graph.op_index()
    used_at: dict[int, Overlap] = {}
    dying: dict[int, set[str]] = {}
    for name, span in spans.items():
        dying.setdefault(span.last, set()).add(name)
    producer = graph.producers()
    for overlap in plan.overlaps:
        op = producer.get(overlap.output)
        if op is None or overlap.input not in spans or overlap.output not in spans:
            raise PlanError(f"overlap {overlap}: tensors are not planned activations")
        index = index_of[op.name]
        allowed = find_overlap(graph, op, dying.get(index, set()), options.conventions.overlap)
        if allowed != overlap:
            raise PlanError(f"op {op.name}: overlap {overlap} is not the legal one ({allowed})")
        if index in used_at:
            raise PlanError(f"op {op.name}: two overlaps")
        used_at[index] = overlap
        shift = plan.placements[overlap.output].offset - plan.placements[overlap.input].offset
        want = expected_output_offset(graph, overlap)
        if shift != want or overlap.output_offset != want:
            raise PlanError(f"op {op.name}: {overlap.kind.value} output at {shift:+d} B from its input, "
                            f"the kernel needs {want:+d} B")
        if overlap.extra_bytes > 0:
            buffer = plan.overlap_buffers.get(op.name)
            if buffer is None or buffer.size < overlap.extra_bytes:
                raise PlanError(f"op {op.name}: overlap needs a {overlap.extra_bytes} B buffer, "
                                f"plan has {buffer}")
    for op_name in set(plan.overlap_buffers) | set(plan.scratch):
        if op_name not in index_of:
            raise PlanError(f"buffer for unknown op {op_name}")
    unexpected = set(plan.overlap_buffers) - {graph.ops[i].name for i in used_at}
    if unexpected:
        raise PlanError(f"overlap buffers for ops without an overlap: {sorted(unexpected)}")

    # Blocks as (label, start, end, first, last, must_align).
    pinned = {name for ov in plan.overlaps for name in (ov.input, ov.output)}
    blocks = [(f"tensor {p.name}", p.offset, p.end, p.first, p.last, p.name not in pinned)
              for p in plan.placements.values()]
    for kind, buffers in (("overlap buffer", plan.overlap_buffers), ("scratch", plan.scratch)):
        for op_name, buffer in buffers.items():
            if buffer.op_name != op_name:
                raise PlanError(f"{kind} keyed {op_name} names op {buffer.op_name}")
            index = index_of[op_name]
            blocks.append((f"{kind} of {op_name}", buffer.offset, buffer.end, index, index, True))
    for label, start, end, _, _, must_align in blocks:
        if start < 0 or end > plan.arena_bytes or end < start:
            raise PlanError(f"{label}: bytes [{start}, {end}) outside the arena of {plan.arena_bytes} B")
        if must_align and start % options.alignment:
            raise PlanError(f"{label}: offset {start} not a multiple of {options.alignment}")

    for time in range(-1, len(graph.ops) + 1):
        live = sorted((b for b in blocks if b[3] <= time <= b[4] and b[2] > b[1]), key=lambda b: b[1])
        legal = used_at.get(time)
        exempt = {f"tensor {legal.input}", f"tensor {legal.output}"} if legal else set()
        for i, a in enumerate(live):
            for b in live[i + 1:]:
                if b[1] >= a[2]:
                    break
                if {a[0], b[0]} != exempt:
                    where = graph.ops[time].name if 0 <= time < len(graph.ops) else f"time {time}"
                    raise PlanError(f"at {where}: {a[0]} [{a[1]}, {a[2]}) and {b[0]} "
                                    f"[{b[1]}, {b[2]}) share bytes")

    top = max((b[2] for b in blocks), default=0)
    if plan.activation_arena_bytes < max((b[2] for b in blocks if not b[0].startswith("scratch")),
                                         default=0):
        raise PlanError("activation arena smaller than the activation layout")
    if top > plan.arena_bytes:
        raise PlanError(f"blocks reach {top} B, arena is {plan.arena_bytes} B")
    peak = analysis.peak_activation_bytes
    if plan.peak_activation_bytes != peak:
        raise PlanError(f"plan says analytic peak {plan.peak_activation_bytes} B, "
                        f"analysis gives {peak} B")
    if plan.arena_bytes != plan.peak_activation_bytes + plan.gap_bytes + plan.scratch_bytes \
            or plan.activation_arena_bytes != peak + plan.gap_bytes:
        raise PlanError("arena_bytes != peak_activation_bytes + gap_bytes + scratch_bytes")
    if plan.gap_bytes < 0:
        raise PlanError(f"activation arena {plan.activation_arena_bytes} B below the analytic peak "
                        f"{peak} B: the layout or the analysis is wrong")
