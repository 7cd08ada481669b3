"""gemmlowp's fixed-point transcendental functions, as TFLite's int8 SOFTMAX and LOGISTIC use them.

A gemmlowp ``FixedPoint<int32, IntegerBits>`` is an int32 "raw" value with ``31 - IntegerBits``
fractional bits. Here a fixed-point value is just its raw int64 array plus the integer-bit count the
caller tracks. The product of Qa and Qb values is a Q(a+b) value computed with
`saturating_rounding_doubling_high_mul`; ``Rescale`` changes the integer bits with a saturating
rounding power-of-two multiply. The polynomial and Newton-Raphson constants are gemmlowp's.

- `exp_on_negative_values(a, integer_bits)`: exp(a) for a <= 0, result in Q0.31. The input is split
  into a remainder in [-1/4, 0), where a 4th-order Taylor series around -1/8 is exact enough, and a
  multiple of 1/4 whose exp is a product of constants exp(-2^k) selected bit by bit.
- `one_over_one_plus_x_for_x_in_0_1(a)`: 1 / (1 + a) for a in [0, 1), three Newton-Raphson steps.
- `logistic(a, integer_bits)`: 1 / (1 + exp(-a)).
- `get_reciprocal(x, x_integer_digits)`: TFLite's ``GetReciprocal``: normalises a positive
  fixed-point sum to [1, 2) and returns its reciprocal and the number of bits over one.

Every function works elementwise on arrays (the data-dependent branches of gemmlowp are masks).
"""

from __future__ import annotations

import numpy as np

from .fixedpoint import (INT32_MAX, as_int64, saturating_rounding_doubling_high_mul,
                         saturating_rounding_multiply_by_pot, wrap_int32)

# Raw values of gemmlowp's checked constants.
_EXP_MINUS_ONE_EIGHTH_Q0 = 1895147668       # exp(-1/8)
_ONE_THIRD_Q0 = 715827883                    # 1/3
_FORTY_EIGHT_OVER_SEVENTEEN_Q2 = 1515870810  # 48/17
_MINUS_THIRTY_TWO_OVER_SEVENTEEN_Q2 = -1010580540  # -32/17
# exp(-2^k) for k = -2 .. 4 in Q0.31, applied when bit (fractional_bits + k) of the remainder is set.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def rescale(raw, from_integer_bits: int, to_integer_bits: int) -> np.ndarray:
    """gemmlowp ``Rescale<to>``: the same real value with another number of integer bits."""
    return saturating_rounding_multiply_by_pot(raw, from_integer_bits - to_integer_bits)


def _mul(a, b) -> np.ndarray:
    """Fixed-point product (the integer bits add up)."""
    return saturating_rounding_doubling_high_mul(a, b)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8."""
    a = as_int64(a)
    x = wrap_int32(a + (1 << 28))  # a + 1/8
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(
        wrap_int32(_mul(wrap_int32(x4_over_4 + x3), _ONE_THIRD_Q0) + x2), -1)
    return wrap_int32(_EXP_MINUS_ONE_EIGHTH_Q0 + _mul(_EXP_MINUS_ONE_EIGHTH_Q0, wrap_int32(x + poly)))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp ``exp_on_negative_values``: exp(a) for a <= 0 given in Q(integer_bits); Q0.31 out."""
    a = as_int64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = wrap_int32((a & mask) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, _mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # -32.0
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp ``RoundingHalfSum`` for int32: (a + b) / 2 rounded half away from zero."""
    total = as_int64(a) + as_int64(b)
    sign = np.where(total >= 0, 1, -1)
    summed = total + sign
    return np.where(summed >= 0, summed // 2, -((-summed) // 2))


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1``: 1 / (1 + a), Q0.31 in and out."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)  # Q0
    one_q2 = 1 << 29
    x = wrap_int32(_FORTY_EIGHT_OVER_SEVENTEEN_Q2
                   + _mul(half_denominator, _MINUS_THIRTY_TWO_OVER_SEVENTEEN_Q2))  # Q2
    for _ in range(3):
        half_denominator_times_x = _mul(half_denominator, x)  # Q2
        one_minus = wrap_int32(one_q2 - half_denominator_times_x)  # Q2
        x = wrap_int32(x + rescale(_mul(x, one_minus), 4, 2))
    # ExactMulByPot<-1> turns Q2 into Q1 without touching the raw value; then Rescale to Q0.
    return rescale(x, 1, 0)


def logistic(a, integer_bits: int) -> np.ndarray:
    """gemmlowp ``logistic``: 1 / (1 + exp(-a)) for a in Q(integer_bits); Q0.31 out."""
    a = as_int64(a)
    positive = a > 0
    abs_input = np.where(positive, a, wrap_int32(-a))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap_int32(-abs_input), integer_bits))
    result_if_negative = wrap_int32(INT32_MAX - result_if_positive)
    result = np.where(positive, result_if_positive, result_if_negative)
    return np.where(a == 0, 1 << 30, result)


def count_leading_zeros_u32(x) -> np.ndarray:
    """Leading zero bits of uint32 values (32 for 0)."""
    x = as_int64(x) & 0xFFFFFFFF
    bits = np.zeros_like(x)
    remaining = x.copy()
    while np.any(remaining):
        nonzero = remaining != 0
        bits = bits + nonzero
        remaining = remaining >> 1
    return 32 - bits


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite ``GetReciprocal``: for positive Q(x_integer_digits) values ``x``, the Q0.31 value
    1 / (x / 2^num_bits_over_unit) and ``num_bits_over_unit``."""
    x = as_int64(x)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = ((x << headroom_plus_one) - (1 << 31)) & 0xFFFFFFFF
    shifted_sum_minus_one = wrap_int32(shifted)
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


__all__ = [
    "count_leading_zeros_u32", "exp_on_interval_between_negative_one_quarter_and_0_excl",
    "exp_on_negative_values", "get_reciprocal", "logistic", "one_over_one_plus_x_for_x_in_0_1",
    "rescale",
]
