"""The static arena planner: arena = analytic peak on MobileNet-like chains, the zoo and the reference
models; overlap geometry (in-place depthwise, pointwise, element-wise, reshape alias); scratch in gaps;
the exact search; and verify_plan rejecting corrupted plans."""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace
from types import MappingProxyType

import pytest

from conftest import require_reference_file
from mcuforge.analysis.conventions import MemoryConventions
from mcuforge.analysis.memory import memory_profile
from mcuforge.analysis.overlap import Overlap, OverlapKind
from mcuforge.ir import (RELU6, ConvAttrs, DType, ElementwiseAttrs, FullyConnectedAttrs, Graph, OpKind,
                         Pads, PoolAttrs, ReshapeAttrs)
from mcuforge.ir.builder import GraphBuilder
from mcuforge.planner.arena import (PlanError, PlanOptions, ScratchPlacement, TensorPlacement,
                                    plan_arena, verify_plan)
from mcuforge.planner.placement import Item, Member, exact_place, live_lower_bound, place_in_order


# ---------------------------------------------------------------- graph builders


def conv(b: GraphBuilder, x: str, out_c: int, kernel: int, stride: int = 1,
         depthwise: bool = False) -> str:
    """An int8 CONV_2D / DEPTHWISE_CONV_2D with SAME padding and ReLU6."""
    in_c = b.shape(x)[3]
    if depthwise:
        w = b.constant("w", (1, kernel, kernel, in_c), DType.INT8)
        out_c = in_c
    else:
        w = b.constant("w", (out_c, kernel, kernel, in_c), DType.INT8)
    bias = b.constant("b", (out_c,), DType.INT32)
    h, w_in = b.shape(x)[1:3]
    pads = Pads.same(h, w_in, (kernel, kernel), (stride, stride)) if kernel > 1 else Pads()
    kind = OpKind.DEPTHWISE_CONV_2D if depthwise else OpKind.CONV_2D
    return b.op(kind, [x, w, bias], ConvAttrs(stride=(stride, stride), pads=pads, clamp=RELU6))


def mobilenet_v2_like(resolution: int, width: float) -> Graph:
    """MobileNetV2 (inverted residual blocks, residual ADDs, pool, reshape, FC) built with the IR."""
    def channels(n: int) -> int:
        return max(8, int(n * width + 4) // 8 * 8)

    b = GraphBuilder(f"mbv2-like-w{width}-r{resolution}")
    x = b.input("image", (1, resolution, resolution, 3), DType.INT8)
    x = conv(b, x, channels(32), 3, 2)
    in_c = channels(32)
    for expand, out, repeats, first_stride in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2),
                                               (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                                               (6, 320, 1, 1)]:
        for i in range(repeats):
            stride = first_stride if i == 0 else 1
            h = x if expand == 1 else conv(b, x, in_c * expand, 1)
            h = conv(b, h, 0, 3, stride, depthwise=True)
            h = conv(b, h, channels(out), 1)
            if stride == 1 and in_c == channels(out):
                h = b.op(OpKind.ADD, [x, h], ElementwiseAttrs())
            x, in_c = h, channels(out)
    x = conv(b, x, 1280, 1)
    x = b.op(OpKind.AVERAGE_POOL_2D, [x], PoolAttrs(b.shape(x)[1:3], (1, 1)))
    x = b.op(OpKind.RESHAPE, [x], ReshapeAttrs((1, 1280)))
    x = b.op(OpKind.FULLY_CONNECTED, [x, b.constant("fc", (1000, 1280), DType.INT8)],
             FullyConnectedAttrs())
    return b.finish([x])


def block_graph(in_c: int, mid_c: int, stride: int, size: int = 8, residual: bool = False) -> Graph:
    """One inverted-residual block: x -> 1x1 expand -> 3x3 depthwise -> 1x1 project (-> ADD x)."""
    b = GraphBuilder("block")
    x = b.input("x", (1, size, size, in_c), DType.INT8)
    e = conv(b, x, mid_c, 1)
    d = conv(b, e, 0, 3, stride, depthwise=True)
    p = conv(b, d, in_c, 1)
    if residual:
        p = b.op(OpKind.ADD, [x, p], ElementwiseAttrs())
    return b.finish([p])


def peak(graph: Graph, options: PlanOptions) -> int:
    """The analytic peak under the plan's conventions."""
    return memory_profile(graph, options.conventions).peak_activation_bytes


def producer_output(graph: Graph, kind: OpKind, nth: int = 0) -> tuple[str, str]:
    """(input, output) tensor names of the ``nth`` op of ``kind``."""
    op = [op for op in graph.ops if op.kind is kind][nth]
    return op.inputs[0], op.outputs[0]


