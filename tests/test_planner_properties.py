"""Property tests of the arena planner on random valid graphs (hypothesis): random chains of 1x1 and 3x3
convs, depthwise convs, inverted-residual blocks with residual ADDs, long skip ADDs, reshapes, pools,
ReLUs and a final fully-connected layer, with random shapes, channels, options and scratch sizes.

Properties: the plan passes `verify_plan` and an independent byte-by-byte ownership check; it is never
below the analytic peak under the same conventions and its figures add up; the exact search never makes
it worse; a plan corrupted so that two live tensors share bytes is rejected."""

from __future__ import annotations

import os
from dataclasses import replace
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcuforge.analysis.liveness import lifetimes
from mcuforge.analysis.conventions import MemoryConventions
from mcuforge.analysis.memory import memory_profile
from mcuforge.ir import DType, ElementwiseAttrs, FullyConnectedAttrs, Graph, OpKind, PoolAttrs, ReshapeAttrs
from mcuforge.ir.builder import GraphBuilder
from mcuforge.planner.arena import ArenaPlan, PlanError, PlanOptions, plan_arena, verify_plan

from test_planner import conv  # the same int8 conv builder as the hand-written planner tests

# MCUFORGE_PLANNER_EXAMPLES=2000 for a longer hunt; 80 keeps the suite fast.
SETTINGS = settings(max_examples=int(os.environ.get("MCUFORGE_PLANNER_EXAMPLES", "80")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


STEPS = ["pointwise", "conv3x3", "depthwise", "block", "branch_add", "skip_add", "reshape", "pool",
         "relu"]


@st.composite
def random_graphs(draw) -> Graph:
    """A random valid int8 graph (see the module docstring)."""
    b = GraphBuilder("random")
    shape = (1, draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 12)))
    x = b.input("x", shape, DType.INT8)
    earlier: list[str] = [x]
    extra_outputs: list[str] = []
    for _ in range(draw(st.integers(1, 9))):
        step = draw(st.sampled_from(STEPS))
        _, h, w, c = b.shape(x)
        if step == "pointwise":
            x = conv(b, x, draw(st.integers(1, 24)), 1, 1, False)
        elif step == "conv3x3":
            x = conv(b, x, draw(st.integers(1, 16)), 3, draw(st.sampled_from([1, 2])), False)
        elif step == "depthwise":
            x = conv(b, x, 0, 3, draw(st.sampled_from([1, 2])), True)
        elif step == "block":
            e = conv(b, x, c * draw(st.integers(1, 4)), 1, 1, False)
            d = conv(b, e, 0, 3, 1, True)
            p = conv(b, d, c, 1, 1, False)
            pair = [x, p] if draw(st.booleans()) else [p, x]
            x = b.op(OpKind.ADD, pair, ElementwiseAttrs())
        elif step == "branch_add":
            y = conv(b, x, c, draw(st.sampled_from([1, 3])), 1, False)
            x = b.op(OpKind.ADD, [x, y], ElementwiseAttrs())
        elif step == "skip_add":
            same = [t for t in earlier if b.shape(t) == b.shape(x) and t != x]
            if same:
                x = b.op(OpKind.ADD, [draw(st.sampled_from(same)), x], ElementwiseAttrs())
        elif step == "reshape":
            x = b.op(OpKind.RESHAPE, [x], ReshapeAttrs((1, w, h, c)))
        elif step == "pool" and h >= 2 and w >= 2:
            x = b.op(OpKind.AVERAGE_POOL_2D, [x], PoolAttrs((2, 2), (2, 2)))
        elif step == "relu":
            x = b.op(OpKind.RELU, [x])
        earlier.append(x)
        if draw(st.integers(0, 9)) == 0:
            extra_outputs.append(x)  # kept to the end of the run, like a second head
    if draw(st.booleans()):
        flat = b.op(OpKind.RESHAPE, [x], ReshapeAttrs((1, int(np.prod(b.shape(x))))))
        weight = b.constant("fc", (draw(st.integers(1, 10)), b.shape(flat)[1]), DType.INT8)
        x = b.op(OpKind.FULLY_CONNECTED, [flat, weight], FullyConnectedAttrs())
    outputs = list(dict.fromkeys([x] + extra_outputs))
    return b.finish(outputs)


