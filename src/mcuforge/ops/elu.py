"""ELU on int8, bit-exact with TFLite Micro (``elu.cc``, which builds a 256-entry table in float).

- Kernel (`elu_int8`, TFLite Micro's ``PopulateLookupTable`` evaluated on the input values): in
  float32, ``d = s_in * (x - z_in)``, ``f = exp(d) - 1`` for d < 0 else d, ``r = round(f * (1 /
  s_out))`` (halves away from zero), ``y = (int32)(r + z_out)`` clamped to int8. exp is the double
  exp rounded to float32, the correctly rounded ``expf`` (glibc's, which the tflite-micro interpreter
  calls, agrees with it on every table the tests compare).
- Shape unchanged, no MACs; spatially pointwise (patchable); ELEMENTWISE overlap.
- C: the 256-entry table of this kernel (`lut`), as TFLite Micro itself runs it. No options table.
"""

from __future__ import annotations

import numpy as np

from ..arith.fixedpoint import as_int64, round_half_away
from ..ir.ops import OpKind
from ..ir.tensor import QuantParams
from .lut import UnaryTableOp


def elu_int8(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """ELU of an int8 tensor: TFLite Micro's float table, evaluated per value."""
    x_scale, y_scale = np.float32(x_q.scale[0]), np.float32(y_q.scale[0])
    inverse_scale = np.float32(1) / y_scale
    centred = (as_int64(x) - int(x_q.zero_point[0])).astype(np.float32)
    dequantized = x_scale * centred
    exp = np.exp(np.minimum(dequantized, 0).astype(np.float64)).astype(np.float32)
    transformed = np.where(dequantized < 0, exp - np.float32(1), dequantized).astype(np.float32)
    rescaled = round_half_away((transformed * inverse_scale).astype(np.float32))
    shifted = (rescaled + np.float32(y_q.zero_point[0])).astype(np.float32)
    quantized = np.trunc(np.clip(shifted, -2.0 ** 31, 2.0 ** 31 - 128)).astype(np.int64)
    return np.clip(quantized, -128, 127).astype(np.int8)


OP_DEFS = (UnaryTableOp(OpKind.ELU, elu_int8),)
