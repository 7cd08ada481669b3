"""Arena plans of a patch schedule: the patch stage planned patch by patch, the rest of the graph
layer by layer, and the regions the two share (what the generated C lays out).

The stage's patch-local tensors are planned by the arena planner once per patch shape (the buffers
of every stage tensor for that patch; patches of the same shape share a plan), so each patch gets
the layout of its own sizes: the local region is the largest of these plans, which is the analytic
patch peak (`evaluate.py`, the largest live set over patches and ops) whenever the planner
lays each patch out at its live-bytes bound. (One "largest patch" plan, every tensor as large as in
any patch, can cost more, because different tensors peak in different patches; it still serves a
patch whose own plan the greedy planner leaves above its bound, when it is smaller.) Overlaps are
planned on the sizes of the plan a patch uses (`plan_patches` says why they stay safe).

During the stage the network input, the split tensor and the patch-local region (then the row
caches) are live at once; `layout_regions` lays them out beside the rest of the graph: the rest
planned jointly with placeholders for the regions that live only before its first op, or planned
alone with the regions put below or above the split tensor (`combine_regions`), smallest first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..analysis.receptive import Interval
from ..ir import DType, Graph, Op, Tensor
from ..planner.arena import ArenaPlan, PlanOptions, plan_arena
from ..planner.placement import align_up
from .geometry import PatchGeometry
from .patch_graph import patch_graph


@dataclass(frozen=True)
class StagePlans:
    """The stage's plans, one per patch in raster order (shared by patches of the same shape),
    under ``options`` (the stage's conventions: with or without pointwise overlaps);
    ``peak_bytes`` is the largest live-bytes bound of a patch under them."""

    options: PlanOptions
    plans: tuple[ArenaPlan, ...]
    peak_bytes: int

    @property
    def arena_bytes(self) -> int:
        """Bytes of the patch-local region: the largest plan."""
        return max(plan.arena_bytes for plan in self.plans)

    @property
    def gap_bytes(self) -> int:
        """Activation bytes of the largest plan above the largest live-bytes bound."""
        return max(0, max(plan.activation_arena_bytes for plan in self.plans) - self.peak_bytes)

    def overlapped_ops(self, patch: int, ops: list[Op]) -> set[str]:
        """Names of the ops whose output patch ``patch``'s plan lays over an input."""
        producer = {op.outputs[0]: op.name for op in ops}
        return {producer[o.output] for o in self.plans[patch].overlaps}


def plan_patches(graph: Graph, geometry: PatchGeometry, ops: list[Op], grid, scratch: list[dict],
                 options: PlanOptions) -> StagePlans:
    """One plan per patch of ``grid`` (``(row, col)`` pairs in raster order), with that patch's
    kernel scratch (``scratch[p]``: bytes by op name); the network input is not counted. Where
    the greedy planner lays a patch out above its live-bytes bound (rigid overlap groups), the plan
    of the largest patch (every tensor and scratch as large as in any patch) serves it instead when
    smaller: every tensor of the patch then fits its slot, and the overlaps stay safe (an in-place
    depthwise or element-wise output starts at its input; a pointwise expansion input sits at
    ``N_max (C_out - C_in)`` in its output, which keeps every write behind the unread input for
    any ``N <= N_max``)."""
    stage_options = options.with_conventions(count_network_input=False)
    names = sorted({n for op in ops for n in op.inputs + op.outputs if graph.is_activation(n)})
    memo: dict[tuple, ArenaPlan] = {}
    plans = []
    for (row, col), needs in zip(grid, scratch):
        key = tuple((row.buffers[n].size, col.buffers[n].size) for n in names) \
            + tuple(sorted(needs.items()))
        if key not in memo:
            patch = patch_graph(graph, geometry.stage, ops, row, col)
            kept = {op.name for op in patch.ops}
            memo[key] = plan_arena(patch, stage_options,
                                   {k: v for k, v in needs.items() if v and k in kept})
        plans.append(memo[key])
    peak = max(plan.peak_activation_bytes for plan in plans)
    if any(plan.activation_arena_bytes > peak for plan in plans):
        largest_scratch = {op.name: max(needs.get(op.name, 0) for needs in scratch) for op in ops}
        largest = plan_arena(
            patch_graph(graph, geometry.stage, ops, _Largest(geometry.rows, names),
                        _Largest(geometry.cols, names)),
            stage_options, {k: v for k, v in largest_scratch.items() if v})
        plans = [largest if largest.arena_bytes < plan.arena_bytes else plan for plan in plans]
    return StagePlans(options, tuple(plans), peak)


class _Largest:
    """Per tensor, the largest buffer along one axis over the grid's patches (sizes only)."""

    def __init__(self, patches, names: list[str]):
        self.buffers = {name: Interval(0, max(patch.buffers[name].size for patch in patches))
                        for name in names}


def plan_stage(graph: Graph, geometry: PatchGeometry, ops: list[Op], grid, scratch: list[dict],
               plan_options: PlanOptions) -> StagePlans:
    """The stage's plans under ``plan_options``. When the planner cannot lay the pointwise overlaps
    out at the analytic peak (their rigid groups get too wide on a short chain), plan without them
    as well and keep the smaller arena; the stage's analytic figure then follows the options kept.
    With cached halos outputs land below and beside their cached rows and columns: no pointwise
    overlaps."""
    if geometry.config.halo != "none":
        plan_options = plan_options.with_conventions(overlap_pointwise=False)
    plans = plan_patches(graph, geometry, ops, grid, scratch, plan_options)
    if plans.gap_bytes == 0 or not plan_options.conventions.overlap_pointwise:
        return plans
    plain = plan_patches(graph, geometry, ops, grid, scratch,
                         plan_options.with_conventions(overlap_pointwise=False))
    if (plain.arena_bytes, plain.gap_bytes) < (plans.arena_bytes, plans.gap_bytes):
        return plain
    return plans


def rest_graph(graph: Graph, geometry: PatchGeometry) -> Graph:
    """The ops after the patch stage, as a graph whose input is the split tensor."""
    stage = geometry.stage
    ops = graph.ops[stage.end_index + 1:]
    names = {n for op in ops for n in op.inputs + op.outputs} | set(graph.outputs)
    blocks = [b for b in graph.blocks if all(n in {op.name for op in ops} for n in b.ops)]
    return Graph(f"{graph.name}:rest", {n: graph.tensor(n) for n in names}, tuple(ops),
                 (stage.split,), graph.outputs, tuple(blocks))


_INPUT, _LOCAL, _REGIONS = "__patch_stage_input__", "__patch_stage_local__", "__patch_stage_regions__"


def _joint_rest_graph(rest: Graph, regions: tuple[tuple[str, int], ...]) -> Graph:
    """The rest with more graph inputs that no op reads (``regions``: names and bytes): they live
    only before the rest's first op, together with the split tensor, so one plan lays out the
    stage's regions and the rest's tensors jointly."""
    tensors = dict(rest.tensors)
    for name, size in regions:
        tensors[name] = Tensor(name, (1, max(size, 1)), DType.INT8)
    return replace(rest, tensors=tensors, inputs=rest.inputs + tuple(name for name, _ in regions))


@dataclass(frozen=True)
class RegionLayout:
    """Where the stage's regions go beside the rest of the graph: arena bytes, the offsets of the
    network input and of the patch-local region, and the plan of the rest (final offsets)."""

    arena_bytes: int
    input_offset: int
    local_offset: int
    rest_plan: ArenaPlan


def layout_regions(rest: Graph, split: str, input_bytes: int, local_bytes: int,
                   options: PlanOptions, rest_scratch: dict[str, int]) -> RegionLayout:
    """The smallest of: the rest planned alone with the two regions below or above the split tensor
    (`combine_regions`); the rest planned jointly with the two regions as placeholders; and jointly
    with one placeholder holding both (input first or local region first), which the greedy planner
    sometimes packs tighter than two."""
    alone = plan_arena(rest, options, rest_scratch)
    arena, input_at, local_at, shift = combine_regions(
        input_bytes, local_bytes, alone.placements[split].offset, rest.tensor(split).nbytes,
        alone.arena_bytes, options.alignment)
    best = RegionLayout(arena, input_at, local_at, replace(alone, placements={
        name: replace(p, offset=p.offset + shift) for name, p in alone.placements.items()},
        scratch={name: replace(p, offset=p.offset + shift) for name, p in alone.scratch.items()},
        overlap_buffers={name: replace(p, offset=p.offset + shift)
                         for name, p in alone.overlap_buffers.items()}))
    a_in = align_up(input_bytes, options.alignment)
    a_local = align_up(local_bytes, options.alignment)
    trials = [((_INPUT, input_bytes), (_LOCAL, local_bytes)),
              ((_REGIONS, a_in + local_bytes),), ((_REGIONS, a_local + input_bytes),)]
    for k, regions in enumerate(trials):
        joint = plan_arena(_joint_rest_graph(rest, regions), options, rest_scratch)
        if joint.arena_bytes >= best.arena_bytes:
            continue
        names = {name for name, _ in regions}
        if k == 0:
            input_at, local_at = (joint.placements[n].offset for n in (_INPUT, _LOCAL))
        elif k == 1:
            input_at = joint.placements[_REGIONS].offset
            local_at = input_at + a_in
        else:
            local_at = joint.placements[_REGIONS].offset
            input_at = local_at + a_local
        best = RegionLayout(joint.arena_bytes, input_at, local_at, replace(joint, placements={
            n: p for n, p in joint.placements.items() if n not in names}))
    return best


def with_caches(local_bytes: int, cache_bytes: int, alignment: int) -> int:
    """Bytes of the patch-local region: the planned largest patch, then the row caches."""
    return align_up(local_bytes, alignment) + cache_bytes if cache_bytes else local_bytes


def combine_regions(input_bytes: int, local_bytes: int, split_offset: int, split_bytes: int,
                    rest_bytes: int, alignment: int) -> tuple[int, int, int, int]:
    """(arena bytes, input offset, local region offset, shift of the rest's layout): the network
    input and the patch-local region below or above the split tensor, smallest arena first."""
    a_in, a_local = align_up(input_bytes, alignment), align_up(local_bytes, alignment)
    best = None
    arrangements = [((), ("input", "local")), ((), ("local", "input")), (("input",), ("local",)),
                    (("local",), ("input",)), (("input", "local"), ()), (("local", "input"), ())]
    for below, above in arrangements:
        sizes = {"input": a_in, "local": a_local}
        need_below = sum(sizes[r] for r in below)
        shift = align_up(max(0, need_below - split_offset), alignment)
        split_at = split_offset + shift
        offsets, cursor = {}, 0
        for region in below:
            offsets[region], cursor = cursor, cursor + sizes[region]
        cursor = align_up(split_at + split_bytes, alignment)
        for region in above:
            offsets[region], cursor = cursor, cursor + sizes[region]
        raw = {"input": input_bytes, "local": local_bytes}  # only offsets need the alignment
        top = max(rest_bytes + shift, split_at + split_bytes,
                  *(offsets[r] + raw[r] for r in offsets))
        candidate = (top, offsets["input"], offsets["local"], shift)
        if best is None or candidate < best:
            best = candidate
    return best
