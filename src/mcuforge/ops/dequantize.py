"""DEQUANTIZE: int -> float32, ``float32(double(scale) * (q - zero point))`` as TFLite Micro.

Only at a float-I/O graph's outputs (code generation strips it, `codegen.edges`, so it has no C
lowering). Shape unchanged; spatially pointwise (patchable); no overlap (the element size grows).
.tflite: an empty DequantizeOptions table.
"""

from __future__ import annotations

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import as_int64
from ..errors import UnsupportedOpError
from ..ir.ops import OpKind
from ..ir.tensor import DType, QuantParams
from . import reference_support as ref
from .registry import OpDef
from .tflite_common import empty_table


def dequantize(x: np.ndarray, x_q: QuantParams) -> np.ndarray:
    """DEQUANTIZE: float32(double(scale) * (q - zero_point))."""
    scale = float(np.float32(x_q.scale[0]))
    return (scale * (as_int64(x) - x_q.zero_point[0]).astype(np.float64)).astype(np.float32)


class Dequantize(OpDef):
    """DEQUANTIZE (see the module docstring)."""

    kinds = (OpKind.DEQUANTIZE,)
    spatially_pointwise = True
    tflite_options = BuiltinOptions.DequantizeOptions
    output_dtypes = frozenset({DType.FLOAT32})

    def window(self, graph, op, axis):
        """Kernel 1, stride 1, no padding."""
        return 1, 1, 0

    def run(self, graph, op, env):
        """`dequantize` to float32."""
        x_name = op.inputs[0]
        if graph.tensor(op.outputs[0]).dtype is not DType.FLOAT32:
            raise UnsupportedOpError(f"{ref.op_location(graph, op)}: DEQUANTIZE must produce float32")
        return dequantize(ref.value_of(graph, env, x_name), ref.quant_of(graph, op, x_name))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """An empty DequantizeOptions table."""
        return empty_table(builder, tflite.DequantizeOptionsStart, tflite.DequantizeOptionsEnd)


OP_DEFS = (Dequantize(),)
