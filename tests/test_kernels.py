"""Every int8 kernel of the reference runtime against TensorFlow Lite Micro, one op at a time.

Each case builds a one-op IR graph with random int8 data, writes it with
`mcuforge.frontends.tflite_writer.serialize_tflite`, runs it in the tflite-micro pip interpreter and
requires our `Interpreter` output to be bit-identical. This covers the op kinds and options the
reference models do not exercise (MUL, HARD_SWISH, LOGISTIC, MAX_POOL_2D, CONCATENATION,
RESIZE_NEAREST_NEIGHBOR, RELU, RELU6, depth multipliers, dilation, broadcasting, QUANTIZE int8 -> int8
...). Targeted cases pin down TFLite Micro's arithmetic where random data rarely tells variants
apart: double (not single) rounding in MultiplyByQuantizedMultiplier, and multipliers computed from
the scales in double (not float32) arithmetic. The last tests check the property patch-based
inference relies on: a kernel run on a cropped window with edge pads gives exactly the crop of the
full output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcuforge.ir import (RELU, RELU6, ConcatAttrs, ConvAttrs, DType, ElementwiseAttrs,
                         FullyConnectedAttrs, Graph, MeanAttrs, NoAttrs, Op, OpKind, PadAttrs, Pads,
                         PoolAttrs, QuantParams, ReshapeAttrs, ResizeAttrs, SoftmaxAttrs, Tensor,
                         TransposeAttrs, infer_output_shape)
from mcuforge.ops.conv2d import conv2d_int8
from mcuforge.ops.depthwise_conv2d import depthwise_conv2d_int8
from mcuforge.ops.pool import average_pool2d_int8, max_pool2d_int8
from mcuforge.runtime.reference import Interpreter
from tflm_support import assert_matches_tflm

pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

NO_CLAMP = (-math.inf, math.inf)


def q(scale: float, zero_point: int) -> QuantParams:
    return QuantParams.per_tensor(scale, zero_point)


def act(name: str, shape, quant: QuantParams | None, dtype: DType = DType.INT8) -> Tensor:
    return Tensor(name, tuple(shape), dtype, quant)


def single_op_graph(kind: OpKind, attrs, inputs: list[Tensor], out_quant: QuantParams | None,
                    out_dtype: DType = DType.INT8) -> Graph:
    """A graph with one op; non-constant inputs are graph inputs, the output shape is inferred."""
    op_inputs = tuple(t.name for t in inputs)
    probe = Op("op", kind, op_inputs, ("y",), attrs)
    out_shape = infer_output_shape(probe, [t.shape for t in inputs])
    tensors = {t.name: t for t in inputs}
    tensors["y"] = Tensor("y", out_shape, out_dtype, out_quant)
    graph_inputs = tuple(t.name for t in inputs if not t.constant)
    return Graph("single", tensors, (probe,), graph_inputs, ("y",))


def random_int8(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=tuple(shape), dtype=np.int8)


def conv_weights(rng, shape, out_axis: int, x_scale: float, fan_in: int):
    """Random int8 weights with per-channel scales, a matching int32 bias, and an output scale
    that spreads the results over the int8 range."""
    channels = shape[out_axis]
    w_scales = rng.uniform(0.002, 0.02, size=channels)
    w = Tensor("w", tuple(shape), DType.INT8,
               QuantParams(tuple(w_scales), (0,) * channels, out_axis),
               data=rng.integers(-127, 128, size=shape, dtype=np.int8))
    bias_scales = tuple(float(np.float32(x_scale)) * s for s in w_scales)
    b = Tensor("b", (channels,), DType.INT32, QuantParams(bias_scales, (0,) * channels, 0),
               data=rng.integers(-4000, 4000, size=channels).astype(np.int32))
    y_scale = 74 * 73 * math.sqrt(fan_in) * x_scale * float(np.mean(w_scales)) / 45
    return w, b, y_scale


@pytest.mark.parametrize("kernel, stride, padding, dilation, clamp", [
    ((3, 3), (1, 1), "same", (1, 1), RELU6),
    ((3, 3), (2, 2), "same", (1, 1), NO_CLAMP),
    ((1, 1), (1, 1), "valid", (1, 1), NO_CLAMP),
    ((5, 3), (2, 1), "valid", (1, 1), RELU),
    ((3, 3), (1, 1), "same", (2, 2), NO_CLAMP),
    ((3, 3), (1, 1), "explicit", (1, 1), RELU6),
])
def test_conv2d(kernel, stride, padding, dilation, clamp):
    rng = np.random.default_rng(1)
    x_q = q(0.031, -7)
    x = act("x", (1, 11, 9, 6), x_q)
    w, b, y_scale = conv_weights(rng, (8, *kernel, 6), 0, 0.031, kernel[0] * kernel[1] * 6)
    pads = {"same": Pads.same(11, 9, kernel, stride, dilation), "valid": Pads(),
            "explicit": Pads(2, 0, 1, 1)}[padding]
    attrs = ConvAttrs(stride=stride, pads=pads, dilation=dilation, clamp=clamp)
    graph = single_op_graph(OpKind.CONV_2D, attrs, [x, w, b], q(y_scale, 5))
    assert_matches_tflm(graph, [random_int8(rng, x.shape)])


def test_tflm_uses_double_rounding(monkeypatch):
    """The pip TFLite Micro build rounds twice (no TFLITE_SINGLE_ROUNDING): the single-rounding
    variant of MultiplyByQuantizedMultiplier disagrees with it on an ordinary conv."""
    import functools

    from mcuforge.arith import fixedpoint
    from mcuforge.ops import conv_common as kernels_conv
    rng = np.random.default_rng(17)
    x = act("x", (1, 12, 12, 8), q(0.03, -2))
    w, b, y_scale = conv_weights(rng, (16, 1, 1, 8), 0, 0.03, 8)
    graph = single_op_graph(OpKind.CONV_2D, ConvAttrs(), [x, w, b], q(y_scale / 8, 0))
    inputs = [random_int8(rng, x.shape)]
    assert_matches_tflm(graph, inputs)
    single = functools.partial(fixedpoint.multiply_by_quantized_multiplier, rounding="single")
    monkeypatch.setattr(kernels_conv, "multiply_by_quantized_multiplier", single)
    with pytest.raises(AssertionError, match="differ from TFLite Micro"):
        assert_matches_tflm(graph, inputs)


def test_conv2d_negative_filter_scales():
    """mcunet-in3 carries 79 negative per-channel filter scales: negative multipliers."""
    rng = np.random.default_rng(16)
    x = act("x", (1, 6, 6, 5), q(0.03, -2))
    w, b, y_scale = conv_weights(rng, (6, 3, 3, 5), 0, 0.03, 45)
    signs = np.array([1, -1, 1, -1, -1, 1])
    w = Tensor("w", w.shape, DType.INT8, QuantParams(tuple(np.array(w.quant.scale) * signs),
                                                     (0,) * 6, 0), data=w.data)
    b = Tensor("b", b.shape, DType.INT32, QuantParams(tuple(np.array(b.quant.scale) * signs),
                                                      (0,) * 6, 0), data=b.data)
    graph = single_op_graph(OpKind.CONV_2D, ConvAttrs(pads=Pads.same(6, 6, (3, 3), (1, 1))),
                            [x, w, b], q(y_scale, 3))
    assert_matches_tflm(graph, [random_int8(rng, x.shape)])


def test_grouped_conv2d():
    rng = np.random.default_rng(14)
    x = act("x", (1, 8, 8, 6), q(0.03, -2))
    w, b, y_scale = conv_weights(rng, (8, 3, 3, 3), 0, 0.03, 27)   # 2 groups of 3 channels
    graph = single_op_graph(OpKind.CONV_2D, ConvAttrs(pads=Pads(1, 1, 1, 1)), [x, w, b],
                            q(y_scale, 0))
    assert_matches_tflm(graph, [random_int8(rng, x.shape)])


@pytest.mark.parametrize("kernel, stride, depth_multiplier, clamp, dilation", [
    ((3, 3), (1, 1), 1, RELU6, (1, 1)),
    ((3, 3), (2, 2), 1, NO_CLAMP, (1, 1)),
    ((5, 5), (2, 2), 2, RELU, (1, 1)),
    ((7, 7), (1, 1), 3, NO_CLAMP, (1, 1)),
    ((3, 3), (1, 1), 1, NO_CLAMP, (2, 3)),
])
def test_depthwise_conv2d(kernel, stride, depth_multiplier, clamp, dilation):
    rng = np.random.default_rng(2)
    x_q = q(0.05, 3)
    x = act("x", (1, 12, 10, 4), x_q)
    w, b, y_scale = conv_weights(rng, (1, *kernel, 4 * depth_multiplier), 3, 0.05,
                                 kernel[0] * kernel[1])
    attrs = ConvAttrs(stride=stride, pads=Pads.same(12, 10, kernel, stride, dilation),
                      dilation=dilation, clamp=clamp, depth_multiplier=depth_multiplier)
    graph = single_op_graph(OpKind.DEPTHWISE_CONV_2D, attrs, [x, w, b], q(y_scale, -20))
    assert_matches_tflm(graph, [random_int8(rng, x.shape)])


@pytest.mark.parametrize("with_bias, clamp, x_zero_point", [
    (True, NO_CLAMP, -128), (True, RELU, 4), (False, NO_CLAMP, 0)])
def test_fully_connected(with_bias, clamp, x_zero_point):
    rng = np.random.default_rng(3)
    x = act("x", (2, 48), q(0.02, x_zero_point))
    w = Tensor("w", (10, 48), DType.INT8, q(0.0071, 0),
               data=rng.integers(-127, 128, size=(10, 48), dtype=np.int8))
    inputs = [x, w]
    if with_bias:
        inputs.append(Tensor("b", (10,), DType.INT32, q(0.02 * 0.0071, 0),
                             data=rng.integers(-3000, 3000, size=10).astype(np.int32)))
    graph = single_op_graph(OpKind.FULLY_CONNECTED, FullyConnectedAttrs(clamp=clamp), inputs,
                            q(0.3, -3))
    assert_matches_tflm(graph, [random_int8(rng, x.shape)])


def test_fully_connected_per_channel_and_keep_num_dims():
    rng = np.random.default_rng(15)
    scales = tuple(rng.uniform(0.003, 0.01, size=10))
    x = act("x", (1, 3, 48), q(0.02, 3))
    w = Tensor("w", (10, 48), DType.INT8, QuantParams(scales, (0,) * 10, 0),
               data=rng.integers(-127, 128, size=(10, 48), dtype=np.int8))
    b = Tensor("b", (10,), DType.INT32, QuantParams(tuple(0.02 * s for s in scales), (0,) * 10, 0),
               data=rng.integers(-3000, 3000, size=10).astype(np.int32))
    graph = single_op_graph(OpKind.FULLY_CONNECTED, FullyConnectedAttrs(keep_num_dims=True),
                            [x, w, b], q(0.3, -3))
    y = assert_matches_tflm(graph, [random_int8(rng, x.shape)])
    assert y.shape == (1, 3, 10)


@pytest.mark.parametrize("kind", [OpKind.ADD, OpKind.MUL])
@pytest.mark.parametrize("shape_a, shape_b, clamp", [
    ((1, 6, 5, 8), (1, 6, 5, 8), NO_CLAMP),
    ((1, 6, 5, 8), (1, 1, 1, 8), RELU),
    ((1, 6, 1, 8), (1, 1, 5, 1), RELU6),
])
def test_add_mul(kind, shape_a, shape_b, clamp):
    rng = np.random.default_rng(4)
    a = act("a", shape_a, q(0.047, -11))
    b = act("b", shape_b, q(0.021, 17))
    out_q = q(0.06, 2) if kind is OpKind.ADD else q(0.45, -5)
    graph = single_op_graph(kind, ElementwiseAttrs(clamp=clamp), [a, b], out_q)
    assert_matches_tflm(graph, [random_int8(rng, shape_a), random_int8(rng, shape_b)])


@pytest.mark.parametrize("kind", [OpKind.AVERAGE_POOL_2D, OpKind.MAX_POOL_2D])
@pytest.mark.parametrize("kernel, stride, same, clamp", [
    ((3, 3), (2, 2), True, NO_CLAMP),
    ((2, 2), (2, 2), False, RELU6),
    ((7, 7), (1, 1), False, NO_CLAMP),
    ((3, 3), (1, 1), True, RELU),
])
def test_pooling(kind, kernel, stride, same, clamp):
    rng = np.random.default_rng(5)
    x_q = q(0.04, -9)
    x = act("x", (1, 7, 7, 5), x_q)
    pads = Pads.same(7, 7, kernel, stride) if same else Pads()
    graph = single_op_graph(kind, PoolAttrs(kernel, stride, pads, clamp), [x], x_q)
    assert_matches_tflm(graph, [random_int8(rng, x.shape)])


@pytest.mark.parametrize("shape, axes, keep_dims, out_q", [
    ((1, 7, 5, 8), (1, 2), True, q(0.05, 6)),
    ((1, 7, 5, 8), (1, 2), True, q(0.02, -3)),
    ((1, 16, 3), (2,), False, q(0.05, 6)),
    ((1, 4, 6, 3), (-1,), False, q(0.08, 1)),
    ((2, 9, 4), (0, 1), True, q(0.05, 6)),
])
def test_mean(shape, axes, keep_dims, out_q):
    rng = np.random.default_rng(6)
    x = act("x", shape, q(0.05, 6))
    graph = single_op_graph(OpKind.MEAN, MeanAttrs(axes, keep_dims), [x], out_q)
    assert_matches_tflm(graph, [random_int8(rng, shape)])


@pytest.mark.parametrize("in_scale, beta, shape", [
    (0.1, 1.0, (1, 10)), (0.02, 1.0, (3, 7)), (0.35, 1.0, (1, 1000)), (0.0625, 0.5, (2, 12)),
])
def test_softmax(in_scale, beta, shape):
    rng = np.random.default_rng(7)
    x = act("x", shape, q(in_scale, 5))
    graph = single_op_graph(OpKind.SOFTMAX, SoftmaxAttrs(beta), [x], q(1 / 256, -128))
    assert_matches_tflm(graph, [random_int8(rng, shape)])


@pytest.mark.parametrize("in_q", [q(0.1, 0), q(0.02, -20), q(0.25, 7), q(0.003, 100)])
def test_logistic(in_q):
    rng = np.random.default_rng(8)
    x = act("x", (1, 300), in_q)
    graph = single_op_graph(OpKind.LOGISTIC, NoAttrs(), [x], q(1 / 256, -128))
    values = np.concatenate([np.arange(-128, 128, dtype=np.int8), random_int8(rng, (44,))])
    assert_matches_tflm(graph, [values.reshape(1, 300)])


@pytest.mark.parametrize("in_q, out_q", [
    (q(0.05, -10), q(0.03, -40)), (q(0.1, 0), q(0.08, -100)), (q(0.02, 30), q(0.011, -80)),
    (q(0.2, -128), q(0.3, -100)), (q(0.005, 3), q(0.004, -60)),   # reluish shift > 0 and < 0
])
def test_hard_swish(in_q, out_q):
    x = act("x", (1, 256), in_q)
    graph = single_op_graph(OpKind.HARD_SWISH, NoAttrs(), [x], out_q)
    assert_matches_tflm(graph, [np.arange(-128, 128, dtype=np.int8).reshape(1, 256)])


@pytest.mark.parametrize("kind, out_q", [
    (OpKind.RELU, q(0.05, -128)), (OpKind.RELU, q(0.03, -100)), (OpKind.RELU6, q(0.05, 4))])
def test_relu(kind, out_q):
    x = act("x", (1, 256), q(0.05, 4))
    graph = single_op_graph(kind, NoAttrs(), [x], out_q)
    assert_matches_tflm(graph, [np.arange(-128, 128, dtype=np.int8).reshape(1, 256)])


def test_quantize_float_to_int8():
    rng = np.random.default_rng(9)
    x = act("x", (1, 4, 4, 3), None, DType.FLOAT32)
    graph = single_op_graph(OpKind.QUANTIZE, NoAttrs(), [x], q(0.0137, 9))
    values = rng.normal(0, 1.2, size=x.shape).astype(np.float32)
    values.flat[:6] = [0.5 * 0.0137, -0.5 * 0.0137, 1.5 * 0.0137, 100.0, -100.0, 0.0]
    assert_matches_tflm(graph, [values])


@pytest.mark.parametrize("out_q", [q(0.07, -3), q(0.011, 20)])
def test_quantize_int8_to_int8(out_q):
    x = act("x", (1, 256), q(0.03, 5))
    graph = single_op_graph(OpKind.QUANTIZE, NoAttrs(), [x], out_q)
    assert_matches_tflm(graph, [np.arange(-128, 128, dtype=np.int8).reshape(1, 256)])


def test_dequantize():
    x = act("x", (1, 256), q(0.0173, -6))
    graph = single_op_graph(OpKind.DEQUANTIZE, NoAttrs(), [x], None, DType.FLOAT32)
    assert_matches_tflm(graph, [np.arange(-128, 128, dtype=np.int8).reshape(1, 256)])


@pytest.mark.parametrize("axis", [3, 1, -1])
def test_concatenation_same_quantisation(axis):
    rng = np.random.default_rng(10)
    x_q = q(0.05, 2)
    a, b = act("a", (1, 4, 3, 5), x_q), act("b", (1, 4, 3, 5), x_q)
    graph = single_op_graph(OpKind.CONCATENATION, ConcatAttrs(axis), [a, b], x_q)
    assert_matches_tflm(graph, [random_int8(rng, a.shape), random_int8(rng, b.shape)])


def test_concatenation_requantises_other_scales():
    a, b = act("a", (1, 2, 2, 2), q(0.05, 2)), act("b", (1, 2, 2, 2), q(0.1, -4))
    graph = single_op_graph(OpKind.CONCATENATION, ConcatAttrs(3), [a, b], q(0.05, 2))
    x_a = np.full((1, 2, 2, 2), 12, dtype=np.int8)
    x_b = np.full((1, 2, 2, 2), 6, dtype=np.int8)   # real 1.0 -> 20 + 2 on the output scale
    y = Interpreter(graph).invoke([x_a, x_b])[0]
    assert np.all(y[..., :2] == 12) and np.all(y[..., 2:] == 22)


@pytest.mark.parametrize("in_hw, size, align_corners, half_pixel_centers", [
    ((4, 4), (8, 8), False, False),
    ((5, 3), (7, 11), False, False),
    ((5, 3), (7, 11), True, False),
    ((5, 3), (7, 11), False, True),
    ((6, 6), (3, 2), False, True),
])
def test_resize_nearest_neighbor(in_hw, size, align_corners, half_pixel_centers):
    rng = np.random.default_rng(11)
    x_q = q(0.05, 2)
    x = act("x", (1, *in_hw, 3), x_q)
    attrs = ResizeAttrs(size, align_corners, half_pixel_centers)
    graph = single_op_graph(OpKind.RESIZE_NEAREST_NEIGHBOR, attrs, [x], x_q)
    assert_matches_tflm(graph, [random_int8(rng, x.shape)])


@pytest.mark.parametrize("kind, attrs", [
    (OpKind.TRANSPOSE, TransposeAttrs((0, 3, 1, 2))),
    (OpKind.PAD, PadAttrs(((0, 0), (1, 2), (3, 0), (0, 1)))),
    (OpKind.RESHAPE, ReshapeAttrs((1, 30, 2))),
])
def test_data_movement(kind, attrs):
    rng = np.random.default_rng(12)
    x_q = q(0.05, -5)
    x = act("x", (1, 3, 4, 5), x_q)
    graph = single_op_graph(kind, attrs, [x], x_q)
    assert_matches_tflm(graph, [random_int8(rng, x.shape)])


# --- how the multipliers are computed: double vs float32 scale arithmetic -------------------------
# Each case was found by searching scales and inputs for which computing the real multiplier with
# float32 arithmetic (instead of double) changes the output by one step; TFLite Micro agrees with the
# double computation every time. ``other`` is the value the float32 variant gives.

def _bias_trick(kind: OpKind, x_scale: float, w_scale: float, y_scale: float, accs: list[int]):
    """A 1x1 op whose input is the zero point, so each output channel's accumulator is its bias."""
    n = len(accs)
    if kind is OpKind.CONV_2D:
        x = act("x", (1, 1, 1, 1), q(x_scale, 0))
        w_shape, axis, attrs = (n, 1, 1, 1), 0, ConvAttrs()
    else:
        x = act("x", (1, 1), q(x_scale, 0))
        w_shape, axis, attrs = (n, 1), None, FullyConnectedAttrs()
    w_q = QuantParams((w_scale,) * n, (0,) * n, axis) if axis is not None else q(w_scale, 0)
    b_q = (QuantParams((x_scale * w_scale,) * n, (0,) * n, 0) if axis is not None
           else q(x_scale * w_scale, 0))
    w = Tensor("w", w_shape, DType.INT8, w_q, data=np.ones(w_shape, np.int8))
    b = Tensor("b", (n,), DType.INT32, b_q, data=np.array(accs, np.int32))
    graph = single_op_graph(kind, attrs, [x, w, b], q(y_scale, 0))
    return graph, [np.zeros(x.shape, np.int8)]