# ---------------------------------------------------------------- arena = analytic peak


@pytest.mark.parametrize("resolution,width", [(96, 0.35), (144, 0.35), (80, 0.3), (224, 1.0)])
@pytest.mark.parametrize("inplace_depthwise", [True, False])
@pytest.mark.parametrize("overlap_pointwise", [True, False])
def test_mobilenet_v2_like_arena_equals_analytic_peak(resolution, width, inplace_depthwise,
                                                      overlap_pointwise):
    graph = mobilenet_v2_like(resolution, width)
    options = PlanOptions().with_conventions(inplace_depthwise=inplace_depthwise,
                                             overlap_pointwise=overlap_pointwise)
    plan = plan_arena(graph, options)
    verify_plan(graph, plan)
    assert plan.peak_activation_bytes == peak(graph, options)
    assert plan.arena_bytes == plan.peak_activation_bytes
    assert plan.gap_bytes == 0 and plan.scratch_bytes == 0


def test_published_mbv2_figures_are_the_arena(reference):
    """numbers.json: mbv2-w0.35-r144 needs 311,040 B plain and 290,304 B with in-place depthwise; the
    planner lays both out in an arena of exactly that size."""
    from mcuforge.reference import published_numbers
    figures = published_numbers()["analytic_from_mcunet_json_configs"]["mbv2-w0.35-r144_imagenet.json"]
    graph = mobilenet_v2_like(144, 0.35)
    plain = plan_arena(graph, PlanOptions().with_conventions(inplace_depthwise=False,
                                                             overlap_pointwise=False))
    inplace = plan_arena(graph, PlanOptions().with_conventions(inplace_depthwise=True,
                                                               overlap_pointwise=False))
    assert plain.arena_bytes == figures["peak_in_plus_out_plus_residual"]
    assert inplace.arena_bytes == figures["peak_with_inplace_depthwise"]
    overlapped = plan_arena(graph, PlanOptions())
    assert overlapped.arena_bytes < inplace.arena_bytes  # pointwise overlap saves more


def _zoo_models() -> list[str]:
    from mcuforge.models.zoo import list_models
    return list_models()


@pytest.mark.parametrize("name", _zoo_models())
@pytest.mark.parametrize("overlap_pointwise", [True, False])
def test_zoo_arena_equals_analytic_peak(name, overlap_pointwise):
    from mcuforge.frontends.load import load_graph
    graph = load_graph(name)
    plan = plan_arena(graph, PlanOptions().with_conventions(overlap_pointwise=overlap_pointwise))
    verify_plan(graph, plan)
    assert plan.arena_bytes == plan.peak_activation_bytes, plan.algorithm


REFERENCE_MODELS = [
    "tflite_micro/person_detect.tflite", "tflite_micro/hello_world_int8.tflite",
    "tflite_micro/micro_speech_quantized.tflite", "mlperf_tiny/vww_96_int8.tflite",
    "mlperf_tiny/kws_ref_model.tflite", "mlperf_tiny/pretrainedResnet_quant.tflite",
    "mlperf_tiny/ad01_int8.tflite", "mcunet/mcunet-320kb-1mb_imagenet.tflite", "tinyengine/vww.tflite",
]


@pytest.mark.parametrize("relative", REFERENCE_MODELS)
def test_reference_models_arena(relative):
    """Every reference model: a verified plan at the analytic peak (gap 0), with and without
    pointwise overlap, and never above TFLite Micro's planned head."""
    from mcuforge.frontends.tflite import read_tflite
    from mcuforge.reference import published_numbers
    graph = read_tflite(require_reference_file(f"models/{relative}"))
    tflm = published_numbers()["tflm_arena_measured"].get(relative.split("/")[-1])
    for overlap_pointwise in (False, True):
        plan = plan_arena(graph, PlanOptions().with_conventions(overlap_pointwise=overlap_pointwise))
        verify_plan(graph, plan)
        assert plan.gap_bytes == 0, f"{relative}: gap {plan.gap_bytes} B ({plan.algorithm})"
        if tflm is not None:
            assert plan.arena_bytes <= tflm["head"]


# ---------------------------------------------------------------- overlap geometry


