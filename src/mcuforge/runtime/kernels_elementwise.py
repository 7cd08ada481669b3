"""Int8 elementwise kernels, bit-exact with TFLite Micro's reference kernels.

- ADD (``reference_integer_ops::Add`` / ``BroadcastAdd6DSlow``): both operands are shifted left by 20
  bits, each rescaled to twice the larger input scale, summed, and rescaled to the output:
  in_mult_i = s_i / (2 max(s1, s2)), out_mult = 2 max(s1, s2) / (2^20 s_out), all via
  QuantizeMultiplier. Numpy broadcasting.
- MUL (``reference_integer_ops::Mul``): (x1 - z1) * (x2 - z2) rescaled by s1 s2 / s_out.
- RELU / RELU6: TFLite Micro's ReLU requantises (x - z_in) * s_in / s_out and clamps at real 0;
  ReLU6 clamps the raw input to [z_in, quantize(6)] without rescaling.
- HARD_SWISH (``reference_ops::HardSwish<int8>``): int16 fixed point; the input is scaled up by
  2^7, a "relu-ish" factor in [0, 1] is derived from x on a scale where 3.0 is 2^15, and multiplied
  with x on the output scale (all multipliers from float32 arithmetic, reduced to Q0.15).
- LOGISTIC (``reference_integer_ops::Logistic``): the input is rescaled to Q4.27 and fed to
  gemmlowp's fixed-point logistic; inputs beyond the representable radius saturate.
- QUANTIZE: float32 -> int: round(x / scale) (float32 division, half away from zero) + zero point;
  int -> int: ``Requantize`` with MultiplyByQuantizedMultiplier(s_in / s_out).
- DEQUANTIZE: float32(double(scale) * (q - zero point)).
"""

from __future__ import annotations

import numpy as np

from ..ir import QuantParams
from ..arith import gemmlowp
from ..arith.fixedpoint import (INT16_MIN, as_int64, calculate_activation_range_quantized,
                                calculate_input_radius, downscale_int32_to_int16_multiplier,
                                multiply_by_quantized_multiplier, quantize_multiplier_scalar,
                                round_half_away, rounding_divide_by_pot,
                                saturating_doubling_high_mul_int16,
                                saturating_left_shift_int16,
                                saturating_rounding_doubling_high_mul_int16)

_ADD_LEFT_SHIFT = 20


def _scale(q: QuantParams) -> np.float32:
    return np.float32(q.scale[0])


