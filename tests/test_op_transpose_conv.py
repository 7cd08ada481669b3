"""TRANSPOSE_CONV (ops/transpose_conv.py): registered with its rules, round-trips through the
.tflite writer and reader (inputs reordered to TFLite's (output_shape, filter, input, bias)),
bit-exact with the TFLite Micro pip interpreter over strides, kernels, SAME and VALID padding,
per-channel and per-tensor weights, with and without bias and fused activations; its generated C
(sanitised host build) equals the reference runtime; bad shapes and weights are refused at import
in one line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, ElementwiseAttrs, OpKind, QuantParams
from mcuforge.ir.ops import NO_CLAMP
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.transpose_conv import TransposeConvAttrs, transpose_conv_pads
from mcuforge.ops.validation import validate_model

KIND = OpKind.TRANSPOSE_CONV
RELU, RELU6 = (0.0, math.inf), (0.0, 6.0)
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}


def tconv_graph(in_shape, kernel, out_c, stride, same, out_hw=None, clamp=NO_CLAMP, bias=True,
                per_channel=True, seed=0, x_q=q(0.05, -3), y_scale=None):
    """x -> TRANSPOSE_CONV(w, b) -> y; the output size defaults to input * stride (SAME) or
    (input - 1) * stride + kernel (VALID)."""
    n, h, w, c = in_shape
    if out_hw is None:
        out_hw = ((h * stride[0], w * stride[1]) if same else
                  ((h - 1) * stride[0] + kernel[0], (w - 1) * stride[1] + kernel[1]))
    b = Int8Builder("tconv", seed)
    x = b.input("x", in_shape, DType.INT8, x_q)
    wt = b.weights((out_c, *kernel, c), 0 if per_channel else None, out_c)
    inputs = [x, wt] + ([b.bias(out_c, 2000)] if bias else [])
    taps = kernel[0] * kernel[1] * c / (stride[0] * stride[1])
    y_q = q(y_scale or 0.05 * 0.02 * math.sqrt(taps) * 25, 5)
    attrs = TransposeConvAttrs((n, *out_hw, out_c), stride, same, clamp)
    y = b.op(KIND, inputs, attrs, dtype=DType.INT8, quant=y_q)
    return b.finish([y])


def test_registered_with_its_rules():
    assert KIND in implemented_kinds()
    definition = op_def(KIND)
    assert definition.has_reference and definition.has_lowering and not definition.patchable
    graph = tconv_graph((1, 3, 4, 2), (3, 3), 5, (2, 2), True)
    assert graph.tensors[graph.outputs[0]].shape == (1, 6, 8, 5)
    assert definition.macs(graph, graph.ops[0]) == 3 * 4 * 2 * 9 * 5
    assert definition.weight_output_channels(graph, graph.ops[0]) == 5
    # SAME, output 6, kernel 3, stride 2: 3 windows, (3 - 1) * 2 + 3 - 6 = 1 -> pad 0 before
    assert transpose_conv_pads(6, 3, 2, True) == 0 and transpose_conv_pads(5, 4, 1, True) == 1
    assert transpose_conv_pads(9, 3, 2, False) == 0


@pytest.mark.parametrize("bias, clamp", [(True, RELU6), (False, NO_CLAMP)])
def test_round_trip_through_tflite(bias, clamp, tmp_path):
    graph = tconv_graph((1, 3, 4, 2), (3, 3), 5, (2, 1), False, clamp=clamp, bias=bias)
    read = read_tflite(write_tflite(graph, tmp_path / "tconv.tflite"))
    assert [op.kind for op in read.ops] == [KIND]
    op = read.ops[0]
    assert op.attrs == graph.ops[0].attrs and len(op.inputs) == (3 if bias else 2)
    assert read.tensors[op.inputs[0]].shape == (1, 3, 4, 2)
    assert read.tensors[op.inputs[1]].shape == (5, 3, 3, 2)
    assert np.array_equal(read.tensors[op.inputs[1]].data, graph.tensors[graph.ops[0].inputs[1]].data)


CASES = [  # (input shape, kernel, C_out, stride, same, output size, clamp, bias, per-channel)
    ((1, 3, 4, 2), (3, 3), 5, (2, 2), True, None, NO_CLAMP, True, True),
    ((1, 3, 4, 2), (3, 3), 5, (2, 2), False, None, NO_CLAMP, True, True),
    ((2, 4, 3, 3), (2, 2), 4, (2, 2), True, None, RELU, True, True),
    ((1, 5, 5, 4), (4, 4), 3, (2, 2), True, None, NO_CLAMP, False, True),
    ((1, 4, 4, 2), (3, 3), 3, (1, 1), True, None, RELU6, True, False),
    ((1, 3, 5, 3), (3, 2), 2, (3, 2), False, None, NO_CLAMP, True, True),
    ((1, 4, 4, 2), (3, 3), 4, (2, 2), True, (7, 7), NO_CLAMP, True, True),    # odd output
    ((1, 4, 4, 2), (3, 3), 4, (2, 2), False, (8, 10), NO_CLAMP, True, True),  # wider than VALID
    ((1, 2, 2, 8), (5, 5), 6, (2, 2), True, None, NO_CLAMP, True, True),      # kernel > 2 * stride
]


@pytest.mark.parametrize("in_shape, kernel, out_c, stride, same, out_hw, clamp, bias, per_channel",
                         CASES)
def test_matches_tflite_micro(in_shape, kernel, out_c, stride, same, out_hw, clamp, bias,
                              per_channel):
    graph = tconv_graph(in_shape, kernel, out_c, stride, same, out_hw, clamp, bias, per_channel,
                        seed=sum(in_shape))
    rng = np.random.default_rng(sum(in_shape) + out_c)
    x = rng.integers(-128, 128, size=in_shape, dtype=np.int8)
    x.reshape(-1)[:2] = (-128, 127)
    y = assert_matches_tflm(graph, [x])
    assert len(np.unique(y)) > 4        # the output scale spreads the values
    assert_matches_tflm(graph, [np.full(in_shape, 127, np.int8)])


def test_saturating_output_scale_matches_tflite_micro():
    graph = tconv_graph((1, 3, 3, 4), (3, 3), 4, (2, 2), True, y_scale=0.001)
    x = np.random.default_rng(3).integers(-128, 128, size=(1, 3, 3, 4), dtype=np.int8)
    y = assert_matches_tflm(graph, [x])
    assert np.count_nonzero(np.abs(y.astype(int)) >= 127) > y.size // 4


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[3], CASES[5], CASES[6], CASES[7]])
def test_generated_c_equals_the_reference(case, tmp_path):
    """ADD (an arena tensor) -> TRANSPOSE_CONV: the sanitised host build gives the reference's
    bytes."""
    in_shape, kernel, out_c, stride, same, out_hw, clamp, bias, per_channel = case
    one = tconv_graph(in_shape, kernel, out_c, stride, same, out_hw, clamp, bias, per_channel)
    b = Int8Builder("tconv_c", seed=1)
    x = b.x(in_shape, 0.05, -3)
    x2 = b.input("x2", in_shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.05, -3))
    op = one.ops[0]
    inputs = [s]
    for name in op.inputs[1:]:
        t = one.tensors[name]
        inputs.append(b.constant(name, t.shape, t.dtype, t.data, t.quant))
    y = b.op(KIND, inputs, op.attrs, dtype=DType.INT8, quant=one.tensors[op.outputs[0]].quant)
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


def _refusal(graph, message):
    with pytest.raises(InvalidValueError, match=message) as info:
        validate_model(graph)
    assert str(info.value).startswith("graph tconv: operator #0 transpose_conv (TRANSPOSE_CONV)")
    assert "\n" not in str(info.value)


def test_refuses_an_output_shape_that_does_not_fit():
    graph = tconv_graph((1, 3, 4, 2), (3, 3), 5, (2, 2), True)
    op = graph.ops[0]
    bad = TransposeConvAttrs((1, 6, 8, 4), (2, 2), True)
    graph = graph.with_ops([type(op)(op.name, op.kind, op.inputs, op.outputs, bad)])
    _refusal(graph, r"output_shape \[1, 6, 8, 4\] does not fit input \[1, 3, 4, 2\]")


def test_refuses_asymmetric_weights():
    graph = tconv_graph((1, 3, 4, 2), (3, 3), 5, (2, 2), True)
    w_name = graph.ops[0].inputs[1]
    w = graph.tensors[w_name]
    asym = QuantParams(w.quant.scale, (0, 0, 3, 0, 0), 0)
    tensors = dict(graph.tensors)
    tensors[w_name] = type(w)(w.name, w.shape, w.dtype, asym, w.constant, w.data)
    _refusal(graph.with_ops(graph.ops, tensors=tensors), r"zero point 3 of channel 2")