@pytest.mark.parametrize("stride", [1, 2])
def test_inplace_depthwise_writes_over_its_input(stride):
    graph = block_graph(in_c=4, mid_c=32, stride=stride)
    options = PlanOptions().with_conventions(overlap_pointwise=False)
    plan = plan_arena(graph, options)
    e, d = producer_output(graph, OpKind.DEPTHWISE_CONV_2D)
    assert plan.placements[d].offset == plan.placements[e].offset
    kinds = {ov.kind for ov in plan.overlaps}
    assert OverlapKind.INPLACE_DEPTHWISE in kinds
    dw = next(op for op in graph.ops if op.kind is OpKind.DEPTHWISE_CONV_2D)
    assert plan.overlap_buffers[dw.name].size == 8 * 8  # one H_in x W_in channel plane
    # expand is x + e (the peak), depthwise e + plane instead of e + d, project d + p.
    e_bytes = 8 * 8 * 32
    assert plan.arena_bytes == max(8 * 8 * 4 + e_bytes, e_bytes + 64) == peak(graph, options)
    without = plan_arena(graph, PlanOptions().with_conventions(inplace_depthwise=False,
                                                               overlap_pointwise=False))
    assert without.arena_bytes == e_bytes + e_bytes // stride ** 2
    assert not any(ov.kind is OverlapKind.INPLACE_DEPTHWISE for ov in without.overlaps)


def test_pointwise_expansion_input_sits_at_the_tail_of_its_output():
    b = GraphBuilder("expand")
    x = b.input("x", (1, 10, 10, 8), DType.INT8)
    e = conv(b, x, 32, 1)
    graph = b.finish([e])
    plan = plan_arena(graph)
    overlap = next(ov for ov in plan.overlaps if ov.kind is OverlapKind.POINTWISE)
    assert (overlap.input, overlap.output) == (x, e)
    pixels = 100
    assert plan.placements[x].offset - plan.placements[e].offset == pixels * (32 - 8)
    assert plan.placements[x].end == plan.placements[e].end
    assert plan.arena_bytes == pixels * 32 + 8  # output + one input pixel, not in + out
    plain = plan_arena(graph, PlanOptions().with_conventions(overlap_pointwise=False))
    assert plain.arena_bytes == pixels * (32 + 8)


def test_pointwise_projection_output_starts_at_its_input():
    b = GraphBuilder("project")
    x = b.input("x", (1, 6, 6, 40), DType.INT8)
    p = conv(b, x, 16, 1)
    graph = b.finish([p])
    plan = plan_arena(graph, PlanOptions(alignment=1))
    assert plan.placements[p].offset == plan.placements[x].offset
    assert plan.arena_bytes == 36 * 40 + 40


def test_residual_add_writes_into_the_projection_and_reshape_aliases():
    graph = block_graph(in_c=16, mid_c=16, stride=1, residual=True)
    plan = plan_arena(graph, PlanOptions().with_conventions(inplace_depthwise=False,
                                                            overlap_pointwise=False))
    add = next(op for op in graph.ops if op.kind is OpKind.ADD)
    overlap = next(ov for ov in plan.overlaps if ov.kind is OverlapKind.ELEMENTWISE)
    assert overlap.output == add.outputs[0]
    assert plan.placements[overlap.output].offset == plan.placements[overlap.input].offset

    b = GraphBuilder("reshape")
    x = b.input("x", (1, 4, 4, 8), DType.INT8)
    y = conv(b, x, 8, 3)
    r = b.op(OpKind.RESHAPE, [y], ReshapeAttrs((1, 128)))
    out = b.op(OpKind.FULLY_CONNECTED, [r, b.constant("w", (10, 128), DType.INT8)],
               FullyConnectedAttrs())
    graph = b.finish([out])
    plan = plan_arena(graph)
    assert plan.placements[r].offset == plan.placements[y].offset
    assert any(ov.kind is OverlapKind.ALIAS for ov in plan.overlaps)


def test_network_input_not_counted_is_not_placed():
    graph = block_graph(in_c=16, mid_c=32, stride=1)
    counted = plan_arena(graph, PlanOptions().with_conventions(overlap_pointwise=False))
    streamed = plan_arena(graph, PlanOptions().with_conventions(overlap_pointwise=False,
                                                                count_network_input=False))
    assert "x" in counted.placements and "x" not in streamed.placements
    assert streamed.arena_bytes == streamed.peak_activation_bytes == memory_profile(
        graph, MemoryConventions(overlap_pointwise=False,
                                 count_network_input=False)).peak_activation_bytes
    assert streamed.arena_bytes <= counted.arena_bytes


