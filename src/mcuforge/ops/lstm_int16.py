"""The int16 arithmetic of TFLite Micro's integer LSTM (``lstm_eval.cc``, int8x8_16 path), in numpy.

- The gates' sigmoid and tanh are `lut16.sigmoid_int16` / `lut16.tanh_int16` (TFLite's int16
  Logistic and Tanh on the interpolated sigmoid table). The LSTM feeds them Q3.12 gate sums
  (sigmoid: input multiplier 3, no shift; tanh: `lstm_tanh_int16`, ``lstm_internal::Tanh`` with
  the scale power -12) and, for tanh(cell), the cell state with its power-of-two scale; both
  return Q0.15.
- `mul_elementwise`: ``reference_integer_ops::MulElementwise`` (offset operands, one
  MultiplyByQuantizedMultiplier, output offset, clamp).
- `fc_int16`: ``reference_integer_ops::FullyConnected`` with an int8 input, int8 weights, an
  optional int32 bias and an int16 output (zero point 0, the int16 range).
"""

from __future__ import annotations

import numpy as np

from ..arith.fixedpoint import as_int64, multiply_by_quantized_multiplier
from .conv_common import exact_matmul
from .lut16 import INT16_MAX, INT16_MIN, tanh_int16


def lstm_tanh_int16(x, scale_power: int) -> np.ndarray:
    """``lstm_internal::Tanh``: tanh of int16 values of scale 2^scale_power (-12 for a gate sum in
    Q3.12, the cell state's power for tanh(cell))."""
    left_shift = 15 + scale_power - 3
    multiplier = 0
    if left_shift < 0:
        left_shift, multiplier = -left_shift, 3
    return tanh_int16(x, multiplier, left_shift)


def mul_elementwise(a, b, multiplier: int, shift: int, output_offset: int, low: int,
                    high: int) -> np.ndarray:
    """``reference_integer_ops::MulElementwise`` of two symmetric int16 operands: ``offset +
    MultiplyByQuantizedMultiplier(a * b)``, clamped to [low, high]."""
    product = as_int64(a) * as_int64(b)
    y = output_offset + multiply_by_quantized_multiplier(product, multiplier, shift)
    return np.clip(y, low, high)


def fc_int16(x, x_zero_point: int, weights: np.ndarray, bias: np.ndarray | None, multiplier: int,
             shift: int) -> np.ndarray:
    """``reference_integer_ops::FullyConnected`` of int8 rows ``x`` [rows, in] with symmetric int8
    ``weights`` [out, in] and an int32 ``bias`` (or None) into int16 (zero point 0)."""
    acc = exact_matmul(as_int64(x) - x_zero_point, as_int64(weights).T)
    if bias is not None:
        acc = acc + as_int64(bias)
    y = multiply_by_quantized_multiplier(acc, multiplier, shift)
    return np.clip(y, INT16_MIN, INT16_MAX)
