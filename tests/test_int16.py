"""16x8 quantisation (int16 activations with zero point 0, int8 symmetric per-channel weights, int64
bias): FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, ADD and RESHAPE run bit-exact with the TFLite
Micro pip interpreter on several shapes, scales and options, round-trip through the .tflite writer
and reader, and their generated C (host build with sanitizers, behind int8 <-> int16 QUANTIZE edges
since the C API is int8) equals the reference runtime; a small conv -> dw -> conv -> add -> fc model
runs end to end; dtype combinations that are not supported are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import differential_run
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError, McuforgeError, UnsupportedOpError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import (ConvAttrs, DType, ElementwiseAttrs, FullyConnectedAttrs, Graph, OpKind,
                         Pads, QuantParams)
from mcuforge.ir.builder import GraphBuilder
from mcuforge.ir.ops import ReshapeAttrs
from mcuforge.ops.validation import validate_model
from mcuforge.runtime.reference import Interpreter

RELU = (0.0, float("inf"))
NO_CLAMP = (float("-inf"), float("inf"))


def q16(scale: float) -> QuantParams:
    """Symmetric int16 activation quantisation (zero point 0)."""
    return QuantParams.per_tensor(scale, 0)


class Builder16(GraphBuilder):
    """GraphBuilder with random 16x8 weights and int64 biases."""

    def __init__(self, name: str, seed: int = 0):
        super().__init__(name)
        self.rng = np.random.default_rng(seed)

    def weights(self, shape, axis: int | None, channels: int, scale: float = 0.01) -> str:
        """Symmetric int8 weights, per-channel scales on ``axis`` (per tensor when None)."""
        data = self.rng.integers(-127, 128, size=shape, dtype=np.int8)
        if axis is None:
            quant = QuantParams.per_tensor(scale, 0)
        else:
            scales = tuple(float(s) for s in self.rng.uniform(0.3 * scale, 1.7 * scale, channels))
            quant = QuantParams(scales, (0,) * channels, axis)
        return self.constant("w", tuple(shape), DType.INT8, data, quant)

    def bias(self, x: str, w: str, magnitude: int = 1 << 24, dtype: DType = DType.INT64) -> str:
        """Random int64 (or int32) bias of scale input * weights (TFLite Micro checks it)."""
        w_q = self.tensors[w].quant
        channels = len(self.tensors[w].quant.scale) if w_q.per_axis else None
        count = self.tensors[w].shape[3 if self.tensors[w].shape[0] == 1 and len(
            self.tensors[w].shape) == 4 else 0]
        data = self.rng.integers(-magnitude, magnitude, size=count).astype(dtype.numpy)
        x_scale = self.tensors[x].quant.scale[0]
        if channels is None:
            quant = QuantParams.per_tensor(x_scale * w_q.scale[0], 0)
        else:
            quant = QuantParams(tuple(x_scale * s for s in w_q.scale), (0,) * channels, 0)
        return self.constant("b", (count,), dtype, data, quant)

    def conv(self, x: str, cout: int, kernel, scale_out: float, stride=(1, 1), pads=Pads(),
             dilation=(1, 1), clamp=NO_CLAMP, axis: int | None = 0, bias: bool = True) -> str:
        """A 16x8 CONV_2D."""
        cin = self.shape(x)[3]
        inputs = [x, self.weights((cout, *kernel, cin), axis, cout)]
        if bias:
            inputs.append(self.bias(x, inputs[1]))
        return self.op(OpKind.CONV_2D, inputs, ConvAttrs(stride, pads, dilation, clamp),
                       quant=q16(scale_out))

    def depthwise(self, x: str, kernel, scale_out: float, multiplier: int = 1, stride=(1, 1),
                  pads=Pads(), dilation=(1, 1), clamp=NO_CLAMP) -> str:
        """A 16x8 DEPTHWISE_CONV_2D."""
        cout = self.shape(x)[3] * multiplier
        w = self.weights((1, *kernel, cout), 3, cout)
        inputs = [x, w, self.bias(x, w)]
        return self.op(OpKind.DEPTHWISE_CONV_2D, inputs,
                       ConvAttrs(stride, pads, dilation, clamp, multiplier), quant=q16(scale_out))

    def fc(self, x: str, cout: int, scale_out: float, clamp=NO_CLAMP, axis: int | None = None,
           keep_num_dims: bool = False, bias: bool = True) -> str:
        """A 16x8 FULLY_CONNECTED."""
        cin = self.shape(x)[-1]
        inputs = [x, self.weights((cout, cin), axis, cout)]
        if bias:
            inputs.append(self.bias(x, inputs[1]))
        return self.op(OpKind.FULLY_CONNECTED, inputs, FullyConnectedAttrs(clamp, keep_num_dims),
                       quant=q16(scale_out))


def int16_inputs(graph: Graph, seed: int) -> list[np.ndarray]:
    """Random int16 values over the whole range, with the extremes in the first positions."""
    rng = np.random.default_rng(seed)
    arrays = []
    for name in graph.inputs:
        shape = graph.tensors[name].shape
        values = rng.integers(-32768, 32768, size=shape, dtype=np.int16)
        flat = values.reshape(-1)
        flat[:2] = (-32768, 32767)[:flat.size]
        arrays.append(values)
    return arrays


def single(build, in_shape, in_scale: float, seed: int = 0) -> Graph:
    """x (int16) -> build(builder, x) -> y."""
    b = Builder16("int16", seed)
    x = b.input("x", tuple(in_shape), DType.INT16, q16(in_scale))
    return b.finish([build(b, x)])


def int8_edged(build, in_shape, in_scale: float, out_scale: float, seed: int = 0) -> Graph:
    """x (int8) -> QUANTIZE to int16 -> build(builder, x16) -> QUANTIZE to int8: the generated C's
    API is int8, so its differential run needs int8 edges."""
    b = Builder16("int16_c", seed)
    x = b.input("x", tuple(in_shape), DType.INT8, QuantParams.per_tensor(in_scale * 300, -3))
    x16 = b.op(OpKind.QUANTIZE, [x], dtype=DType.INT16, quant=q16(in_scale))
    y16 = build(b, x16)
    y = b.op(OpKind.QUANTIZE, [y16], dtype=DType.INT8, quant=QuantParams.per_tensor(out_scale, 5))
    return b.finish([y])


def check_tflm(graph: Graph, seeds=(1, 2)) -> None:
    """Bit-exact with TFLite Micro on random int16 inputs."""
    for seed in seeds:
        out = assert_matches_tflm(graph, int16_inputs(graph, seed))
        assert out.dtype == np.int16


# --- FULLY_CONNECTED ---------------------------------------------------------------------------

FC_CASES = [
    # (input shape, out features, in scale, out scale, clamp, per-channel axis, keep_num_dims, bias)
    ((1, 16), 8, 0.001, 0.004, NO_CLAMP, None, False, True),
    ((3, 40), 12, 0.0005, 0.01, RELU, None, False, True),
    ((2, 5, 24), 7, 0.002, 0.02, NO_CLAMP, None, True, True),
    ((4, 33), 5, 0.01, 0.002, NO_CLAMP, None, False, False),
    ((1, 64), 10, 0.001, 0.0005, NO_CLAMP, 0, False, True),
]


@pytest.mark.parametrize("shape,cout,s_in,s_out,clamp,axis,keep,bias", FC_CASES)
def test_fully_connected_16x8_matches_tflm(shape, cout, s_in, s_out, clamp, axis, keep, bias):
    graph = single(lambda b, x: b.fc(x, cout, s_out, clamp, axis, keep, bias), shape, s_in)
    check_tflm(graph)


# --- CONV_2D -----------------------------------------------------------------------------------

CONV_CASES = [
    # (input shape, cout, kernel, stride, pads, dilation, clamp, in scale, out scale)
    ((1, 6, 6, 3), 4, (3, 3), (1, 1), Pads(1, 1, 1, 1), (1, 1), NO_CLAMP, 0.001, 0.01),
    ((1, 9, 7, 5), 6, (3, 3), (2, 2), Pads(0, 1, 0, 1), (1, 1), RELU, 0.0005, 0.004),
    ((2, 5, 5, 8), 3, (1, 1), (1, 1), Pads(), (1, 1), NO_CLAMP, 0.002, 0.003),
    ((1, 8, 8, 2), 5, (3, 2), (1, 1), Pads(), (2, 2), NO_CLAMP, 0.001, 0.001),
    ((1, 7, 7, 4), 4, (5, 5), (1, 2), Pads(2, 2, 2, 2), (1, 1), NO_CLAMP, 0.004, 0.2),
]


@pytest.mark.parametrize("shape,cout,kernel,stride,pads,dilation,clamp,s_in,s_out", CONV_CASES)
def test_conv_16x8_matches_tflm(shape, cout, kernel, stride, pads, dilation, clamp, s_in, s_out):
    graph = single(lambda b, x: b.conv(x, cout, kernel, s_out, stride, pads, dilation, clamp),
                   shape, s_in)
    check_tflm(graph)


def test_conv_16x8_without_bias_and_with_int32_bias_matches_tflm():
    check_tflm(single(lambda b, x: b.conv(x, 3, (3, 3), 0.01, bias=False), (1, 5, 5, 2), 0.001))

    def int32_bias(b, x):
        w = b.weights((3, 3, 3, 2), 0, 3)
        inputs = [x, w, b.bias(x, w, 1 << 20, DType.INT32)]
        return b.op(OpKind.CONV_2D, inputs, ConvAttrs(), quant=q16(0.01))
    check_tflm(single(int32_bias, (1, 5, 5, 2), 0.001))


# --- DEPTHWISE_CONV_2D -------------------------------------------------------------------------

DW_CASES = [
    # (input shape, kernel, multiplier, stride, pads, dilation, clamp, in scale, out scale)
    ((1, 6, 6, 4), (3, 3), 1, (1, 1), Pads(1, 1, 1, 1), (1, 1), NO_CLAMP, 0.001, 0.004),
    ((1, 9, 8, 3), (3, 3), 2, (2, 2), Pads(0, 1, 0, 1), (1, 1), RELU, 0.0005, 0.002),
    ((1, 7, 7, 1), (5, 5), 3, (1, 1), Pads(2, 2, 2, 2), (1, 1), NO_CLAMP, 0.002, 0.01),
    ((2, 8, 8, 5), (3, 3), 1, (1, 1), Pads(), (2, 2), NO_CLAMP, 0.003, 0.003),
]


@pytest.mark.parametrize("shape,kernel,dm,stride,pads,dilation,clamp,s_in,s_out", DW_CASES)
def test_depthwise_16x8_matches_tflm(shape, kernel, dm, stride, pads, dilation, clamp, s_in, s_out):
    graph = single(lambda b, x: b.depthwise(x, kernel, s_out, dm, stride, pads, dilation, clamp),
                   shape, s_in)
    check_tflm(graph)


def test_int32_bias_16x8_matches_tflm():
    """With an int32 bias TFLite Micro accumulates in int32 and requantises with the int32 form."""
    def fc(b, x):
        w = b.weights((6, 20), None, 6)
        return b.op(OpKind.FULLY_CONNECTED, [x, w, b.bias(x, w, 1 << 20, DType.INT32)],
                    FullyConnectedAttrs(), quant=q16(0.004))

    def dw(b, x):
        w = b.weights((1, 3, 3, 4), 3, 4)
        return b.op(OpKind.DEPTHWISE_CONV_2D, [x, w, b.bias(x, w, 1 << 20, DType.INT32)],
                    ConvAttrs(pads=Pads(1, 1, 1, 1)), quant=q16(0.004))
    check_tflm(single(fc, (2, 20), 0.001))
    # TFLite Micro's int16 depthwise reads the bias as int64 only: an int32 one is refused.
    refusal = r"operator #0 .*bias tensor b\S* is int32; .* takes int64$"
    with pytest.raises(UnsupportedOpError, match=refusal):
        validate_model(single(dw, (1, 5, 5, 4), 0.001))