options_strategy = st.builds(
    PlanOptions,
    conventions=st.builds(
        MemoryConventions,
        inplace_depthwise=st.booleans(),
        overlap_pointwise=st.booleans(),
        count_network_input=st.booleans(),
    ),
    alignment=st.sampled_from([1, 2, 4, 8]),
    exact_search_max_tensors=st.sampled_from([0, 6, 12]),
)


@st.composite
def planned(draw):
    """(graph, options, scratch sizes by op name)."""
    graph = draw(random_graphs())
    options = draw(options_strategy)
    names = [op.name for op in graph.ops]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names))) if names else []
    scratch = {name: draw(st.integers(0, 300)) for name in chosen}
    return graph, options, scratch


def _legal_pairs(graph: Graph, plan: ArenaPlan) -> dict[int, frozenset[str]]:
    """Op index -> the two tensors that op may let overlap (from the plan's overlaps)."""
    index_of = {out: i for i, op in enumerate(graph.ops) for out in op.outputs}
    return {index_of[ov.output]: frozenset((ov.input, ov.output)) for ov in plan.overlaps}


def byte_owners_check(graph: Graph, plan: ArenaPlan) -> None:
    """Independent of verify_plan: paint every live block's bytes at every op and fail when a byte has
    two owners that are not the legal overlap pair of that op."""
    spans = lifetimes(graph)
    if not plan.options.conventions.count_network_input:
        for name in graph.inputs:
            spans.pop(name, None)
    assert set(plan.placements) == set(spans)
    legal = _legal_pairs(graph, plan)
    blocks = [(name, p.offset, p.end, spans[name].first, spans[name].last)
              for name, p in plan.placements.items()]
    index_of = graph.op_index()
    for kind, buffers in (("buffer", plan.overlap_buffers), ("scratch", plan.scratch)):
        for op_name, s in buffers.items():
            blocks.append((f"{kind}:{op_name}", s.offset, s.end, index_of[op_name], index_of[op_name]))
    for time in range(-1, len(graph.ops) + 1):
        owner = np.full(plan.arena_bytes, -1, dtype=np.int64)
        live = [blk for blk in blocks if blk[3] <= time <= blk[4]]
        for number, (name, start, end, _, _) in enumerate(live):
            assert 0 <= start <= end <= plan.arena_bytes
            clash = {int(o) for o in np.unique(owner[start:end]) if o >= 0}
            for other in clash:
                assert frozenset((name, live[other][0])) == legal.get(time), \
                    f"{name} and {live[other][0]} share bytes at op {time}"
            owner[start:end] = number


@SETTINGS
@given(planned())
def test_random_plans_are_sound_and_never_below_the_analytic_peak(case):
    graph, options, scratch = case
    plan = plan_arena(graph, options, scratch_sizes=scratch)
    verify_plan(graph, plan)
    byte_owners_check(graph, plan)
    analytic = memory_profile(graph, options.conventions).peak_activation_bytes
    assert plan.peak_activation_bytes == analytic
    assert plan.activation_arena_bytes >= analytic
    assert plan.arena_bytes == analytic + plan.gap_bytes + plan.scratch_bytes
    alone = plan_arena(graph, options)
    assert plan.arena_bytes <= alone.arena_bytes + sum(size + options.alignment - 1
                                                       for size in scratch.values() if size)
    for op_name, size in scratch.items():
        if size:
            assert plan.scratch[op_name].size == size


@SETTINGS
@given(random_graphs(), options_strategy)
def test_exact_search_never_makes_the_arena_larger(graph, options):
    greedy = plan_arena(graph, replace(options, exact_search_max_tensors=0))
    searched = plan_arena(graph, replace(options, exact_search_max_tensors=12))
    assert searched.arena_bytes <= greedy.arena_bytes


@SETTINGS
@given(random_graphs(), options_strategy, st.data())
def test_corrupted_plans_are_rejected(graph, options, data):
    plan = plan_arena(graph, options)
    legal = _legal_pairs(graph, plan)
    placements = list(plan.placements.values())
    pairs = [(a, b) for a in placements for b in placements
             if a.name < b.name and a.size and b.size and a.first <= b.last and b.first <= a.last
             and not any(frozenset((a.name, b.name)) == pair for pair in legal.values())]
    if not pairs:
        return  # a graph with one live tensor at a time has nothing to corrupt this way
    a, b = data.draw(st.sampled_from(pairs))
    moved = dict(plan.placements)
    moved[a.name] = replace(a, offset=b.offset)
    with pytest.raises(PlanError):
        verify_plan(graph, replace(plan, placements=MappingProxyType(moved)))
