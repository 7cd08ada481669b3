"""Int8 pooling and reduction kernels, bit-exact with TFLite Micro's reference kernels.

AVERAGE_POOL_2D (``reference_integer_ops::AveragePool``): the window is clipped to the input, so
padded pixels neither add to the sum nor to the count. The raw int8 values are summed (input and
output share their quantisation, as TFLite requires; no zero point is subtracted) and divided with
rounding half away from zero: ``acc > 0 ? (acc + n/2) / n : (acc - n/2) / n`` in C integer
division, then clamped to the fused activation range.

MAX_POOL_2D (``reference_integer_ops::MaxPool``): the maximum over the clipped window, clamped.

MEAN (``reference_ops::QuantizedMeanOrSum``): the int32 sum minus zero point times count, rescaled
by the input/output scale ratio with 1/count folded into the multiplier:
(multiplier << s) / count and shift - s, with s = min(floor(log2(count)), 32, 31 + shift). The pip
TFLite Micro interpreter takes this path for int8 even when input and output share their
quantisation (checked bit for bit; the older same-quantisation path, a truncating integer division of
the raw sum, gives different results).
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import MeanAttrs, PoolAttrs, QuantParams
from ..arith.fixedpoint import (calculate_activation_range_quantized,
                                multiply_by_quantized_multiplier, quantize_multiplier_scalar,
                                trunc_div)
from .windows import output_hw, pad_spatial, window_taps


def _activation_range(clamp: tuple[float, float], q: QuantParams) -> tuple[int, int]:
    return calculate_activation_range_quantized(clamp, q.scale[0], q.zero_point[0])


def average_pool2d_int8(x: np.ndarray, attrs: PoolAttrs, x_q: QuantParams,
                        y_q: QuantParams) -> np.ndarray:
    """AVERAGE_POOL_2D on x [N, H, W, C] int8; the average counts only unpadded pixels."""
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
    half = count // 2
    rounded = np.where(total > 0, trunc_div(total + half, count), trunc_div(total - half, count))
    act_min, act_max = _activation_range(attrs.clamp, y_q)
    return np.clip(rounded, act_min, act_max).astype(np.int8)


def max_pool2d_int8(x: np.ndarray, attrs: PoolAttrs, x_q: QuantParams,
                    y_q: QuantParams) -> np.ndarray:
    """MAX_POOL_2D on x [N, H, W, C] int8; padded pixels never win."""
    n, in_h, in_w, channels = x.shape
    out_hw = output_hw(in_h, in_w, attrs.kernel, attrs.stride, attrs.pads)
    sentinel = np.iinfo(np.int64).min
    values = pad_spatial(x.astype(np.int64), attrs.pads, sentinel)
    best = np.full((n,) + out_hw + (channels,), sentinel, dtype=np.int64)
    for _, _, view in window_taps(values, attrs.kernel, attrs.stride, (1, 1), out_hw):
        np.maximum(best, view, out=best)
    if np.any(best == sentinel):
        raise ValueError("a max-pool window lies entirely in the padding")
    act_min, act_max = _activation_range(attrs.clamp, y_q)
    return np.clip(best, act_min, act_max).astype(np.int8)


def _resolve_axes(axes: tuple[int, ...], rank: int) -> tuple[int, ...]:
    resolved: list[int] = []
    for axis in axes:
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < rank:
            raise ValueError(f"MEAN axis {axis} out of range for rank {rank}")
        if a not in resolved:
            resolved.append(a)
    return tuple(resolved)


def mean_int8(x: np.ndarray, attrs: MeanAttrs, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """MEAN over ``attrs.axes`` of an int8 tensor (TFLite Micro's integer mean)."""
    axes = _resolve_axes(attrs.axes, x.ndim)
    count = math.prod(x.shape[a] for a in axes)
    total = x.astype(np.int64).sum(axis=axes, keepdims=attrs.keep_dims)
    if count == 0:
        return np.zeros(total.shape, dtype=np.int8)
    x_scale, x_zp = x_q.scale[0], x_q.zero_point[0]
    y_scale, y_zp = y_q.scale[0], y_q.zero_point[0]
    multiplier, shift = quantize_multiplier_scalar(
        float(np.float32(x_scale)) / float(np.float32(y_scale)))
    fold = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier = (multiplier << fold) // count
    shift -= fold
    shifted_sum = total - x_zp * count
    y = multiply_by_quantized_multiplier(shifted_sum, multiplier, shift) + y_zp
    return np.clip(y, -128, 127).astype(np.int8)
