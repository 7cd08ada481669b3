"""Int8 softmax and the data-movement kernels, bit-exact with TFLite Micro's reference kernels.

SOFTMAX, int8 in and int8 out (TFLite Micro ``SoftmaxPrepare`` + ``reference_ops::Softmax``; the
int16 lookup tables are only built for int16 input): per row, the differences x - max(x) are
rescaled by beta * s_in into Q5.26 (``PreprocessSoftmaxScaling``), exponentiated with gemmlowp's
``exp_on_negative_values``, summed in Q12.19, and each exp is multiplied by the reciprocal of the
sum (``GetReciprocal``) and shifted to the output scale 1/256 with zero point -128. Differences below
``diff_min`` (beyond the Q5.26 range) contribute nothing and give -128.

PAD fills with the output zero point (real 0). RESHAPE and TRANSPOSE move bytes. CONCATENATION
copies when every input shares the output's quantisation (all TFLite int8 models: TFLite Micro copies
raw bytes in every case); inputs with other parameters are requantised here with
MultiplyByQuantizedMultiplier(s_in / s_out), as QUANTIZE int8 -> int8 does.
RESIZE_NEAREST_NEIGHBOR picks source pixels with TFLite's float32 ``GetNearestNeighbor``.
"""

from __future__ import annotations

import numpy as np

from ..ir import ConcatAttrs, PadAttrs, QuantParams, ResizeAttrs, SoftmaxAttrs, TransposeAttrs
from ..arith import gemmlowp
from ..arith.fixedpoint import (as_int64, calculate_activation_range_quantized,
                                calculate_input_radius,
                                multiply_by_quantized_multiplier_greater_than_one,
                                preprocess_softmax_scaling, round_half_away,
                                rounding_divide_by_pot, saturating_rounding_doubling_high_mul)
from .kernels_elementwise import quantize

_SCALED_DIFF_INTEGER_BITS = 5
_ACCUMULATION_INTEGER_BITS = 12


def softmax_int8(x: np.ndarray, attrs: SoftmaxAttrs, x_q: QuantParams,
                 y_q: QuantParams) -> np.ndarray:
    """SOFTMAX over the last axis, int8 -> int8 (output quantisation must be 1/256, -128)."""
    if y_q.zero_point[0] != -128 or np.float32(y_q.scale[0]) != np.float32(1.0 / 256):
        raise ValueError("int8 SOFTMAX needs output scale 1/256 and zero point -128 "
                         f"(got {y_q.scale[0]}, {y_q.zero_point[0]})")
    multiplier, left_shift = preprocess_softmax_scaling(attrs.beta, x_q.scale[0],
                                                        _SCALED_DIFF_INTEGER_BITS)
    diff_min = -calculate_input_radius(_SCALED_DIFF_INTEGER_BITS, left_shift)
    values = as_int64(x)
    diff = values - values.max(axis=-1, keepdims=True)
    in_range = diff >= diff_min
    rescaled = multiply_by_quantized_multiplier_greater_than_one(diff, multiplier, left_shift)
    exp_q0 = gemmlowp.exp_on_negative_values(rescaled, _SCALED_DIFF_INTEGER_BITS)
    summands = gemmlowp.rescale(exp_q0, 0, _ACCUMULATION_INTEGER_BITS)
    sum_of_exps = np.where(in_range, summands, 0).sum(axis=-1, keepdims=True)
    shifted_scale, num_bits_over_unit = gemmlowp.get_reciprocal(sum_of_exps,
                                                                _ACCUMULATION_INTEGER_BITS)
    unsaturated = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, exp_q0),
                                         num_bits_over_unit + 31 - 8)
    y = np.clip(unsaturated - 128, -128, 127)
    return np.where(in_range, y, -128).astype(np.int8)


def pad_int8(x: np.ndarray, attrs: PadAttrs, x_q: QuantParams | None,
             y_q: QuantParams | None) -> np.ndarray:
    """PAD with the output zero point (0 for unquantised tensors)."""
    value = y_q.zero_point[0] if y_q is not None else 0
    if any(lo < 0 or hi < 0 for lo, hi in attrs.paddings):
        raise ValueError(f"negative paddings {attrs.paddings}")
    return np.pad(x, attrs.paddings, mode="constant", constant_values=value)


def transpose(x: np.ndarray, attrs: TransposeAttrs) -> np.ndarray:
    """TRANSPOSE by ``attrs.perm``."""
    return np.ascontiguousarray(np.transpose(x, attrs.perm))


def concatenation_int8(xs: list[np.ndarray], attrs: ConcatAttrs, x_qs: list[QuantParams | None],
                       y_q: QuantParams | None) -> np.ndarray:
    """CONCATENATION along ``attrs.axis``, requantising inputs whose quantisation differs."""
    parts = []
    for x, x_q in zip(xs, x_qs):
        same = (x_q is None or y_q is None
                or (x_q.zero_point[0] == y_q.zero_point[0]
                    and np.float32(x_q.scale[0]) == np.float32(y_q.scale[0])))
        parts.append(x if same else quantize(x, x_q, y_q, x.dtype))
    y = np.concatenate(parts, axis=attrs.axis)
    if y_q is not None and attrs.clamp != (-np.inf, np.inf):
        act_min, act_max = calculate_activation_range_quantized(attrs.clamp, y_q.scale[0],
                                                                y_q.zero_point[0])
        y = np.clip(y, act_min, act_max).astype(y.dtype)
    return y


def _nearest_indices(input_size: int, output_size: int, align_corners: bool,
                     half_pixel_centers: bool) -> np.ndarray:
    """TFLite ``GetNearestNeighbor`` for every output coordinate (float32 arithmetic)."""
    if align_corners and output_size > 1:
        scale = np.float32(input_size - 1) / np.float32(output_size - 1)
    else:
        scale = np.float32(input_size) / np.float32(output_size)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    coords = (np.arange(output_size, dtype=np.float32) + offset) * scale
    picked = round_half_away(coords) if align_corners else np.floor(coords)
    index = np.minimum(picked.astype(np.int64), input_size - 1)
    if half_pixel_centers:
        index = np.maximum(index, 0)
    return index


def resize_nearest_neighbor(x: np.ndarray, attrs: ResizeAttrs) -> np.ndarray:
    """RESIZE_NEAREST_NEIGHBOR of x [N, H, W, C] to ``attrs.size``."""
    _, in_h, in_w, _ = x.shape
    out_h, out_w = attrs.size
    rows = _nearest_indices(in_h, out_h, attrs.align_corners, attrs.half_pixel_centers)
    cols = _nearest_indices(in_w, out_w, attrs.align_corners, attrs.half_pixel_centers)
    return x[:, rows][:, :, cols]
