"""QUANTIZE: float32 -> int (affine quantisation) or int -> int (requantisation), as TFLite Micro.

- float32 -> int: round(x / scale) (float32 division, half away from zero) + zero point, clamped.
- int -> int: ``Requantize`` with MultiplyByQuantizedMultiplier(s_in / s_out).
- Shape unchanged; spatially pointwise; ELEMENTWISE overlap (int8 -> int8: same element size).
- C: int8 -> int8 as the 256-entry table of this kernel (`lut`); float edge QUANTIZE ops are
  stripped before lowering (`codegen.edges`). .tflite: an empty QuantizeOptions table.
"""

from __future__ import annotations

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import (as_int64, multiply_by_quantized_multiplier,
                                quantize_multiplier_scalar, round_half_away)
from ..errors import UnsupportedOpError
from ..ir.ops import OpKind
from ..ir.tensor import DType, QuantParams
from . import reference_support as ref
from .lut import lower_unary_table
from .registry import OpDef, OverlapRule
from .tflite_common import empty_table


def quantize(x: np.ndarray, x_q: QuantParams | None, y_q: QuantParams,
             out_dtype: np.dtype = np.dtype(np.int8)) -> np.ndarray:
    """QUANTIZE: float32 -> int (affine quantisation) or int -> int (requantisation)."""
    info = np.iinfo(out_dtype)
    qmin, qmax = int(info.min), int(info.max)
    y_zp = y_q.zero_point[0]
    y_scale = np.float32(y_q.scale[0])
    if x.dtype == np.float32 or x_q is None:
        scaled = round_half_away(x.astype(np.float32) / y_scale)
        scaled = np.clip(scaled, -2.0 ** 31, 2.0 ** 31 - 128)
        y = scaled.astype(np.int64) + y_zp
        return np.clip(y, qmin, qmax).astype(out_dtype)
    multiplier, shift = quantize_multiplier_scalar(float(np.float32(x_q.scale[0])) / float(y_scale))
    y = multiply_by_quantized_multiplier(as_int64(x) - x_q.zero_point[0], multiplier, shift) + y_zp
    return np.clip(y, qmin, qmax).astype(out_dtype)


def _int8_requantize(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    return quantize(x, x_q, y_q, np.dtype(np.int8))


class Quantize(OpDef):
    """QUANTIZE (see the module docstring)."""

    kinds = (OpKind.QUANTIZE,)
    overlap = OverlapRule.ELEMENTWISE
    spatially_pointwise = True
    tflite_options = BuiltinOptions.QuantizeOptions
    input_dtypes = frozenset({DType.INT8, DType.FLOAT32})  # float32: a float-I/O model's input

    def window(self, graph, op, axis):
        """Kernel 1, stride 1, no padding."""
        return 1, 1, 0

    def run(self, graph, op, env):
        """`quantize` to an int8 or int16 output."""
        x_name, y_name = op.inputs[0], op.outputs[0]
        x_tensor, y_tensor = graph.tensor(x_name), graph.tensor(y_name)
        if y_tensor.dtype not in (DType.INT8, DType.INT16):
            raise UnsupportedOpError(f"{ref.op_location(graph, op)}: QUANTIZE to "
                                     f"{y_tensor.dtype.value}")
        x_q = None if x_tensor.dtype is DType.FLOAT32 else ref.quant_of(graph, op, x_name)
        return quantize(ref.value_of(graph, env, x_name), x_q, ref.quant_of(graph, op, y_name),
                        y_tensor.dtype.numpy)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """int8 -> int8: the 256-entry table of `quantize`."""
        return lower_unary_table(graph, index, op, _int8_requantize, overlapped)

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """An empty QuantizeOptions table."""
        return empty_table(builder, tflite.QuantizeOptionsStart, tflite.QuantizeOptionsEnd)


OP_DEFS = (Quantize(),)
