"""AVERAGE_POOL_2D and MAX_POOL_2D on int8 or int16 (16x8), bit-exact with TFLite Micro's
``reference_integer_ops::AveragePool`` / ``MaxPool`` (whose int16 variants are the same arithmetic
with the int16 clamp).

- AVERAGE: the window is clipped to the input, so padded pixels neither add to the sum nor to the
  count. The raw int8 values are summed (input and output share their quantisation, as TFLite
  requires; no zero point is subtracted) and divided with rounding half away from zero:
  ``acc > 0 ? (acc + n/2) / n : (acc - n/2) / n`` in C integer division, then clamped.
- MAX: the maximum over the clipped window, clamped.
- Shape: [N, OH, OW, C]; window: kernel, stride, leading pad (patchable); no overlap.
- C: ``pool`` specialised by kernel, stride and element type (int8_t or int16_t). .tflite: Pool2DOptions (explicit pads that are
  neither SAME nor VALID cannot be written).
"""

from __future__ import annotations

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import calculate_activation_range_quantized, trunc_div
from ..ir.ops import OpKind, Pads, PoolAttrs
from ..ir.shapes import conv_output_hw
from ..ir.tensor import DType, QuantParams
from .lowering_types import Buffer, KernelSpec, LayerCall, require_int8, unsupported
from .reference_support import check_int8_or_int16, unary_int8_with_attrs
from .registry import OpDef
from .tflite_common import fused_activation
from .windows import output_hw, pad_spatial, window_taps


def _activation_range(clamp: tuple[float, float], q: QuantParams,
                      dtype: np.dtype = np.dtype(np.int8)) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return calculate_activation_range_quantized(clamp, q.scale[0], q.zero_point[0], int(info.min),
                                                int(info.max))


def average_pool2d_int8(x: np.ndarray, attrs: PoolAttrs, x_q: QuantParams,
                        y_q: QuantParams) -> np.ndarray:
    """AVERAGE_POOL_2D on x [N, H, W, C] int8 (or int16, giving int16); the average counts only
    unpadded pixels."""
    n, in_h, in_w, channels = x.shape
    out_hw = output_hw(in_h, in_w, attrs.kernel, attrs.stride, attrs.pads)
    values = pad_spatial(x.astype(np.int64), attrs.pads, 0)
    valid = pad_spatial(np.ones((1, in_h, in_w, 1), dtype=np.int64), attrs.pads, 0)
    total = np.zeros((n,) + out_hw + (channels,), dtype=np.int64)
    count = np.zeros((1,) + out_hw + (1,), dtype=np.int64)
    for _, _, view in window_taps(values, attrs.kernel, attrs.stride, (1, 1), out_hw):
        total += view
    for _, _, view in window_taps(valid, attrs.kernel, attrs.stride, (1, 1), out_hw):
        count += view
    if np.any(count == 0):
        raise ValueError("an average-pool window lies entirely in the padding")
    return average_from_sums(total, count, attrs.clamp, y_q, x.dtype)


def average_from_sums(total: np.ndarray, count: np.ndarray | int, clamp: tuple[float, float],
                      y_q: QuantParams, dtype: np.dtype) -> np.ndarray:
    """The averages of windows with sums ``total`` (int64) over ``count`` unpadded pixels: rounded
    half away from zero, clamped to the activation range, as ``dtype``."""
    half = count // 2
    rounded = np.where(total > 0, trunc_div(total + half, count), trunc_div(total - half, count))
    act_min, act_max = _activation_range(clamp, y_q, np.dtype(dtype))
    return np.clip(rounded, act_min, act_max).astype(dtype)


def max_pool2d_int8(x: np.ndarray, attrs: PoolAttrs, x_q: QuantParams,
                    y_q: QuantParams) -> np.ndarray:
    """MAX_POOL_2D on x [N, H, W, C] int8 (or int16, giving int16); padded pixels never win."""
    n, in_h, in_w, channels = x.shape
    out_hw = output_hw(in_h, in_w, attrs.kernel, attrs.stride, attrs.pads)
    sentinel = np.iinfo(np.int64).min
    values = pad_spatial(x.astype(np.int64), attrs.pads, sentinel)
    best = np.full((n,) + out_hw + (channels,), sentinel, dtype=np.int64)
    for _, _, view in window_taps(values, attrs.kernel, attrs.stride, (1, 1), out_hw):
        np.maximum(best, view, out=best)
    if np.any(best == sentinel):
        raise ValueError("a max-pool window lies entirely in the padding")
    act_min, act_max = _activation_range(attrs.clamp, y_q, x.dtype)
    return np.clip(best, act_min, act_max).astype(x.dtype)


