"""Helpers of the 16x8 (int16 activation) tests: a graph builder with random int8 weights and int64
biases, random int16 inputs, one-op graphs with int16 or int8 edges, and the TFLite Micro check."""

from __future__ import annotations

import numpy as np

from tflm_support import assert_matches_tflm
from mcuforge.ir import ConvAttrs, DType, FullyConnectedAttrs, Graph, OpKind, Pads, QuantParams
from mcuforge.ir.builder import GraphBuilder

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

    def bias(self, x: str, w: str, magnitude: int = 1 << 20, dtype: DType = DType.INT64) -> str:
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


def int8_edged(build, in_shape, in_scale: float, seed: int = 0,
               out_ratios: tuple[int, ...] = (256,)) -> Graph:
    """x (int8) -> QUANTIZE to int16 -> build(builder, x16) -> QUANTIZE to int8: the generated C's
    API is int8, so its differential run needs int8 edges. Each int8 output (one per ratio of
    ``out_ratios``) has the int16 output's scale times the ratio: 256 keeps its top bits, 1 its
    low bits where it is small (larger values saturate)."""
    b = Builder16("int16_c", seed)
    x = b.input("x", tuple(in_shape), DType.INT8, QuantParams.per_tensor(in_scale * 200, -3))
    x16 = b.op(OpKind.QUANTIZE, [x], dtype=DType.INT16, quant=q16(in_scale))
    y16 = build(b, x16)
    outputs = [b.op(OpKind.QUANTIZE, [y16], dtype=DType.INT8,
                    quant=QuantParams.per_tensor(b.tensors[y16].quant.scale[0] * ratio, 5))
               for ratio in out_ratios]
    return b.finish(outputs)


def check_tflm(graph: Graph, seeds=(1, 2)) -> None:
    """Bit-exact with TFLite Micro on random int16 inputs (whose outputs are not all saturated)."""
    for seed in seeds:
        out = assert_matches_tflm(graph, int16_inputs(graph, seed))
        assert out.dtype == np.int16
        assert len(np.unique(out)) > min(8, out.size // 2)
