"""TFLite's fixed-point integer arithmetic, vectorised over numpy int64 arrays.

Every int8 kernel of TensorFlow Lite (Micro) rescales its int32 accumulator with a real multiplier
that is stored as a Q0.31 significand and a power-of-two exponent (`quantize_multiplier`). The
multiplication itself is gemmlowp's "saturating rounding doubling high multiply" followed by a
rounding right shift: `multiply_by_quantized_multiplier`. TFLite builds without
``TFLITE_SINGLE_ROUNDING`` by default, so the reference kernels round twice (once in the high
multiply, once in the shift); that "double" variant is what the pip ``tflite-micro`` interpreter
runs and what this module computes by default. The single-rounding variant (CMSIS-NN style) is
available as ``rounding="single"`` for comparison.

Conventions:
- Values are int64 numpy arrays that hold int32 quantities; results are int64 too. Where C would
  overflow int32 (a left shift of an accumulator), the value is wrapped to int32 as two's-complement
  hardware does.
- Divisions by powers of two follow C: ``/`` truncates toward zero, ``>>`` is arithmetic.
- Real-valued parameters are computed exactly as TFLite does: scales are float32 values; where TFLite
  multiplies them in float32 the helpers here do so with ``np.float32``; where it uses double, float64.
- `Q` rounding: ``TfLiteRound`` is ``std::round``: half away from zero (`round_half_away`).

The gemmlowp fixed-point transcendental functions used by int8 SOFTMAX and LOGISTIC
(``exp_on_negative_values``, ``one_over_one_plus_x_for_x_in_0_1``, ``logistic``) live in
`mcuforge.arith.gemmlowp`.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT16_MIN = -(1 << 15)
INT16_MAX = (1 << 15) - 1

IntArray = np.ndarray


def as_int64(x) -> IntArray:
    """``x`` as an int64 array (no copy when it already is one)."""
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x) -> IntArray:
    """Two's-complement wrap of int64 values into the int32 range (what an int32 overflow does)."""
    x = as_int64(x)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def round_half_away(x):
    """``std::round``: round to nearest, halves away from zero (numpy's ``round`` is half-to-even).

    Keeps the dtype of ``x`` (float32 stays float32, as ``roundf`` would)."""
    x = np.asarray(x)
    return np.copysign(np.floor(np.abs(x) + x.dtype.type(0.5)), x)


def trunc_div(a, b) -> IntArray:
    """C integer division (truncates toward zero) of int64 arrays; ``b`` must be nonzero."""
    a = as_int64(a)
    b = as_int64(b)
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


# ---------------------------------------------------------------------------------------------
# Multipliers
# ---------------------------------------------------------------------------------------------

