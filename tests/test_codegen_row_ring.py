"""The row-ring in-place depthwise kernel (planner option ``depthwise_row_buffer``): bit-exact with
the reference runtime (host build with AddressSanitizer + UBSan; Cortex-M7 under QEMU for the DSP
path), over strides 1 and 2, kernels 3/5/7, SAME, symmetric, asymmetric and no padding; its only
buffer is the planner's ring of output rows."""

from __future__ import annotations

import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, output_scale, q
from mcuforge.ops.row_ring import row_ring_rows
from mcuforge.codegen.emit import generate
from mcuforge.codegen.targets import TARGETS
from mcuforge.ir import NO_CLAMP, RELU, RELU6, ConvAttrs, DType, OpKind, Pads
from mcuforge.planner.arena import PlanOptions

ROW_RING = PlanOptions().with_conventions(depthwise_row_buffer=True)


def depthwise_graph(shape, kernel, stride, pads, clamp=RELU, seed=0):
    b = Int8Builder("dwrr", seed)
    x = b.x(shape)
    w = b.weights((1, kernel, kernel, shape[3]), 3, shape[3])
    bias = b.bias(shape[3])
    y = b.op(OpKind.DEPTHWISE_CONV_2D, [x, w, bias],
             ConvAttrs((stride, stride), pads, (1, 1), clamp, 1), dtype=DType.INT8,
             quant=q(output_scale(0.05, 0.02, kernel * kernel), -128))
    return b.finish([y])


CASES = {
    "k3_s1_same": lambda: depthwise_graph((1, 7, 6, 5), 3, 1, Pads.same(7, 6, (3, 3), (1, 1))),
    "k3_s1_valid": lambda: depthwise_graph((1, 6, 7, 4), 3, 1, Pads(), NO_CLAMP),
    "k3_s2_same": lambda: depthwise_graph((1, 8, 9, 4), 3, 2, Pads.same(8, 9, (3, 3), (2, 2)), RELU6),
    "k3_s2_sym": lambda: depthwise_graph((1, 9, 8, 3), 3, 2, Pads.symmetric(1)),
    "k5_s1_same": lambda: depthwise_graph((1, 6, 7, 3), 5, 1, Pads.same(6, 7, (5, 5), (1, 1))),
    "k5_s2_asym": lambda: depthwise_graph((1, 10, 7, 3), 5, 2, Pads(2, 0, 1, 2), NO_CLAMP),
    "k7_s1_same": lambda: depthwise_graph((1, 9, 8, 3), 7, 1, Pads.same(9, 8, (7, 7), (1, 1))),
    "k7_s2_same": lambda: depthwise_graph((1, 9, 9, 3), 7, 2, Pads.same(9, 9, (7, 7), (2, 2)), NO_CLAMP),
    "k7_s1_top_heavy": lambda: depthwise_graph((1, 8, 6, 4), 7, 1, Pads(4, 2, 3, 3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_row_ring_kernel_bit_exact(case, tmp_path):
    graph = CASES[case]()
    model = generate(graph, TARGETS["cortex-m7"], ROW_RING, in_place_depthwise_kernel=True)
    assert [name for name in model.kernels if name.startswith("mf_dw")] and \
        all(name.startswith("mf_dwrr") for name in model.kernels if name.startswith("mf_dw"))
    (buffer,) = model.plan.overlap_buffers.values()
    x, y = (graph.tensors[n] for n in (graph.inputs[0], graph.outputs[0]))
    op = graph.ops[-1]
    rows = row_ring_rows(x.shape[1], x.shape[2], y.shape[1], y.shape[2], op.attrs.stride[0],
                         op.attrs.pads.top)
    assert buffer.size == rows * y.shape[2] < x.shape[1] * x.shape[2]
    assert model.plan.scratch_bytes == 0
    qemu = HAVE_ARM and case in ("k3_s1_same", "k5_s2_asym")
    mismatches = differential_run(graph, tmp_path, qemu=qemu, plan_options=ROW_RING,
                                  in_place_depthwise_kernel=True)
    assert mismatches == {name: 0 for name in mismatches}


def test_report_gives_both_input_conventions(tmp_path):
    """report.json of a layer-based compile: the plan's convention, and the peak with the network
    input streamed from the caller's buffer (MCUNetV2's convention)."""
    from mcuforge.analysis.conventions import MemoryConventions
    from mcuforge.analysis.memory import memory_profile
    from mcuforge.codegen.project import compile_model
    graph = CASES["k3_s1_same"]()
    report = compile_model(graph, tmp_path / "c", measure=False, plan_options=ROW_RING)
    x, y = (graph.tensors[n] for n in (graph.inputs[0], graph.outputs[0]))
    assert report["depthwise_row_buffer"] is True
    assert report["peak_activation_bytes"] == x.nbytes + 2 * y.shape[2]  # input + two output rows
    streamed = memory_profile(graph, MemoryConventions(overlap_pointwise=True, count_network_input=False,
                                                       depthwise_row_buffer=True))
    assert report["peak_activation_bytes_input_streamed"] == streamed.peak_activation_bytes == y.nbytes
