"""TFLite fixed-point arithmetic (mcuforge.arith.fixedpoint, mcuforge.arith.gemmlowp).

The vectorised int64 numpy functions are checked against scalar transcriptions of the C semantics in
Python's unbounded integers (C division truncates toward zero; the nudge and mask formulas are
gemmlowp's), on edge cases and on hypothesis-generated values, and the transcendental helpers
against float math within their documented precision.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcuforge.arith import gemmlowp
from mcuforge.arith.fixedpoint import (INT32_MAX, INT32_MIN, calculate_activation_range_quantized,
                                       calculate_input_radius, conv_channel_multipliers,
                                       downscale_int32_to_int16_multiplier,
                                       multiply_by_quantized_multiplier,
                                       multiply_by_quantized_multiplier_int64,
                                       preprocess_softmax_scaling, quantize_multiplier,
                                       quantize_multiplier_scalar, round_half_away,
                                       rounding_divide_by_pot,
                                       saturating_rounding_doubling_high_mul,
                                       saturating_rounding_multiply_by_pot, trunc_div, wrap_int32)

int32s = st.integers(INT32_MIN, INT32_MAX)


def c_div(a: int, b: int) -> int:
    """C integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def srdhm_scalar(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return c_div(ab + nudge, 1 << 31)


def rdbpot_scalar(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm_scalar(x: int, multiplier: int, shift: int) -> int:
    left = max(shift, 0)
    right = max(-shift, 0)
    return rdbpot_scalar(srdhm_scalar(x * (1 << left), multiplier), right)


@pytest.mark.parametrize("a, b, expected", [
    (INT32_MIN, INT32_MIN, INT32_MAX),          # the one saturating case
    (1 << 30, 1 << 30, 1 << 29),                 # 0.5 * 0.5 = 0.25
    (INT32_MAX, INT32_MAX, INT32_MAX - 1),
    (-(1 << 30), 1 << 30, -(1 << 29)),
    (3, 1 << 30, 2),                             # 1.5 rounds up
    (-3, 1 << 30, -1),                           # -1.5 rounds up too (gemmlowp's nudge)
    (1, 1 << 30, 1),
    (-1, 1 << 30, 0),
])
def test_srdhm_known_values(a, b, expected):
    assert int(saturating_rounding_doubling_high_mul(a, b)) == expected


@pytest.mark.parametrize("x, exponent, expected", [
    (5, 1, 3), (-5, 1, -3), (4, 1, 2), (-4, 1, -2), (6, 2, 2), (-6, 2, -2), (7, 0, 7),
    (-1, 31, 0), (INT32_MIN, 31, -1), (INT32_MAX, 31, 1),
])
def test_rounding_divide_by_pot_known_values(x, exponent, expected):
    assert int(rounding_divide_by_pot(x, exponent)) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(int32s, int32s), min_size=1, max_size=50))
def test_srdhm_matches_scalar(pairs):
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    got = saturating_rounding_doubling_high_mul(a, b)
    assert got.tolist() == [srdhm_scalar(x, y) for x, y in pairs]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(int32s, st.integers(0, 31)), min_size=1, max_size=50))
def test_rounding_divide_by_pot_matches_scalar(pairs):
    x = np.array([p[0] for p in pairs])
    e = np.array([p[1] for p in pairs])
    assert rounding_divide_by_pot(x, e).tolist() == [rdbpot_scalar(v, k) for v, k in pairs]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(1 << 22), 1 << 22), min_size=1, max_size=40),
       st.floats(1e-6, 4.0))
def test_mbqm_matches_scalar_and_real_product(xs, real):
    multiplier, shift = quantize_multiplier_scalar(real)
    got = multiply_by_quantized_multiplier(np.array(xs), multiplier, shift)
    assert got.tolist() == [mbqm_scalar(x, multiplier, shift) for x in xs]
    # Double rounding stays within one unit of the exact product.
    exact = np.array(xs, dtype=np.float64) * (multiplier * 2.0 ** (shift - 31))
    assert np.all(np.abs(got - exact) <= 1.0)


def test_mbqm_per_channel_broadcast():
    acc = np.arange(-12, 12).reshape(4, 6) * 1000
    real = np.array([0.01, 0.5, 1.5, 3e-5, 0.25, 0.125])
    multipliers, shifts = quantize_multiplier(real)
    got = multiply_by_quantized_multiplier(acc, multipliers, shifts)
    for row in range(4):
        for col in range(6):
            assert got[row, col] == mbqm_scalar(int(acc[row, col]), int(multipliers[col]),
                                                int(shifts[col]))


@pytest.mark.parametrize("real", [1.0, 0.5, 0.75, 1e-3, 0.0039215689, 3.9, 1e-12, 0.0, -0.25])
def test_quantize_multiplier(real):
    multiplier, shift = quantize_multiplier_scalar(real)
    if real == 0.0 or abs(real) < 2.0 ** -32:
        assert (multiplier, shift) == (0, 0)
        return
    assert (1 << 30) <= abs(multiplier) < (1 << 31)
    assert math.isclose(multiplier * 2.0 ** (shift - 31), real, rel_tol=2.0 ** -30)


def test_quantize_multiplier_carry_into_shift():
    # A significand that rounds up to 2^31 is halved and the shift incremented.
    just_below_one = 1.0 - 2.0 ** -40
    assert quantize_multiplier_scalar(just_below_one) == (1 << 30, 1)