def quantize_multiplier(real_multiplier) -> tuple[IntArray, IntArray]:
    """TFLite ``QuantizeMultiplier``: real = multiplier * 2^(shift - 31) with multiplier in
    [2^30, 2^31), for a scalar or an array of doubles. Returns int64 arrays (multiplier, shift).

    Zero maps to (0, 0); multipliers below about 2^-31 (shift < -31) flush to (0, 0). Negative
    reals give negative multipliers, as in TFLite (some models carry negative filter scales)."""
    real = np.asarray(real_multiplier, dtype=np.float64)
    significand, shift = np.frexp(real)
    q_fixed = round_half_away(significand * float(1 << 31)).astype(np.int64)
    carry = q_fixed == (1 << 31)
    q_fixed = np.where(carry, q_fixed // 2, q_fixed)
    shift = np.where(carry, shift + 1, shift).astype(np.int64)
    tiny = shift < -31
    q_fixed = np.where(tiny | (real == 0), 0, q_fixed)
    shift = np.where(tiny | (real == 0), 0, shift)
    return q_fixed.astype(np.int64), shift.astype(np.int64)


def quantize_multiplier_scalar(real_multiplier: float) -> tuple[int, int]:
    """`quantize_multiplier` for one Python float; returns Python ints."""
    m, s = quantize_multiplier(real_multiplier)
    return int(m), int(s)


def quantize_multiplier_greater_than_one(real_multiplier: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplierGreaterThanOne``: like `quantize_multiplier`, requires > 1, so the
    returned left shift is >= 0."""
    if not real_multiplier > 1.0:
        raise ValueError(f"multiplier {real_multiplier} is not > 1")
    return quantize_multiplier_scalar(real_multiplier)


def quantize_multiplier_smaller_than_one_exp(real_multiplier: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplierSmallerThanOneExp``: requires 0 < real < 1; the returned exponent
    (a left shift) is <= 0."""
    if not 0.0 < real_multiplier < 1.0:
        raise ValueError(f"multiplier {real_multiplier} is not in (0, 1)")
    return quantize_multiplier_scalar(real_multiplier)


def downscale_int32_to_int16_multiplier(multiplier_int32: int) -> int:
    """TFLite ``DownScaleInt32ToInt16Multiplier``: the Q0.15 rounding of a Q0.31 multiplier."""
    rounding_bit = 1 << 15
    if multiplier_int32 >= INT32_MAX - rounding_bit:
        return INT16_MAX
    return (multiplier_int32 + rounding_bit) >> 16


# ---------------------------------------------------------------------------------------------
# int32 fixed-point primitives (gemmlowp)
# ---------------------------------------------------------------------------------------------

def saturating_rounding_doubling_high_mul(a, b) -> IntArray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values: a * b / 2^31 rounded to
    nearest with halves rounded up, saturating the one overflow case INT32_MIN * INT32_MIN.

    gemmlowp adds a nudge of 2^30 to a non-negative product and 1 - 2^30 to a negative one, then
    divides by 2^31 truncating toward zero; both cases equal ``(a * b + 2^30) >> 31`` (an
    arithmetic shift floors), and only INT32_MIN * INT32_MIN exceeds INT32_MAX."""
    product = as_int64(a) * as_int64(b)
    return np.minimum((product + (1 << 30)) >> 31, INT32_MAX)


def rounding_divide_by_pot(x, exponent) -> IntArray:
    """gemmlowp ``RoundingDivideByPOT``: x / 2^exponent rounded to nearest, halves away from zero.
    ``exponent`` (0..31) may be an array that broadcasts against ``x``.

    gemmlowp adds one to ``x >> exponent`` when the remainder exceeds half the divisor (half minus
    one for negative x); that is ``(x + 2^(exponent-1) - [x < 0]) >> exponent`` for exponent > 0."""
    x = as_int64(x)
    exponent = as_int64(exponent)
    half = np.left_shift(np.int64(1), exponent) >> 1
    negative = x < 0
    if not np.all(exponent > 0):
        negative = negative & (exponent > 0)
    return (x + half - negative) >> exponent


def saturating_rounding_multiply_by_pot(x, exponent: int) -> IntArray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` on int32 raw values: a saturating
    left shift for exponent > 0, `rounding_divide_by_pot` for exponent < 0."""
    x = as_int64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    shifted = wrap_int32(x << exponent)
    shifted = np.where(x > threshold, INT32_MAX, shifted)
    return np.where(x < -threshold, INT32_MIN, shifted)


def multiply_by_quantized_multiplier(x, multiplier, shift, rounding: str = "double") -> IntArray:
    """TFLite ``MultiplyByQuantizedMultiplier(int32 x, int32 multiplier, int shift)``.

    ``double`` (TFLite's default build, used by the reference int8 kernels):
    ``RoundingDivideByPOT(SRDHM(x * 2^left_shift, multiplier), right_shift)`` with
    left_shift = max(shift, 0), right_shift = max(-shift, 0).
    ``single`` (``TFLITE_SINGLE_ROUNDING``): ``(x * multiplier + 2^(30 - shift)) >> (31 - shift)``.
    ``multiplier`` and ``shift`` broadcast against ``x`` (per-channel rescaling)."""
    x = as_int64(x)
    multiplier = as_int64(multiplier)
    shift = as_int64(shift)
    if rounding == "double":
        left_shift = np.maximum(shift, 0)
        right_shift = np.maximum(-shift, 0)
        scaled = x
        if np.any(left_shift):
            scaled = wrap_int32(x * np.left_shift(np.int64(1), left_shift))
        return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier),
                                      right_shift)
    if rounding == "single":
        total_shift = 31 - shift
        rounding_term = np.left_shift(np.int64(1), total_shift - 1)
        result = (x * multiplier + rounding_term) >> total_shift
        return np.clip(result, INT32_MIN, INT32_MAX)
    raise ValueError(f"unknown rounding {rounding!r} (expected 'double' or 'single')")


def multiply_by_quantized_multiplier_smaller_than_one_exp(x, multiplier, left_shift) -> IntArray:
    """TFLite ``MultiplyByQuantizedMultiplierSmallerThanOneExp`` (``left_shift`` <= 0):
    ``RoundingDivideByPOT(SRDHM(x, multiplier), -left_shift)``."""
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier),
                                  -as_int64(left_shift))


def multiply_by_quantized_multiplier_greater_than_one(x, multiplier, left_shift) -> IntArray:
    """TFLite ``MultiplyByQuantizedMultiplierGreaterThanOne`` (``left_shift`` >= 0):
    ``SRDHM(x * 2^left_shift, multiplier)``."""
    x = as_int64(x)
    scaled = wrap_int32(x * np.left_shift(np.int64(1), as_int64(left_shift)))
    return saturating_rounding_doubling_high_mul(scaled, multiplier)