@pytest.mark.parametrize("alignment", [1, 8, 16])
def test_offsets_are_aligned(alignment):
    b = GraphBuilder("odd")
    x = b.input("x", (1, 3, 3, 3), DType.INT8)  # 27 B
    y = conv(b, x, 5, 3)  # 45 B
    z = conv(b, y, 7, 1)
    w = b.op(OpKind.ADD, [y, conv(b, y, 5, 3)], ElementwiseAttrs())
    graph = b.finish([z, w])
    plan = plan_arena(graph, PlanOptions(alignment=alignment).with_conventions(overlap_pointwise=False))
    pinned = {name for ov in plan.overlaps for name in (ov.input, ov.output)}
    for placement in plan.placements.values():
        if placement.name not in pinned:
            assert placement.offset % alignment == 0


# ---------------------------------------------------------------- scratch sharing


def test_scratch_lives_in_a_gap_when_one_fits_and_grows_the_arena_otherwise():
    graph = block_graph(in_c=4, mid_c=32, stride=1)
    options = PlanOptions().with_conventions(overlap_pointwise=False)
    base = plan_arena(graph, options)
    expand, dw, project = graph.ops
    # x 256 B, e = d = 2048 B, p 256 B. Expand (x + e) and project (d + p) fill the 2304 B arena;
    # the in-place depthwise needs e + one 64 B plane, leaving a 192 B gap for its scratch.
    assert base.arena_bytes == 2304
    small = plan_arena(graph, options, scratch_sizes={dw.name: 192})
    assert small.scratch_bytes == 0 and small.arena_bytes == base.arena_bytes
    assert isinstance(small.scratch[dw.name], ScratchPlacement)
    # At the expand conv nothing is free: its scratch grows the arena by its size.
    big = plan_arena(graph, options, scratch_sizes={expand.name: 100, dw.name: 192, project.name: 0})
    assert big.scratch_bytes == 100 and big.arena_bytes == base.arena_bytes + 100
    assert project.name not in big.scratch
    verify_plan(graph, big)


def test_scratch_placed_with_the_activations_when_the_gaps_are_too_small():
    b = GraphBuilder("joint")
    x = b.input("x", (1, 1, 1, 2), DType.INT8)
    y = conv(b, x, 1, 1)
    z = conv(b, y, 1, 1)
    graph = b.finish([z, y])  # y is kept to the end
    options = PlanOptions(alignment=1).with_conventions(overlap_pointwise=False)
    # Activations alone: x [0,2) + y [2,3) at the first conv, z fills [0,1) at the second, which
    # leaves 1 B free there: a 2 B scratch placed afterwards would grow the arena to 5 B. Placed
    # together, y + z + scratch = 4 B, the live-bytes bound.
    plan = plan_arena(graph, options, scratch_sizes={graph.ops[1].name: 2})
    assert plan.arena_bytes == 4
    assert "with the activations" in plan.algorithm
    assert plan.arena_bytes == plan.peak_activation_bytes + plan.gap_bytes + plan.scratch_bytes
    verify_plan(graph, plan)


def test_scratch_for_unknown_op_is_an_error():
    graph = block_graph(in_c=4, mid_c=8, stride=1)
    with pytest.raises(ValueError, match="not in graph"):
        plan_arena(graph, scratch_sizes={"nope": 10})


def test_plan_logs_arena_and_gap(caplog):
    graph = block_graph(in_c=4, mid_c=32, stride=2)
    with caplog.at_level(logging.INFO, logger="mcuforge.planner.arena"):
        plan = plan_arena(graph)
    assert f"arena: {plan.arena_bytes} B, analytic peak {plan.peak_activation_bytes} B, gap 0 B" \
        in caplog.text
    assert "memory reduced from" in caplog.text


# ---------------------------------------------------------------- exact search


def _single(size: int, first: int, last: int, name: str) -> Item:
    return Item((Member(name, 0, size, first, last),))


def test_exact_search_reaches_the_lower_bound_where_greedy_order_does_not():
    # Largest-first greedy puts the 6 B and 5 B buffers at 0 and leaves a hole: 11 B. 10 B is optimal.
    items = [_single(2, 1, 3, "a"), _single(6, 5, 5, "b"), _single(4, 3, 6, "c"), _single(5, 2, 2, "d")]
    assert live_lower_bound(items) == 10
    bases, top, finished = exact_place(items, alignment=1, upper_bound=11)
    assert (top, finished) == (10, True)
    assert bases is not None


@pytest.mark.parametrize("seed", range(6))
def test_exact_search_matches_brute_force_over_orders(seed):
    import random
    rng = random.Random(seed)
    items = []
    for i in range(5):
        first = rng.randint(0, 4)
        items.append(_single(rng.randint(1, 9), first, rng.randint(first, 5), f"t{i}"))
    brute = min(place_in_order([items[i] for i in order], 1, best_fit=False)[1]
                for order in itertools.permutations(range(len(items))))
    bases, top, finished = exact_place(items, alignment=1, upper_bound=10 ** 6)
    assert finished and top == brute