def _int_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def add_int8(x1: np.ndarray, x2: np.ndarray, clamp: tuple[float, float], x1_q: QuantParams,
             x2_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """ADD of two int8 tensors with numpy broadcasting and a fused clamp (real units)."""
    twice_max_input_scale = 2.0 * float(max(_scale(x1_q), _scale(x2_q)))
    m1, s1 = quantize_multiplier_scalar(float(_scale(x1_q)) / twice_max_input_scale)
    m2, s2 = quantize_multiplier_scalar(float(_scale(x2_q)) / twice_max_input_scale)
    mo, so = quantize_multiplier_scalar(
        twice_max_input_scale / ((1 << _ADD_LEFT_SHIFT) * float(_scale(y_q))))
    shifted1 = (as_int64(x1) - x1_q.zero_point[0]) << _ADD_LEFT_SHIFT
    shifted2 = (as_int64(x2) - x2_q.zero_point[0]) << _ADD_LEFT_SHIFT
    raw_sum = (multiply_by_quantized_multiplier(shifted1, m1, s1)
               + multiply_by_quantized_multiplier(shifted2, m2, s2))
    y = multiply_by_quantized_multiplier(raw_sum, mo, so) + y_q.zero_point[0]
    act_min, act_max = calculate_activation_range_quantized(clamp, y_q.scale[0], y_q.zero_point[0])
    return np.clip(y, act_min, act_max).astype(np.int8)


def mul_int8(x1: np.ndarray, x2: np.ndarray, clamp: tuple[float, float], x1_q: QuantParams,
             x2_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """MUL of two int8 tensors with numpy broadcasting and a fused clamp (real units)."""
    real = float(_scale(x1_q)) * float(_scale(x2_q)) / float(_scale(y_q))
    multiplier, shift = quantize_multiplier_scalar(real)
    product = (as_int64(x1) - x1_q.zero_point[0]) * (as_int64(x2) - x2_q.zero_point[0])
    y = multiply_by_quantized_multiplier(product, multiplier, shift) + y_q.zero_point[0]
    act_min, act_max = calculate_activation_range_quantized(clamp, y_q.scale[0], y_q.zero_point[0])
    return np.clip(y, act_min, act_max).astype(np.int8)


def relu_int8(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """RELU: requantise to the output scale, clamp at real 0 (TFLite Micro ``ReluQuantized``)."""
    multiplier, shift = quantize_multiplier_scalar(float(_scale(x_q)) / float(_scale(y_q)))
    act_min, act_max = calculate_activation_range_quantized((0.0, np.inf), y_q.scale[0],
                                                            y_q.zero_point[0])
    y = multiply_by_quantized_multiplier(as_int64(x) - x_q.zero_point[0], multiplier, shift)
    return np.clip(y + y_q.zero_point[0], act_min, act_max).astype(np.int8)


def relu6_int8(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """RELU6: clamp the raw input to [zero point, quantised 6.0] (no rescaling, as TFLite Micro)."""
    six = round_half_away(np.float32(6.0) / _scale(x_q)) + np.float32(x_q.zero_point[0])
    six = int(np.clip(six, -128, 127))
    return np.clip(as_int64(x), x_q.zero_point[0], six).astype(np.int8)


def hard_swish_int8(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """HARD_SWISH: x * relu6(x + 3) / 6 in TFLite's int16 fixed-point arithmetic."""
    hires_input_scale = np.float32(1.0 / 128.0) * _scale(x_q)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_m32, out_exp = quantize_multiplier_scalar(float(hires_input_scale / _scale(y_q)))
    out_m16 = downscale_int32_to_int16_multiplier(out_m32)
    if out_exp > 0:
        raise ValueError("HARD_SWISH: output scale too small for the input scale (exponent > 0)")
    rel_m32, rel_exp = quantize_multiplier_scalar(float(hires_input_scale / reluish_scale))
    rel_m16 = downscale_int32_to_int16_multiplier(rel_m32)

    input_value = as_int64(x) - x_q.zero_point[0]
    on_hires_scale = input_value * (1 << 7)
    on_preshift_output_scale = saturating_rounding_doubling_high_mul_int16(on_hires_scale, out_m16)
    reluish = on_hires_scale
    if rel_exp > 0:
        reluish = saturating_left_shift_int16(reluish, rel_exp - 1)
    reluish = saturating_rounding_doubling_high_mul_int16(reluish, rel_m16)
    if rel_exp > 0:
        reluish = saturating_left_shift_int16(reluish, 1)
    if rel_exp < 0:
        reluish = rounding_divide_by_pot(reluish, -rel_exp)
    reluish = (reluish + (1 << 15)) >> 1
    preshift_output = saturating_doubling_high_mul_int16(reluish, on_preshift_output_scale)
    y = rounding_divide_by_pot(preshift_output, -out_exp) + y_q.zero_point[0]
    # The C code adds in int16 before clamping to int8.
    y = ((y - INT16_MIN) & 0xFFFF) + INT16_MIN
    return np.clip(y, -128, 127).astype(np.int8)


def logistic_int8(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """LOGISTIC with int8 input and output (output scale 1/256, zero point -128)."""
    input_integer_bits = 4
    real = float(_scale(x_q)) * float(1 << (31 - input_integer_bits))
    significand, left_shift = np.frexp(real)
    multiplier = int(round_half_away(np.float64(significand) * float(1 << 31)))
    radius = calculate_input_radius(input_integer_bits, int(left_shift), 31)
    centred = as_int64(x) - x_q.zero_point[0]
    in_q4 = multiply_by_quantized_multiplier(centred, multiplier, int(left_shift))
    out_q0 = gemmlowp.logistic(in_q4, input_integer_bits)
    y = np.clip(rounding_divide_by_pot(out_q0, 31 - 8) - 128, -128, 127)
    y = np.where(centred <= -radius, -128, y)
    y = np.where(centred >= radius, 127, y)
    return y.astype(np.int8)


def quantize(x: np.ndarray, x_q: QuantParams | None, y_q: QuantParams,
             out_dtype: np.dtype = np.dtype(np.int8)) -> np.ndarray:
    """QUANTIZE: float32 -> int (affine quantisation) or int -> int (requantisation)."""
    qmin, qmax = _int_range(out_dtype)
    y_zp = y_q.zero_point[0]
    if x.dtype == np.float32 or x_q is None:
        scaled = round_half_away(x.astype(np.float32) / _scale(y_q))
        scaled = np.clip(scaled, -2.0 ** 31, 2.0 ** 31 - 128)
        y = scaled.astype(np.int64) + y_zp
        return np.clip(y, qmin, qmax).astype(out_dtype)
    multiplier, shift = quantize_multiplier_scalar(float(_scale(x_q)) / float(_scale(y_q)))
    y = multiply_by_quantized_multiplier(as_int64(x) - x_q.zero_point[0], multiplier, shift) + y_zp
    return np.clip(y, qmin, qmax).astype(out_dtype)


def dequantize(x: np.ndarray, x_q: QuantParams) -> np.ndarray:
    """DEQUANTIZE: float32(double(scale) * (q - zero_point))."""
    scale = float(_scale(x_q))
    return (scale * (as_int64(x) - x_q.zero_point[0]).astype(np.float64)).astype(np.float32)
