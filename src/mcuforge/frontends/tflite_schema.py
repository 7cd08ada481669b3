"""Tables shared by the .tflite reader and writer: builtin operator codes, tensor types, fused
activations and the options table each supported operator carries (all from the `tflite` package's
generated schema, so the numbers are TFLite's own; the per-op entries are read from the op modules,
`mcuforge.ops`)."""

from __future__ import annotations

from tflite.BuiltinOperator import BuiltinOperator
from tflite.TensorType import TensorType

from ..ir import DType, OpKind
from ..ops import definitions

# Builtin operator code of every implemented op kind (OpKind values are TFLite's operator names).
BUILTIN_CODE: dict[OpKind, int] = {kind: definition.builtin_code(kind)
                                   for definition in definitions() for kind in definition.kinds}
KIND_OF_CODE: dict[int, OpKind] = {code: kind for kind, code in BUILTIN_CODE.items()}

# Every builtin operator name, for error messages about operators the IR does not support.
BUILTIN_NAME: dict[int, str] = {
    value: name for name, value in vars(BuiltinOperator).items() if not name.startswith("_")
}

DTYPE_OF_TYPE: dict[int, DType] = {
    TensorType.FLOAT32: DType.FLOAT32,
    TensorType.INT8: DType.INT8,
    TensorType.INT16: DType.INT16,
    TensorType.INT32: DType.INT32,
    TensorType.INT64: DType.INT64,
    TensorType.UINT8: DType.UINT8,
    TensorType.BOOL: DType.BOOL,
    TensorType.INT4: DType.INT4,
}
TYPE_OF_DTYPE: dict[DType, int] = {dtype: code for code, dtype in DTYPE_OF_TYPE.items()}
TYPE_NAME: dict[int, str] = {
    value: name for name, value in vars(TensorType).items() if not name.startswith("_")
}

# The builtin options table each implemented op kind carries (NONE: it has none we read or write).
OPTIONS_OF_KIND: dict[OpKind, int] = {kind: definition.tflite_options
                                      for definition in definitions() for kind in definition.kinds}

# Operators whose second input is a constant that the IR keeps as an attribute.
FOLDED_INPUT_KINDS = frozenset(kind for definition in definitions() if definition.folds_constant_input
                               for kind in definition.kinds)
