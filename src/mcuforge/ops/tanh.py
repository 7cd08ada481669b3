"""TANH on int8 or int16 (``reference_integer_ops::Tanh``), bit-exact with TFLite Micro.

- Prepare (`prepare_tanh`, TFLite Micro's ``CalculateArithmeticOpData``): the input is rescaled to
  Q4.27 by ``frexp(s_in * 2^27)`` (a Q0.31 multiplier and a left shift); inputs at or beyond the
  radius ``CalculateInputRadius(4, left_shift, 31)`` saturate to -128 / 127.
- Kernel: gemmlowp's fixed-point ``tanh`` on the Q4.27 value (`gemmlowp_tanh`: the negated absolute
  value doubled, its exp, and ``(1 - e) / (1 + e)`` by three Newton-Raphson steps), Q0.31 out,
  ``RoundingDivideByPOT(.., 24)`` to the output grid, clamped.
- The output must be quantised with scale 1/128 and zero point 0 (what the kernel writes, and what
  TFLite's converter produces); others are refused at import.
- int16 (16x8; zero points 0, output scale 2^-15): TFLite's interpolated sigmoid table read as
  tanh(x) = 2 sigmoid(2x) - 1 after the input scaling of `lut16.prepare_sigmoid_int16`; C:
  ``sigmoid_s16``.
- Shape unchanged; spatially pointwise; ELEMENTWISE overlap. C (int8): the 256-entry table of this
  kernel (`lut`). No .tflite options table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith import gemmlowp
from ..arith.fixedpoint import (INT32_MAX, as_int64, calculate_input_radius,
                                multiply_by_quantized_multiplier, round_half_away,
                                rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
                                wrap_int32)
from ..errors import InvalidValueError
from ..ir.checks import check_multiplier, quantised_scales
from ..ir.ops import OpKind
from ..ir.tensor import QuantParams
from .lut16 import SigmoidTableOp

INPUT_INTEGER_BITS = 4  # the input is rescaled to Q4.27
OUTPUT_SCALE_BITS = 7   # output scale 2^-7
# gemmlowp's Newton-Raphson constants for 1 / x, x in [1/2, 1], in Q2.29: 48/17 and -32/17.
_FORTY_EIGHT_OVER_SEVENTEEN_Q2 = 1515870810
_MINUS_THIRTY_TWO_OVER_SEVENTEEN_Q2 = -1010580540


@dataclass(frozen=True)
class TanhParams:
    """The prepared quantisation of an int8 TANH (TFLite Micro's ``OpData`` of tanh.cc)."""

    input_zero_point: int
    input_multiplier: int
    input_left_shift: int
    input_range_radius: int


def prepare_tanh(x_q: QuantParams, y_q: QuantParams) -> TanhParams:
    """`TanhParams`; ValueError unless the output is quantised with scale 1/128, zero point 0."""
    if float(np.float32(y_q.scale[0])) != 1 / 128 or int(y_q.zero_point[0]) != 0:
        raise ValueError(f"int8 TANH needs scale 1/128 and zero point 0 on its output, got scale "
                         f"{y_q.scale[0]:.6g}, zero point {y_q.zero_point[0]}")
    real = float(np.float32(x_q.scale[0])) * float(1 << (31 - INPUT_INTEGER_BITS))
    significand, left_shift = np.frexp(real)
    multiplier = int(round_half_away(np.float64(significand) * float(1 << 31)))
    radius = calculate_input_radius(INPUT_INTEGER_BITS, int(left_shift), 31)
    return TanhParams(int(x_q.zero_point[0]), multiplier, int(left_shift), int(radius))


def _one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp ``one_minus_x_over_one_plus_x_for_x_in_0_1``: (1 - a) / (1 + a), Q0.31 in and out."""
    total = as_int64(a) + INT32_MAX  # RoundingHalfSum(a, One) rounds half away from zero
    total = total + np.where(total >= 0, 1, -1)
    half_denominator = np.where(total >= 0, total // 2, -((-total) // 2))
    one_q2 = 1 << 29
    x = wrap_int32(_FORTY_EIGHT_OVER_SEVENTEEN_Q2 + saturating_rounding_doubling_high_mul(
        half_denominator, _MINUS_THIRTY_TWO_OVER_SEVENTEEN_Q2))
    for _ in range(3):
        one_minus = wrap_int32(one_q2 - saturating_rounding_doubling_high_mul(half_denominator, x))
        x = wrap_int32(x + gemmlowp.rescale(saturating_rounding_doubling_high_mul(x, one_minus), 4, 2))
    return gemmlowp.rescale(wrap_int32(x - one_q2), 2, 0)


def gemmlowp_tanh(a, integer_bits: int) -> np.ndarray:
    """gemmlowp ``tanh`` of ``a`` in Q(integer_bits); Q0.31 out."""
    a = as_int64(a)
    negative = a < 0
    minus_abs = np.where(negative, a, wrap_int32(-a))
    # ExactMulByPot<1>: the same raw value read with one more integer bit, i.e. 2 * -|a|.
    t = _one_minus_x_over_one_plus_x_for_x_in_0_1(
        gemmlowp.exp_on_negative_values(minus_abs, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap_int32(-t), t))


def tanh_int8(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """TANH with int8 input and output (output scale 1/128, zero point 0)."""
    p = prepare_tanh(x_q, y_q)
    centred = as_int64(x) - p.input_zero_point
    in_q4 = multiply_by_quantized_multiplier(centred, p.input_multiplier, p.input_left_shift)
    out_q0 = gemmlowp_tanh(in_q4, INPUT_INTEGER_BITS)
    y = np.clip(rounding_divide_by_pot(out_q0, 31 - OUTPUT_SCALE_BITS), -128, 127)
    y = np.where(centred <= -p.input_range_radius, -128, y)
    y = np.where(centred >= p.input_range_radius, 127, y)
    return y.astype(np.int8)


class Tanh(SigmoidTableOp):
    """TANH (see the module docstring): a sigmoid table op with a fixed int8 output quantisation."""

    def check_int8_values(self, graph, op, where):
        """The Q4.27 input multiplier ``in * 2^27``, and the output quantisation (1/128, 0)."""
        x = quantised_scales(graph, op.inputs[0])
        y_t = graph.tensors[op.outputs[0]]
        if x is None or quantised_scales(graph, op.outputs[0]) is None:
            return
        check_multiplier(where, "input", x[0] * float(1 << (31 - INPUT_INTEGER_BITS)))
        try:
            prepare_tanh(graph.tensors[op.inputs[0]].quant, y_t.quant)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: output tensor {y_t.name}: {exc}") from None


OP_DEFS = (Tanh(OpKind.TANH, tanh_int8, tanh=True),)