def _one_value(kind: OpKind, scales: list[float], values: list[int], out_scale: float):
    inputs = [act(f"x{i}", (1, 1), q(s, 0)) for i, s in enumerate(scales)]
    attrs = ElementwiseAttrs() if kind in (OpKind.ADD, OpKind.MUL) else NoAttrs()
    graph = single_op_graph(kind, attrs, inputs, q(out_scale, 0))
    return graph, [np.array([[v]], np.int8) for v in values]


@pytest.mark.parametrize("build, expected, other", [
    (lambda: _bias_trick(OpKind.FULLY_CONNECTED, 0.03547846898436546, 0.004158293828368187,
                         0.03228296712040901, [-19365, 19365]), [-89, 89], [-88, 88]),
    (lambda: _bias_trick(OpKind.CONV_2D, 0.04955930635333061, 0.009707968682050705,
                         1.4264122247695923, [-140826, 140826]), [-47, 47], [-48, 48]),
    (lambda: _one_value(OpKind.ADD, [0.07599013, 0.033870377], [-11, 89], 0.022117484), [98], [99]),
    (lambda: _one_value(OpKind.MUL, [0.08941732, 0.07146982], [-126, -54], 0.8128648), [54], [53]),
    (lambda: _one_value(OpKind.RELU, [0.05480976], [80], 0.061325606), [71], [72]),
    (lambda: _one_value(OpKind.QUANTIZE, [0.05909924], [104], 0.06115742), [101], [100]),
], ids=["fully_connected", "conv", "add", "mul", "relu", "requantize"])
def test_multipliers_use_double_arithmetic(build, expected, other):
    graph, inputs = build()
    y = assert_matches_tflm(graph, inputs)
    assert y.ravel().tolist() == expected != other


