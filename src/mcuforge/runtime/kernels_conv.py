"""Int8 convolution kernels, bit-exact with TFLite Micro's reference kernels.

CONV_2D (``reference_integer_ops::ConvPerChannel``), DEPTHWISE_CONV_2D
(``DepthwiseConvPerChannel``) and FULLY_CONNECTED (``FullyConnected``) all compute

    acc[c] = sum_k (x_k - x_zero_point) * (w[c, k] - w_zero_point[c]) + bias[c]     (int32)
    y[c]   = clamp(MultiplyByQuantizedMultiplier(acc[c], M[c], shift[c]) + y_zero_point)

TFLite skips padded taps; that equals padding the zero-point-shifted input with zeros, which is
what these kernels do. The dot products run as float64 matrix products (BLAS): every product is an
integer below 2^16 in magnitude and every partial sum stays far below 2^53, so the float64 result is
the exact integer, in any summation order. Conv uses im2col (one strided view per kernel tap);
depthwise accumulates one vectorised int32 multiply-add per tap.

Each kernel is a pure function of numpy arrays, IR attributes and `QuantParams`, so a caller can run
it on a cropped window with other pads (patch-based inference). Multipliers follow TFLite: every
kernel here uses double(in) * double(w[c]) / double(out), per channel or per tensor.
"""

from __future__ import annotations

import functools

import numpy as np
from threadpoolctl import ThreadpoolController

from ..ir import ConvAttrs, FullyConnectedAttrs, QuantParams
from ..arith.fixedpoint import (calculate_activation_range_quantized, conv_channel_multipliers,
                                multiply_by_quantized_multiplier, quantize_multiplier)
from .windows import output_hw, pad_spatial, window_taps


def _zero_points(q: QuantParams, channels: int) -> np.ndarray:
    zp = np.asarray(q.zero_point, dtype=np.int64)
    return np.full(channels, zp[0], dtype=np.int64) if zp.size == 1 else zp


def requantize_accumulator(acc: np.ndarray, multiplier, shift, y_q: QuantParams,
                           clamp: tuple[float, float], qmin: int = -128, qmax: int = 127
                           ) -> np.ndarray:
    """Scale an int32 accumulator to the output: MultiplyByQuantizedMultiplier, add the output zero
    point, clamp to the fused activation range. Returns int8 (or the dtype of [qmin, qmax])."""
    y_scale, y_zp = y_q.scale[0], y_q.zero_point[0]
    act_min, act_max = calculate_activation_range_quantized(clamp, y_scale, y_zp, qmin, qmax)
    y = multiply_by_quantized_multiplier(acc, multiplier, shift) + y_zp
    dtype = np.int8 if qmin >= -128 and qmax <= 127 else np.int16
    return np.clip(y, act_min, act_max).astype(dtype)


@functools.lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer matrix product a @ b through float64 BLAS (exact for int8-sized operands).

    BLAS runs single-threaded here: these products are small and many, and OpenBLAS's thread
    start-up and spinning cost more than they save (3x the CPU time when the cores are busy)."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        product = np.asarray(a, dtype=np.float64) @ np.asarray(b, dtype=np.float64)
    return product.astype(np.int64)  # already integral: the conversion is exact


