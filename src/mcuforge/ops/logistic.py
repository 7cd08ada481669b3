"""LOGISTIC on int8 or int16 (``reference_integer_ops::Logistic``), bit-exact with TFLite Micro.

int8: the input is rescaled to Q4.27 and fed to gemmlowp's fixed-point logistic; inputs beyond the
representable radius saturate. Output scale 1/256, zero point -128. C: the 256-entry table of this
kernel (`lut`). int16 (16x8; zero points 0, output scale 2^-15): TFLite's interpolated sigmoid
table after the input scaling of `lut16.prepare_sigmoid_int16`; C: ``sigmoid_s16``. Shape unchanged;
spatially pointwise; ELEMENTWISE overlap. No options table.
"""

from __future__ import annotations

import numpy as np

from ..arith import gemmlowp
from ..arith.fixedpoint import (as_int64, calculate_input_radius, multiply_by_quantized_multiplier,
                                round_half_away, rounding_divide_by_pot)
from ..ir.checks import check_multiplier, check_requantisation, quantised_scales
from ..ir.ops import OpKind
from ..ir.tensor import QuantParams
from .lut16 import SigmoidTableOp

INPUT_INTEGER_BITS = 4  # the input is rescaled to Q4.27


def logistic_int8(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """LOGISTIC with int8 input and output (output scale 1/256, zero point -128)."""
    input_integer_bits = INPUT_INTEGER_BITS
    real = float(np.float32(x_q.scale[0])) * float(1 << (31 - input_integer_bits))
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


class Logistic(SigmoidTableOp):
    """LOGISTIC (see the module docstring): a sigmoid table op with an int8 input multiplier."""

    def check_int8_values(self, graph, op, where):
        """The Q4.27 input multiplier ``in * 2^27``, and the input's requantisation."""
        x = quantised_scales(graph, op.inputs[0])
        if x is not None and quantised_scales(graph, op.outputs[0]) is not None:
            check_multiplier(where, "input", x[0] * float(1 << (31 - INPUT_INTEGER_BITS)))
        check_requantisation(graph, op, where, op.inputs[:1])


OP_DEFS = (Logistic(OpKind.LOGISTIC, logistic_int8, tanh=False),)
