"""RELU and RELU6 on int8, bit-exact with TFLite Micro.

- RELU (``ReluQuantized``): requantise (x - z_in) * s_in / s_out to the output and clamp at real 0.
- RELU6: clamp the raw input to [z_in, quantise(6.0)] without rescaling, as TFLite Micro does.
- Shape unchanged, no MACs; spatially pointwise (patchable); ELEMENTWISE overlap.
- C: the 256-entry table of the reference kernel, or a clamp (`lut`). No .tflite options table.
"""

from __future__ import annotations

import numpy as np

from ..arith.fixedpoint import (as_int64, calculate_activation_range_quantized,
                                multiply_by_quantized_multiplier, quantize_multiplier_scalar,
                                round_half_away)
from ..ir.ops import OpKind
from ..ir.tensor import QuantParams
from .lut import UnaryTableOp


def relu_int8(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """RELU: requantise to the output scale, clamp at real 0 (TFLite Micro ``ReluQuantized``)."""
    multiplier, shift = quantize_multiplier_scalar(float(np.float32(x_q.scale[0]))
                                                   / float(np.float32(y_q.scale[0])))
    act_min, act_max = calculate_activation_range_quantized((0.0, np.inf), y_q.scale[0],
                                                            y_q.zero_point[0])
    y = multiply_by_quantized_multiplier(as_int64(x) - x_q.zero_point[0], multiplier, shift)
    return np.clip(y + y_q.zero_point[0], act_min, act_max).astype(np.int8)


def relu6_int8(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """RELU6: clamp the raw input to [zero point, quantised 6.0] (no rescaling, as TFLite Micro)."""
    six = round_half_away(np.float32(6.0) / np.float32(x_q.scale[0])) + np.float32(x_q.zero_point[0])
    six = int(np.clip(six, -128, 127))
    return np.clip(as_int64(x), x_q.zero_point[0], six).astype(np.int8)


OP_DEFS = (UnaryTableOp(OpKind.RELU, relu_int8), UnaryTableOp(OpKind.RELU6, relu6_int8))