# --- patch-based use: kernels on cropped windows with edge pads -----------------------------------

def _crop_with_pads(full_pads: Pads, rows: tuple[int, int], cols: tuple[int, int], in_h: int,
                    in_w: int, kernel: tuple[int, int], stride: tuple[int, int]):
    """The input window and pads that produce output rows [r0, r1) x cols [c0, c1)."""
    (r0, r1), (c0, c1) = rows, cols
    top = r0 * stride[0] - full_pads.top
    bottom = (r1 - 1) * stride[0] - full_pads.top + kernel[0]
    left = c0 * stride[1] - full_pads.left
    right = (c1 - 1) * stride[1] - full_pads.left + kernel[1]
    window = (slice(max(top, 0), min(bottom, in_h)), slice(max(left, 0), min(right, in_w)))
    pads = Pads(max(-top, 0), max(bottom - in_h, 0), max(-left, 0), max(right - in_w, 0))
    return window, pads


@pytest.mark.parametrize("rows, cols", [((0, 3), (0, 4)), ((3, 7), (4, 8)), ((2, 5), (1, 6))])
def test_kernels_on_cropped_windows_match_full_output(rows, cols):
    rng = np.random.default_rng(13)
    x_q = q(0.04, -3)
    x = random_int8(rng, (1, 14, 15, 4))
    kernel, stride = (3, 3), (2, 2)
    full_pads = Pads.same(14, 15, kernel, stride)
    window, pads = _crop_with_pads(full_pads, rows, cols, 14, 15, kernel, stride)
    patch = x[:, window[0], window[1], :]
    out = (slice(*rows), slice(*cols))

    w, b, y_scale = conv_weights(rng, (6, 3, 3, 4), 0, 0.04, 36)
    conv_full = conv2d_int8(x, w.data, b.data, ConvAttrs(stride, full_pads), x_q, w.quant,
                            q(y_scale, 1))
    conv_patch = conv2d_int8(patch, w.data, b.data, ConvAttrs(stride, pads), x_q, w.quant,
                             q(y_scale, 1))
    assert np.array_equal(conv_patch, conv_full[:, out[0], out[1], :])

    dw, db, dw_scale = conv_weights(rng, (1, 3, 3, 4), 3, 0.04, 9)
    dw_full = depthwise_conv2d_int8(x, dw.data, db.data, ConvAttrs(stride, full_pads), x_q,
                                    dw.quant, q(dw_scale, 0))
    dw_patch = depthwise_conv2d_int8(patch, dw.data, db.data, ConvAttrs(stride, pads), x_q,
                                     dw.quant, q(dw_scale, 0))
    assert np.array_equal(dw_patch, dw_full[:, out[0], out[1], :])

    for pool in (average_pool2d_int8, max_pool2d_int8):
        full = pool(x, PoolAttrs(kernel, stride, full_pads), x_q, x_q)
        part = pool(patch, PoolAttrs(kernel, stride, pads), x_q, x_q)
        assert np.array_equal(part, full[:, out[0], out[1], :])