def conv2d_int8(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, attrs: ConvAttrs,
                x_q: QuantParams, w_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """CONV_2D: x [N, H, W, C_in] int8, w [C_out, kh, kw, C_in / groups] int8 (OHWI), bias [C_out]
    int32 or None. Returns y [N, OH, OW, C_out] int8."""
    n, in_h, in_w, in_c = x.shape
    out_c, kh, kw, filter_in_c = w.shape
    if in_c % filter_in_c:
        raise ValueError(f"filter takes {filter_in_c} input channels, input has {in_c}")
    groups = in_c // filter_in_c
    if out_c % groups:
        raise ValueError(f"{out_c} output channels do not split into {groups} groups")
    out_h, out_w = output_hw(in_h, in_w, (kh, kw), attrs.stride, attrs.pads, attrs.dilation)
    # Integers are exact in float64; the matrix product runs there directly (see the top comment).
    shifted = x.astype(np.float64) - x_q.zero_point[0]
    padded = pad_spatial(shifted, attrs.pads, 0.0)
    taps = [view for _, _, view in window_taps(padded, (kh, kw), attrs.stride, attrs.dilation,
                                               (out_h, out_w))]
    weights = (w.astype(np.int64) - _zero_points(w_q, out_c)[:, None, None, None])
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
        acc[:, out_slice] = _exact_matmul(cols, weights[out_slice].reshape(group_out, -1).T)
    if bias is not None:
        acc += bias.astype(np.int64)
    multiplier, shift = conv_channel_multipliers(x_q.scale[0], w_q.scale, y_q.scale[0], out_c)
    y = requantize_accumulator(acc, multiplier, shift, y_q, attrs.clamp)
    return y.reshape(n, out_h, out_w, out_c)


def depthwise_conv2d_int8(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                          attrs: ConvAttrs, x_q: QuantParams, w_q: QuantParams,
                          y_q: QuantParams) -> np.ndarray:
    """DEPTHWISE_CONV_2D: x [N, H, W, C] int8, w [1, kh, kw, C * depth_multiplier] int8; output
    channel c reads input channel c // depth_multiplier. Returns y [N, OH, OW, C * dm] int8."""
    n, in_h, in_w, in_c = x.shape
    _, kh, kw, out_c = w.shape
    multiplier_count = attrs.depth_multiplier
    if out_c != in_c * multiplier_count:
        raise ValueError(f"depthwise filter has {out_c} channels, input {in_c} x depth multiplier "
                         f"{multiplier_count}")
    out_h, out_w = output_hw(in_h, in_w, (kh, kw), attrs.stride, attrs.pads, attrs.dilation)
    # int32 is exact here (|product| < 2^16, fewer than 2^15 taps) and twice as fast as int64.
    shifted = x.astype(np.int32) - np.int32(x_q.zero_point[0])
    if multiplier_count > 1:
        shifted = np.repeat(shifted, multiplier_count, axis=3)
    padded = pad_spatial(shifted, attrs.pads, 0)
    weights = (w[0].astype(np.int64) - _zero_points(w_q, out_c)).astype(np.int32)
    acc = np.zeros((n, out_h, out_w, out_c), dtype=np.int32)
    for ky, kx, view in window_taps(padded, (kh, kw), attrs.stride, attrs.dilation,
                                    (out_h, out_w)):
        acc += view * weights[ky, kx]
    acc = acc.astype(np.int64)
    if bias is not None:
        acc += bias.astype(np.int64)
    multiplier, shift = conv_channel_multipliers(x_q.scale[0], w_q.scale, y_q.scale[0], out_c)
    return requantize_accumulator(acc, multiplier, shift, y_q, attrs.clamp)


def fully_connected_multipliers(x_q: QuantParams, w_q: QuantParams, y_q: QuantParams,
                                out_features: int) -> tuple[np.ndarray, np.ndarray]:
    """FULLY_CONNECTED (multiplier, shift), per tensor or per output channel:
    double(in) * double(w) / double(out). (A float32 product of the two scales, as some TFLite
    versions take, differs in the last bits; the pip TFLite Micro interpreter uses double, which
    `test_kernels.py` tells apart on an accumulator where the two round differently.)"""
    w_scales = np.asarray(w_q.scale, dtype=np.float32).astype(np.float64)
    product = float(np.float32(x_q.scale[0])) * w_scales
    multiplier, shift = quantize_multiplier(product / float(np.float32(y_q.scale[0])))
    if multiplier.size == 1:
        return np.full(out_features, multiplier[0]), np.full(out_features, shift[0])
    return multiplier, shift


def fully_connected_int8(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                         attrs: FullyConnectedAttrs, x_q: QuantParams, w_q: QuantParams,
                         y_q: QuantParams) -> np.ndarray:
    """FULLY_CONNECTED: x [..., in] int8 (flattened to rows of ``in``), w [out, in] int8, bias [out]
    int32 or None. Returns [rows, out], or x.shape[:-1] + (out,) with ``keep_num_dims``."""
    out_features, in_features = w.shape
    if x.size % in_features:
        raise ValueError(f"input of {x.size} values cannot be split into rows of {in_features}")
    rows = x.reshape(-1, in_features).astype(np.int64) - x_q.zero_point[0]
    weights = w.astype(np.int64) - _zero_points(w_q, out_features)[:, None]
    acc = _exact_matmul(rows, weights.T)
    if bias is not None:
        acc += bias.astype(np.int64)
    multiplier, shift = fully_connected_multipliers(x_q, w_q, y_q, out_features)
    y = requantize_accumulator(acc, multiplier, shift, y_q, attrs.clamp)
    if attrs.keep_num_dims:
        return y.reshape(tuple(x.shape[:-1]) + (out_features,))
    return y