def multiply_by_quantized_multiplier_int64(x, multiplier, shift) -> IntArray:
    """TFLite ``MultiplyByQuantizedMultiplier(int64 x, int32 multiplier, int shift)``, used by the
    16x8 kernels with 48-bit accumulators: the multiplier is first reduced to Q0.15, then one
    rounding shift by 15 - shift. Requires |x| < 2^47 (so the product stays in int64)."""
    x = as_int64(x)
    multiplier = as_int64(multiplier)
    shift = as_int64(shift)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    total_shift = 15 - shift
    rounding_term = np.left_shift(np.int64(1), total_shift - 1)
    return (x * reduced + rounding_term) >> total_shift


# ---------------------------------------------------------------------------------------------
# int16 fixed-point primitives (HARD_SWISH)
# ---------------------------------------------------------------------------------------------

def saturating_rounding_doubling_high_mul_int16(a, b) -> IntArray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int16 values."""
    a = as_int64(a)
    b = as_int64(b)
    overflow = (a == b) & (a == INT16_MIN)
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    return np.where(overflow, INT16_MAX, trunc_div(nudged, 1 << 15))


def saturating_doubling_high_mul_int16(a, b) -> IntArray:
    """TFLite ``SaturatingDoublingHighMul`` (int16, no rounding: C division truncates)."""
    a = as_int64(a)
    b = as_int64(b)
    overflow = (a == b) & (a == INT16_MIN)
    return np.where(overflow, INT16_MAX, trunc_div(a * b, 1 << 15))


def saturating_left_shift_int16(x, amount: int) -> IntArray:
    """TFLite ``SaturatingLeftShift`` on int16 values: x * 2^amount clamped to int16."""
    return np.clip(as_int64(x) << amount, INT16_MIN, INT16_MAX)


# ---------------------------------------------------------------------------------------------
# Activation ranges and scales
# ---------------------------------------------------------------------------------------------

def quantize_real_to_int(value: float, scale: float, zero_point: int) -> int:
    """TFLite's ``Quantize`` helper of ``CalculateActivationRangeQuantized``:
    ``zero_point + (int32) TfLiteRound(value / scale)`` with the division in float32."""
    q = round_half_away(np.float32(value) / np.float32(scale))
    return int(zero_point) + int(q)


def calculate_activation_range_quantized(clamp: tuple[float, float], scale: float,
                                         zero_point: int, qmin: int = -128,
                                         qmax: int = 127) -> tuple[int, int]:
    """TFLite ``CalculateActivationRangeQuantized`` generalised to real clamp bounds.

    ``clamp`` = (low, high) in real units, (-inf, inf) for no activation, (0, inf) ReLU, (0, 6)
    ReLU6, (-1, 1) ReLU_N1_TO_1. Each finite bound is quantised with the output's scale and zero
    point and intersected with [qmin, qmax]."""
    low, high = clamp
    act_min = qmin if math.isinf(low) else max(qmin, quantize_real_to_int(low, scale, zero_point))
    act_max = qmax if math.isinf(high) else min(qmax, quantize_real_to_int(high, scale, zero_point))
    return act_min, act_max


def float32_scales(scales: Iterable[float]) -> np.ndarray:
    """Scales as TFLite stores them (float32), as a float32 array."""
    return np.asarray(tuple(scales), dtype=np.float32)


def conv_channel_multipliers(input_scale: float, filter_scales: Iterable[float],
                             output_scale: float, num_channels: int) -> tuple[IntArray, IntArray]:
    """Per-output-channel (multiplier, shift) of CONV_2D / DEPTHWISE_CONV_2D, as TFLite's
    ``PopulateConvolutionQuantizationParams``: double(in) * double(filter[c]) / double(out), with a
    per-tensor filter scale broadcast to every channel."""
    filter_scales = np.asarray(float32_scales(filter_scales), dtype=np.float64)
    if filter_scales.size == 1:
        filter_scales = np.full(num_channels, filter_scales[0])
    if filter_scales.size != num_channels:
        raise ValueError(f"{filter_scales.size} filter scales for {num_channels} channels")
    effective = (float(np.float32(input_scale)) * filter_scales) / float(np.float32(output_scale))
    return quantize_multiplier(effective)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """TFLite ``CalculateInputRadius``: the largest input difference whose rescaled value still
    fits the fixed-point input format (used by SOFTMAX and LOGISTIC)."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * float(1 << (total_signed_bits - input_integer_bits))
                          / float(1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def preprocess_softmax_scaling(beta: float, input_scale: float,
                               input_integer_bits: int) -> tuple[int, int]:
    """TFLite ``PreprocessSoftmaxScaling`` (double-rounding build): the multiplier and left shift
    that map an input difference to Q(input_integer_bits).(31 - input_integer_bits)."""
    max_real_multiplier = float((1 << 31) - 1)
    real = min(float(beta) * float(np.float32(input_scale)) * float(1 << (31 - input_integer_bits)),
               max_real_multiplier)
    return quantize_multiplier_greater_than_one(real)