# ---------------------------------------------------------------- verify_plan rejects corrupt plans


@pytest.fixture
def expansion_plan():
    graph = block_graph(in_c=8, mid_c=48, stride=1, residual=True)
    return graph, plan_arena(graph, PlanOptions(alignment=1))


def _with_placement(plan, name: str, **changes):
    placements = dict(plan.placements)
    placements[name] = replace(placements[name], **changes)
    return replace(plan, placements=MappingProxyType(placements))


def test_verify_accepts_the_plan(expansion_plan):
    graph, plan = expansion_plan
    verify_plan(graph, plan)
    assert any(ov.kind is OverlapKind.POINTWISE for ov in plan.overlaps)


def test_verify_rejects_two_live_tensors_sharing_bytes(expansion_plan):
    graph, plan = expansion_plan
    # x is kept for the residual ADD, so it is live with every other tensor of the block.
    d = graph.ops[1].outputs[0]
    corrupt = _with_placement(plan, "x", offset=plan.placements[d].offset)
    with pytest.raises(PlanError, match="share bytes|needs"):
        verify_plan(graph, corrupt)


def test_verify_rejects_wrong_pointwise_geometry():
    b = GraphBuilder("expand")
    x = b.input("x", (1, 4, 4, 8), DType.INT8)
    e = conv(b, x, 24, 1)
    graph = b.finish([conv(b, e, 2, 3)])  # e + 32 B: the overlapped expansion is needed
    plan = plan_arena(graph, PlanOptions(alignment=1))
    assert plan.placements[x].offset - plan.placements[e].offset == 16 * 16
    shifted = _with_placement(plan, x, offset=plan.placements[x].offset - 16)
    with pytest.raises(PlanError, match="kernel needs"):
        verify_plan(graph, shifted)


def test_verify_rejects_misaligned_out_of_bounds_and_missing(expansion_plan):
    graph, plan = expansion_plan
    aligned = plan_arena(graph, PlanOptions(alignment=4).with_conventions(overlap_pointwise=False,
                                                                          inplace_depthwise=False))
    pinned = {n for ov in aligned.overlaps for n in (ov.input, ov.output)}
    free = next(p for p in aligned.placements.values()
                if p.name not in pinned and p.end < aligned.arena_bytes)
    with pytest.raises(PlanError, match="multiple of 4"):
        verify_plan(graph, _with_placement(aligned, free.name, offset=free.offset + 1))
    with pytest.raises(PlanError, match="outside the arena"):
        verify_plan(graph, replace(plan, arena_bytes=plan.arena_bytes - 1))
    placements = dict(plan.placements)
    del placements["x"]
    with pytest.raises(PlanError, match="missing"):
        verify_plan(graph, replace(plan, placements=MappingProxyType(placements)))
    with pytest.raises(PlanError, match="lifetime"):
        verify_plan(graph, _with_placement(plan, "x", last=0))


def test_verify_rejects_an_overlap_the_rules_do_not_allow(expansion_plan):
    graph, plan = expansion_plan
    # x does not die at the expand conv (the residual ADD reads it): writing over it is illegal.
    expand = graph.ops[0]
    fake = Overlap(OverlapKind.POINTWISE, "x", expand.outputs[0], 8, -64 * 40)
    with pytest.raises(PlanError, match="not the legal one"):
        verify_plan(graph, replace(plan, overlaps=plan.overlaps + (fake,)))
    # Dropping the overlap buffer of a used overlap is caught too.
    with pytest.raises(PlanError, match="buffer"):
        verify_plan(graph, replace(plan, overlap_buffers=MappingProxyType({})))


def test_verify_rejects_scratch_over_a_live_tensor():
    graph = block_graph(in_c=4, mid_c=32, stride=1)
    plan = plan_arena(graph, scratch_sizes={graph.ops[0].name: 16})
    x = plan.placements["x"]
    bad = {graph.ops[0].name: ScratchPlacement(graph.ops[0].name, x.offset, 16)}
    with pytest.raises(PlanError, match="share bytes"):
        verify_plan(graph, replace(plan, scratch=MappingProxyType(bad)))


def test_placement_types_are_frozen():
    placement = TensorPlacement("t", 0, 4, 0, 1)
    with pytest.raises(AttributeError):
        placement.offset = 8  # type: ignore[misc]
    assert placement.end == 4
