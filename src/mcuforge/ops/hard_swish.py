"""HARD_SWISH on int8 (``reference_ops::HardSwish<int8>``), bit-exact with TFLite Micro.

x * relu6(x + 3) / 6 in int16 fixed point: the input is scaled up by 2^7, a "relu-ish" factor in
[0, 1] is derived from x on a scale where 3.0 is 2^15, and multiplied with x on the output scale (all
multipliers from float32 arithmetic, reduced to Q0.15). Shape unchanged; spatially pointwise;
ELEMENTWISE overlap. C: the 256-entry table of this kernel (`lut`). .tflite: an empty
HardSwishOptions table, as the converter writes it.
"""

from __future__ import annotations

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import (INT16_MIN, as_int64, downscale_int32_to_int16_multiplier,
                                quantize_multiplier_scalar, rounding_divide_by_pot,
                                saturating_doubling_high_mul_int16, saturating_left_shift_int16,
                                saturating_rounding_doubling_high_mul_int16)
from ..errors import InvalidValueError
from ..ir.checks import check_multiplier, check_requantisation, quantised_scales
from ..ir.ops import OpKind
from ..ir.tensor import QuantParams
from .lut import UnaryTableOp
from .tflite_common import empty_table


def hard_swish_int8(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """HARD_SWISH: x * relu6(x + 3) / 6 in TFLite's int16 fixed-point arithmetic."""
    x_scale, y_scale = np.float32(x_q.scale[0]), np.float32(y_q.scale[0])
    hires_input_scale = np.float32(1.0 / 128.0) * x_scale
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_m32, out_exp = quantize_multiplier_scalar(float(hires_input_scale / y_scale))
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


class HardSwish(UnaryTableOp):
    """HARD_SWISH (see the module docstring): a unary table op with an (empty) options table."""

    tflite_options = BuiltinOptions.HardSwishOptions

    def check_values(self, graph, op, where):
        """The reluish and output multipliers of `hard_swish_int8` (the output one below 1, as
        TFLite needs), and the input's requantisation."""
        x = quantised_scales(graph, op.inputs[0])
        y = quantised_scales(graph, op.outputs[0])
        if x is not None and y is not None:
            hires = float(np.float32(1.0 / 128.0) * np.float32(x[0]))
            check_multiplier(where, "reluish", hires / float(np.float32(3.0) / np.float32(32768.0)))
            check_multiplier(where, "output", hires / y[0])
            if quantize_multiplier_scalar(hires / y[0])[1] > 0:
                raise InvalidValueError(f"{where}: output tensor {op.outputs[0]}: scale {y[0]:.6g} "
                                        f"too small for input scale {x[0]:.6g} (TFLite needs "
                                        "input / 128 / output < 1)")
        check_requantisation(graph, op, where, op.inputs[:1])

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """An empty HardSwishOptions table."""
        return empty_table(builder, tflite.HardSwishOptionsStart, tflite.HardSwishOptionsEnd)


OP_DEFS = (HardSwish(OpKind.HARD_SWISH, hard_swish_int8),)
