"""Kernels without scratch in the generated C of a patch schedule (`patch_emit`).

A patch's plan (or the rest's) whose kernel scratch lifts it above its analytic peak by an alignment
or more names the ops that grow it; those that have a kernel without scratch
(`OpDef.lower_without_scratch`: the direct convolution, the pixel-by-pixel pointwise overlap, the
in-place depthwise kernel) are planned without scratch and lowered with that kernel, and
`patch_emit.generate_patched` keeps the schedule when its arena is smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnsupportedOpError
from ..ir import Graph, Op, OpKind
from ..ops import find_op_def
from ..patch.schedule import PatchSchedule
from ..planner.arena import ArenaPlan
from .patch_windows import PatchOp
from .targets import Target


class NoScratchFreeKernel(UnsupportedOpError):
    """Op ``name`` has no kernel without scratch as the plan lays it out."""

    def __init__(self, name: str):
        super().__init__(f"{name}: no kernel without scratch")
        self.name = name


def kernel_overlapped(item: PatchOp, overlapped: bool) -> bool:
    """Whether the kernel of ``item`` runs its overlap: an in-place depthwise op whose input is a
    window of a larger buffer takes the channel-plane kernel (in place safe too)."""
    op = item.op
    if overlapped and op.kind is OpKind.DEPTHWISE_CONV_2D and item.pitches:
        if item.graph.tensor(op.inputs[0]).shape[3] == 1:
            raise UnsupportedOpError(f"in-place depthwise {op.name} (one channel) reads a window "
                                     "narrower than its buffer: not supported by the generated C")
        return False
    return overlapped


def overlapped_ops(graph: Graph, plan: ArenaPlan) -> set[str]:
    """Names of the ops of ``graph`` whose output ``plan`` lays over an input."""
    producer = {op.outputs[0]: op.name for op in graph.ops}
    return {producer[o.output] for o in plan.overlaps}


@dataclass(frozen=True)
class ScratchFree:
    """The ops lowered with their kernel without scratch: ``(patch, op name)`` pairs of the stage
    and op names of the rest."""

    patch_ops: frozenset[tuple[int, str]]
    rest_ops: frozenset[str]


def growing_scratch(graph: Graph, schedule: PatchSchedule, ops: list[Op],
                    patch_ops: list[list[PatchOp]], target: Target) -> ScratchFree:
    """The ops whose scratch may lift a plan above its analytic peak and that have a kernel
    without scratch (`OpDef.lower_without_scratch`): every such op of a patch whose plan is above
    its peak by an alignment or more, and of the rest when its plan is."""
    alignment = schedule.plan_options.alignment
    index_of = graph.op_index()

    def above(plan: ArenaPlan) -> bool:
        return plan.arena_bytes - plan.peak_activation_bytes >= alignment

    def has_one(g: Graph, op: Op, overlapped: bool) -> bool:
        return find_op_def(op.kind).lower_without_scratch(g, index_of[op.name], op, target,
                                                          overlapped) is not None

    stage = set()
    for p, plan in enumerate(schedule.stage_plans.plans):
        if above(plan):
            overlapped = schedule.stage_plans.overlapped_ops(p, ops)
            stage |= {(p, item.op.name) for item in patch_ops[p] if item.op.name in plan.scratch
                      and has_one(item.graph, item.op,
                                  kernel_overlapped(item, item.op.name in overlapped))}
    rest_plan = schedule.regions.rest_plan
    rest_ops: set[str] = set()
    if above(rest_plan):
        overlapped = overlapped_ops(schedule.rest, rest_plan)
        rest_ops = {op.name for op in schedule.rest.ops if op.name in rest_plan.scratch
                    and has_one(schedule.rest, op, op.name in overlapped)}
    return ScratchFree(frozenset(stage), frozenset(rest_ops))