def test_single_rounding_variant_differs_only_by_rounding():
    xs = np.arange(-100000, 100000, 7)
    multiplier, shift = quantize_multiplier_scalar(0.0123)
    double = multiply_by_quantized_multiplier(xs, multiplier, shift, rounding="double")
    single = multiply_by_quantized_multiplier(xs, multiplier, shift, rounding="single")
    assert np.max(np.abs(double - single)) <= 1
    assert np.any(double != single)
    with pytest.raises(ValueError):
        multiply_by_quantized_multiplier(xs, multiplier, shift, rounding="banker")


def test_int64_variant_close_to_exact():
    xs = np.array([-(1 << 40), -12345678901, -1, 0, 1, 98765432109, (1 << 40)])
    multiplier, shift = quantize_multiplier_scalar(3.1e-4)
    got = multiply_by_quantized_multiplier_int64(xs, multiplier, shift)
    exact = xs.astype(np.float64) * 3.1e-4
    assert np.all(np.abs(got - exact) <= np.abs(exact) * 2.0 ** -14 + 1)


def test_helpers_follow_c_semantics():
    assert trunc_div(np.array([-7, 7, -7, 7]), np.array([2, 2, -2, -2])).tolist() == [-3, 3, 3, -3]
    assert round_half_away(np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])).tolist() == \
        [-3, -2, -1, 1, 2, 3]
    assert wrap_int32(np.array([1 << 31, -(1 << 31) - 1])).tolist() == [INT32_MIN, INT32_MAX]
    assert saturating_rounding_multiply_by_pot(np.array([1 << 29, -(1 << 29), 3]), 2).tolist() == \
        [INT32_MAX, INT32_MIN, 12]
    assert downscale_int32_to_int16_multiplier(1 << 30) == 1 << 14
    assert downscale_int32_to_int16_multiplier(INT32_MAX) == 32767


@pytest.mark.parametrize("clamp, scale, zero_point, expected", [
    ((-math.inf, math.inf), 0.1, 3, (-128, 127)),
    ((0.0, math.inf), 0.1, -128, (-128, 127)),
    ((0.0, math.inf), 0.1, -20, (-20, 127)),
    ((0.0, 6.0), 0.05, -128, (-128, -8)),       # 6 / 0.05 = 120 -> -8
    ((0.0, 6.0), 0.01, -128, (-128, 127)),      # 600 steps: the int8 range wins
    ((-1.0, 1.0), 0.1, 0, (-10, 10)),
    ((0.0, 6.0), 0.08, 0, (0, 75)),             # 75 exactly
])
def test_activation_range(clamp, scale, zero_point, expected):
    assert calculate_activation_range_quantized(clamp, scale, zero_point) == expected


def test_conv_channel_multipliers_broadcast_per_tensor_scale():
    multipliers, shifts = conv_channel_multipliers(0.02, [0.003], 0.05, 4)
    assert multipliers.shape == (4,) and len(set(multipliers.tolist())) == 1
    with pytest.raises(ValueError):
        conv_channel_multipliers(0.02, [0.1, 0.2], 0.05, 3)


def test_softmax_scaling_and_radius():
    multiplier, left_shift = preprocess_softmax_scaling(1.0, 0.1, 5)
    assert left_shift >= 0
    assert math.isclose(multiplier * 2.0 ** (left_shift - 31), 0.1 * 2 ** 26, rel_tol=1e-7)
    radius = calculate_input_radius(5, left_shift)
    # The largest difference whose rescaled value still fits Q5.26.
    assert radius * 0.1 <= 31.0 + 1e-9


def test_exp_on_negative_values_accuracy():
    reals = np.linspace(-31.9, 0.0, 4001)
    raw = np.round(reals * 2 ** 26).astype(np.int64)  # Q5.26
    got = gemmlowp.exp_on_negative_values(raw, 5) / 2.0 ** 31
    assert np.max(np.abs(got - np.exp(raw / 2.0 ** 26))) < 2e-8 * 50
    assert int(gemmlowp.exp_on_negative_values(np.int64(0), 5)) == INT32_MAX


def test_one_over_one_plus_x_accuracy():
    xs = np.linspace(0, 1 - 2 ** -20, 2001)
    raw = np.round(xs * 2 ** 31).astype(np.int64)
    got = gemmlowp.one_over_one_plus_x_for_x_in_0_1(raw) / 2.0 ** 31
    assert np.max(np.abs(got - 1 / (1 + raw / 2.0 ** 31))) < 1e-8


def test_logistic_accuracy_and_symmetry():
    reals = np.linspace(-15.9, 15.9, 3001)
    raw = np.round(reals * 2 ** 27).astype(np.int64)  # Q4.27
    got = gemmlowp.logistic(raw, 4) / 2.0 ** 31
    assert np.max(np.abs(got - 1 / (1 + np.exp(-raw / 2.0 ** 27)))) < 1e-7
    assert int(gemmlowp.logistic(np.int64(0), 4)) == 1 << 30


def test_get_reciprocal():
    for real in (1.0, 1.25, 3.7, 100.5, 2047.0):
        raw = np.int64(round(real * 2 ** 19))  # Q12.19
        reciprocal, bits_over_unit = gemmlowp.get_reciprocal(raw, 12)
        value = int(reciprocal) / 2.0 ** 31 / 2.0 ** int(bits_over_unit)
        assert math.isclose(value, 1 / real, rel_tol=1e-6)
    assert gemmlowp.count_leading_zeros_u32(np.array([0, 1, 1 << 31, 255])).tolist() == \
        [32, 31, 0, 24]
