"""QUANTIZE: float32 -> int (affine quantisation) or int -> int (requantisation), as TFLite Micro.

- float32 -> int: round(x / scale) (float32 division, half away from zero) + zero point, clamped.
- int -> int: ``Requantize`` with MultiplyByQuantizedMultiplier(s_in / s_out).
- Shape unchanged; spatially pointwise; ELEMENTWISE overlap (int8 -> int8: same element size).
- C: int8 -> int8 as the 256-entry table of this kernel (`lut`); int8 <-> int16 and int16 -> int16
  (the edges of a 16x8 model) as the ``requantize`` loop; float edge QUANTIZE ops are stripped
  before lowering (`codegen.edges`). .tflite: an empty QuantizeOptions table.
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
from .lowering_types import Buffer, KernelSpec, LayerCall, unsupported
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
    input_dtypes = frozenset({DType.INT8, DType.INT16, DType.FLOAT32})  # float32: a float-I/O model's input
    output_dtypes = frozenset({DType.INT8, DType.INT16})  # int16: the edges of a 16x8 graph

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
        """int8 -> int8: the 256-entry table of `quantize`; int8/int16 -> int8/int16: `lower_wide`."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if DType.INT16 in (x_t.dtype, y_t.dtype):
            return self.lower_wide(graph, index, op, overlapped)
        return lower_unary_table(graph, index, op, _int8_requantize, overlapped)

    def lower_wide(self, graph, index, op, overlapped):
        """A requantisation between int8 and int16 (either way, or int16 -> int16): one
        MultiplyByQuantizedMultiplier per element (`quantize`'s multiplier)."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        ctypes = {DType.INT8: "int8_t", DType.INT16: "int16_t"}
        for t in (x_t, y_t):
            if t.dtype not in ctypes or t.quant is None or t.quant.per_axis:
                raise unsupported(graph, index, op, f"QUANTIZE of {t.name} ({t.dtype.value}); the "
                                  "generated C requantises per-tensor int8 and int16")
        if overlapped and x_t.dtype is not y_t.dtype:
            raise unsupported(graph, index, op, "an overlap of tensors of different element sizes")
        multiplier, shift = quantize_multiplier_scalar(
            float(np.float32(x_t.quant.scale[0])) / float(np.float32(y_t.quant.scale[0])))
        in_c, out_c = ctypes[x_t.dtype], ctypes[y_t.dtype]
        info = np.iinfo(y_t.dtype.numpy)
        spec = KernelSpec(f"mf_requantize_{in_c[:-2]}_{out_c[:-2]}", "requantize",
                          f"const {in_c} *in, {out_c} *out, int32_t n, int32_t in_zp, "
                          "int32_t out_zp, int32_t mult, int32_t shift",
                          {"in_ctype": in_c, "out_ctype": out_c, "qmin": int(info.min),
                           "qmax": int(info.max)})
        args = (Buffer("tensor", x_t.name, in_c), Buffer("tensor", y_t.name, out_c),
                y_t.num_elements, int(x_t.quant.zero_point[0]), int(y_t.quant.zero_point[0]),
                int(multiplier), int(shift))
        return LayerCall(op.name, op.kind.value, spec, args, note="in place" if overlapped else "")

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """An empty QuantizeOptions table."""
        return empty_table(builder, tflite.QuantizeOptionsStart, tflite.QuantizeOptionsEnd)


OP_DEFS = (Quantize(),)
