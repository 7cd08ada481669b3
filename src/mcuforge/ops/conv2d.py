"""CONV_2D: int8 convolution with per-channel weights, bit-exact with TFLite Micro's
``reference_integer_ops::ConvPerChannel``.

- Shape: x [N, H, W, C_in], filter [C_out, kh, kw, C_in / groups] (OHWI), bias [C_out] -> [N, OH, OW,
  C_out] (`conv_common.conv_output_shape`). MACs ``OH*OW*C_out*kh*kw*C_in_per_group``.
- Window: the dilated kernel, stride and leading pad along each spatial axis (patchable).
- Overlap: POINTWISE (a 1x1 stride-1 unpadded conv may write pixel i over input pixel i).
- Reference kernel: im2col (one strided view per kernel tap) and an exact float64 matrix product;
  TFLite skips padded taps, which equals padding the zero-point-shifted input with zeros.
- C: ``conv_1x1`` (matrix product) or ``conv_im2col`` (`conv_common.lower_conv_weights`); the
  direct loop ``conv_direct`` (no scratch) where their scratch would grow the arena.
- .tflite: Conv2DOptions (padding, strides, dilations, fused activation).
- 16x8 (int16 activations, int8 weights, int64 bias): the same im2col with an int64 accumulator
  and the int64 requantisation (TFLite Micro's int16 ``ConvPerChannel``); C ``conv_s16``.
"""

from __future__ import annotations

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..ir.ops import ConvAttrs, OpKind
from ..ir.tensor import DType
from .conv_common import (ConvolutionOp, exact_matmul, lower_conv_weights, prepare_conv,
                          requantize, run_weighted, weights_and_bias, zero_points)
from .lowering_types import require_int8, unsupported
from .registry import OverlapRule
from .tflite_common import fused_activation
from .wide import is_acc32
from .wide_lowering import lower_wide_convolution
from .windows import output_hw, pad_spatial, window_taps


def conv2d_int8(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, attrs: ConvAttrs,
                x_q, w_q, y_q) -> np.ndarray:
    """CONV_2D: x [N, H, W, C_in] int8, w [C_out, kh, kw, C_in / groups] int8 (OHWI), bias [C_out]
    int32 or None. Returns y [N, OH, OW, C_out] int8. With an int16 ``x`` (16x8: int64 or int32
    bias) the output is int16 (`conv_common.requantize` with ``wide``)."""
    n, in_h, in_w, in_c = x.shape
    out_c, kh, kw, filter_in_c = w.shape
    if in_c % filter_in_c:
        raise ValueError(f"filter takes {filter_in_c} input channels, input has {in_c}")
    groups = in_c // filter_in_c
    if out_c % groups:
        raise ValueError(f"{out_c} output channels do not split into {groups} groups")
    out_h, out_w = output_hw(in_h, in_w, (kh, kw), attrs.stride, attrs.pads, attrs.dilation)
    # Integers are exact in float64; the matrix product runs there directly (see conv_common).
    shifted = x.astype(np.float64) - x_q.zero_point[0]
    padded = pad_spatial(shifted, attrs.pads, 0.0)
    taps = [view for _, _, view in window_taps(padded, (kh, kw), attrs.stride, attrs.dilation,
                                               (out_h, out_w))]
    weights = (w.astype(np.int64) - zero_points(w_q, out_c)[:, None, None, None])
    weights = weights.astype(np.float64)
    acc = np.empty((n * out_h * out_w, out_c), dtype=np.int64)
    group_out = out_c // groups
    for g in range(groups):
        in_slice = slice(g * filter_in_c, (g + 1) * filter_in_c)
        out_slice = slice(g * group_out, (g + 1) * group_out)
        if len(taps) == 1:
            cols = taps[0][..., in_slice]
        else:
            cols = np.stack([view[..., in_slice] for view in taps], axis=3)  # [N,OH,OW,taps,Cg]
        cols = cols.reshape(n * out_h * out_w, kh * kw * filter_in_c)
        acc[:, out_slice] = exact_matmul(cols, weights[out_slice].reshape(group_out, -1).T)
    if bias is not None:
        acc += bias.astype(np.int64)
    y = requantize(acc, prepare_conv(x_q, w_q, y_q, attrs.clamp, out_c, x.dtype == np.int16,
                                       is_acc32(bias)))
    return y.reshape(n, out_h, out_w, out_c)


class Conv2D(ConvolutionOp):
    """CONV_2D (see the module docstring)."""

    kinds = (OpKind.CONV_2D,)
    overlap = OverlapRule.POINTWISE
    tflite_options = BuiltinOptions.Conv2DOptions
    tflite_option_fields = (tflite.Conv2DOptions, (
        "Padding", "StrideW", "StrideH", "FusedActivationFunction", "DilationWFactor",
        "DilationHFactor"))

    def macs(self, graph, op):
        """OH * OW * C_out * kh * kw * C_in per group."""
        out = graph.tensors[op.outputs[0]].shape
        oc, kh, kw, ic = graph.tensors[op.inputs[1]].shape
        return out[1] * out[2] * oc * kh * kw * ic

    def weight_output_channels(self, graph, op):
        """C_out: the filter's first dimension."""
        return graph.tensors[op.inputs[1]].shape[0]

    def run(self, graph, op, env):
        """`conv2d_int8` on the op's operands."""
        return run_weighted(conv2d_int8, graph, op, env)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """A 1x1 stride-1 unpadded conv becomes a matrix product; others use im2col; 16x8 the
        direct loop of `conv_common.lower_wide_convolution`."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if x_t.dtype is DType.INT16:
            return lower_wide_convolution(graph, index, op, self.macs(graph, op), overlapped)
        require_int8(graph, index, op, (x_t.name, y_t.name))
        cout, kh, kw, cin = graph.tensors[op.inputs[1]].shape
        if cin != x_t.shape[3]:
            raise unsupported(graph, index, op, "grouped convolution")
        weights, bias = weights_and_bias(graph, index, op, cout)
        return lower_conv_weights(graph, index, op, weights, bias, target, overlapped,
                                  self.macs(graph, op))

    def lower_without_scratch(self, graph, index, op, target, overlapped):
        """The direct loop ``conv_direct`` (no im2col rows), or overlapped (a pointwise overlap)
        ``conv_1x1_inplace``, for int8 activations and weights; None for 16x8 and int4 weights."""
        x_t, w_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
        if x_t.dtype is not DType.INT8 or w_t.dtype is not DType.INT8:
            return None
        require_int8(graph, index, op, (x_t.name, op.outputs[0]))
        cout = w_t.shape[0]
        if w_t.shape[3] != x_t.shape[3]:
            raise unsupported(graph, index, op, "grouped convolution")
        weights, bias = weights_and_bias(graph, index, op, cout)
        return lower_conv_weights(graph, index, op, weights, bias, target, overlapped,
                                  self.macs(graph, op), scratch_free=True)

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """Conv2DOptions."""
        tflite.Conv2DOptionsStart(builder)
        tflite.Conv2DOptionsAddPadding(builder, padding)
        tflite.Conv2DOptionsAddStrideH(builder, attrs.stride[0])
        tflite.Conv2DOptionsAddStrideW(builder, attrs.stride[1])
        tflite.Conv2DOptionsAddDilationHFactor(builder, attrs.dilation[0])
        tflite.Conv2DOptionsAddDilationWFactor(builder, attrs.dilation[1])
        tflite.Conv2DOptionsAddFusedActivationFunction(
            builder, fused_activation(kind, attrs.clamp, output_name))
        return tflite.Conv2DOptionsEnd(builder)


OP_DEFS = (Conv2D(),)