class Pool2D(OpDef):
    """AVERAGE_POOL_2D or MAX_POOL_2D (one instance per kind)."""

    input_dtypes = frozenset({DType.INT8, DType.INT16})  # int16: 16x8 activations (`ops.wide`)
    output_dtypes = frozenset({DType.INT8, DType.INT16})

    attrs_type = PoolAttrs
    tflite_options = BuiltinOptions.Pool2DOptions
    tflite_option_fields = (tflite.Pool2DOptions, (
        "Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight", "FusedActivationFunction"))

    def __init__(self, kind: OpKind, kernel, average: bool):
        self.kinds = (kind,)
        self.average = average
        self._run = unary_int8_with_attrs(kernel, check_int8_or_int16)

    def output_shape(self, op, input_shapes):
        """[N, OH, OW, C]."""
        a = op.attrs
        x = input_shapes[0]
        oh, ow = conv_output_hw(x[1], x[2], a.kernel, a.stride, a.pads)
        if oh <= 0 or ow <= 0:
            raise ValueError(f"input {x} too small for pool {a.kernel}")
        return (x[0], oh, ow, x[3])

    def window(self, graph, op, axis):
        """Kernel, stride and leading pad along ``axis``."""
        a = op.attrs
        pad = a.pads.top if axis == 1 else a.pads.left
        return a.kernel[axis - 1], a.stride[axis - 1], pad

    def run(self, graph, op, env):
        """The pooling kernel on int8, or int16, tensors."""
        return self._run(graph, op, env)

    def pools_globally(self, graph, op):
        """An average pool whose one window is the whole unpadded input."""
        a = op.attrs
        x_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        return self.average and a.pads == Pads(0, 0, 0, 0) and tuple(a.kernel) == x_t.shape[1:3] \
            and y_t.shape[1:3] == (1, 1)

    def global_pool_from_sums(self, graph, op, sums):
        """`average_from_sums` over the whole input."""
        a = op.attrs
        x_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        count = x_t.shape[1] * x_t.shape[2]
        out = average_from_sums(np.asarray(sums, dtype=np.int64), count, a.clamp, y_t.quant,
                                x_t.dtype.numpy)
        return out.reshape(y_t.shape)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """``pool`` specialised by kernel size, stride, average/max and element type."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        wide = x_t.dtype is DType.INT16
        if wide:
            check_int8_or_int16(graph, op, (x_t.name, y_t.name))
        else:
            require_int8(graph, index, op, (x_t.name, y_t.name))
        attrs = op.attrs
        assert isinstance(attrs, PoolAttrs)
        if x_t.shape[0] != 1:
            raise unsupported(graph, index, op, "batch size other than 1")
        act_min, act_max = _activation_range(attrs.clamp, y_t.quant, x_t.dtype.numpy)
        (kh, kw), (sh, sw) = attrs.kernel, attrs.stride
        ctype = "int16_t" if wide else "int8_t"
        spec = KernelSpec(
            f"mf_{'avg' if self.average else 'max'}pool_{kh}x{kw}_s{sh}x{sw}{'_s16' if wide else ''}",
            "pool", f"const {ctype} *in, {ctype} *out, int32_t H, int32_t W, int32_t C, int32_t OH, "
            "int32_t OW, int32_t pt, int32_t pl, int32_t act_min, int32_t act_max",
            {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "average": self.average, "ctype": ctype})
        args = (Buffer("tensor", x_t.name, ctype), Buffer("tensor", y_t.name, ctype), x_t.shape[1], x_t.shape[2], x_t.shape[3], y_t.shape[1],
                y_t.shape[2], attrs.pads.top, attrs.pads.left, act_min, act_max)
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """Filter size, strides, SAME/VALID pads and the fused activation."""
        x = reader.spatial_input(rop, where)
        stride = reader.positive(rop, where, "StrideH", "StrideW")
        kernel = reader.positive(rop, where, "FilterHeight", "FilterWidth")
        pads = reader.pads(rop, where, (x[1], x[2]), kernel, stride)
        return PoolAttrs(kernel, stride, pads, reader.clamp(rop, where))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """Pool2DOptions."""
        tflite.Pool2DOptionsStart(builder)
        tflite.Pool2DOptionsAddPadding(builder, padding)
        tflite.Pool2DOptionsAddStrideH(builder, attrs.stride[0])
        tflite.Pool2DOptionsAddStrideW(builder, attrs.stride[1])
        tflite.Pool2DOptionsAddFilterHeight(builder, attrs.kernel[0])
        tflite.Pool2DOptionsAddFilterWidth(builder, attrs.kernel[1])
        tflite.Pool2DOptionsAddFusedActivationFunction(
            builder, fused_activation(kind, attrs.clamp, output_name))
        return tflite.Pool2DOptionsEnd(builder)

    def tflite_window(self, graph, op):
        """Filter size, strides, no dilation, pads."""
        a = op.attrs
        return a.kernel, a.stride, (1, 1), a.pads


OP_DEFS = (Pool2D(OpKind.AVERAGE_POOL_2D, average_pool2d_int8, average=True),
           Pool2D(OpKind.MAX_POOL_2D, max_pool2d_int8, average=False))
