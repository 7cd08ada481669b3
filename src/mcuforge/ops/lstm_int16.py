"""The int16 arithmetic of TFLite Micro's integer LSTM (``lstm_eval.cc``, int8x8_16 path), in numpy.

- `sigmoid_int16` / `tanh_int16`: ``reference_integer_ops::Logistic`` and ``::Tanh`` on int16, the
  interpolated 256-entry table ``sigmoid_table_uint16`` (sigmoid(i / 24) in Q0.16; tanh(x) =
  2 * sigmoid(2x) - 1). The LSTM feeds them Q3.12 gate sums (sigmoid: input multiplier 3, no
  shift; tanh: ``lstm_internal::Tanh`` with the scale power -12) and, for tanh(cell), the cell
  state with its power-of-two scale; both return Q0.15.
- `mul_elementwise`: ``reference_integer_ops::MulElementwise`` (offset operands, one
  MultiplyByQuantizedMultiplier, output offset, clamp).
- `fc_int16`: ``reference_integer_ops::FullyConnected`` with an int8 input, int8 weights, an
  optional int32 bias and an int16 output (zero point 0, the int16 range).
"""

from __future__ import annotations

import numpy as np

from ..arith.fixedpoint import as_int64, multiply_by_quantized_multiplier
from .conv_common import exact_matmul

INT16_MIN, INT16_MAX = -32768, 32767

# sigmoid(i / 24) in 0.16 fixed point, the table TFLite (``sigmoid_table_uint16`` in
# tensorflow/lite/kernels/internal/common.h) and CMSIS-NN share. Its values are TensorFlow's:
# Copyright The TensorFlow Authors, licensed under the Apache License, Version 2.0
# (https://www.apache.org/licenses/LICENSE-2.0). It is not the plain rounding of
# 65536 * sigmoid(i / 24) (44 entries differ by one), so it is kept as data.
SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535], dtype=np.int64)
assert SIGMOID_TABLE_UINT16.size == 256


def _scaled(x, multiplier: int, left_shift: int) -> np.ndarray:
    """``(x * multiplier + round) >> shift`` as the int16 Logistic and Tanh scale their input
    (a zero multiplier is the power-of-two case: ``3 << shift`` and no shift)."""
    if multiplier == 0:
        multiplier, left_shift = 3 << left_shift, 0
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    return (as_int64(x) * multiplier + rounding) >> left_shift


def _interpolate(magnitude: np.ndarray, fraction_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(saturated, interpolated table value scaled by 2^fraction_bits) at |input|."""
    index = magnitude >> fraction_bits
    saturated = index >= 255
    safe = np.minimum(index, 254)
    low, high = SIGMOID_TABLE_UINT16[safe], SIGMOID_TABLE_UINT16[safe + 1]
    fraction = magnitude & ((1 << fraction_bits) - 1)
    return saturated, (low << fraction_bits) + fraction * (high - low)


def sigmoid_int16(x, input_multiplier: int = 0, input_left_shift: int = 0) -> np.ndarray:
    """TFLite's int16 ``reference_integer_ops::Logistic``: Q3.12 in (with the default scaling),
    Q0.15 out."""
    value = _scaled(x, input_multiplier, input_left_shift)
    saturated, result = _interpolate(np.abs(value), 9)
    result = np.where(saturated, 0x7FFF << 10, result)
    result = np.where(value >= 0, result + (1 << 9), (1 << (16 + 9)) - result + (1 << 9) - 1)
    return (result >> 10).astype(np.int16)


def tanh_int16(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """TFLite's int16 ``reference_integer_ops::Tanh`` (Q0.15 out)."""
    value = _scaled(x, input_multiplier, input_left_shift)
    saturated, result = _interpolate(np.abs(value), 8)
    result = np.where(saturated, 0xFFFF << 8, result)
    result = np.where(value >= 0, result - (1 << 23) + (1 << 7), -result + (1 << 23) + (1 << 7) - 1)
    return (result >> 8).astype(np.int16)


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
