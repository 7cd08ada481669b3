"""Tables shared by the .tflite reader and writer: builtin operator codes, tensor types, fused
activations and the options table each supported operator carries (all from the `tflite` package's
generated schema, so the numbers are TFLite's own)."""

from __future__ import annotations

import math

import numpy as np
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from ..arith.int4 import pack_int4, unpack_int4  # noqa: F401  (re-exported for the reader/writer)
from ..ir import INF, DType, OpKind

# Builtin operator code of every IR op kind (OpKind values are TFLite's operator names).
BUILTIN_CODE: dict[OpKind, int] = {kind: getattr(BuiltinOperator, kind.value) for kind in OpKind}
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

# Fused activation function <-> clamp bounds in real units.
CLAMP_OF_ACTIVATION: dict[int, tuple[float, float]] = {
    ActivationFunctionType.NONE: (-INF, INF),
    ActivationFunctionType.RELU: (0.0, INF),
    ActivationFunctionType.RELU6: (0.0, 6.0),
    ActivationFunctionType.RELU_N1_TO_1: (-1.0, 1.0),
}
ACTIVATION_NAME: dict[int, str] = {
    value: name for name, value in vars(ActivationFunctionType).items() if not name.startswith("_")
}

# The builtin options table each op kind carries (NONE: it has none we read or write).
OPTIONS_OF_KIND: dict[OpKind, int] = {
    OpKind.CONV_2D: BuiltinOptions.Conv2DOptions,
    OpKind.DEPTHWISE_CONV_2D: BuiltinOptions.DepthwiseConv2DOptions,
    OpKind.FULLY_CONNECTED: BuiltinOptions.FullyConnectedOptions,
    OpKind.ADD: BuiltinOptions.AddOptions,
    OpKind.MUL: BuiltinOptions.MulOptions,
    OpKind.AVERAGE_POOL_2D: BuiltinOptions.Pool2DOptions,
    OpKind.MAX_POOL_2D: BuiltinOptions.Pool2DOptions,
    OpKind.MEAN: BuiltinOptions.ReducerOptions,
    OpKind.PAD: BuiltinOptions.PadOptions,
    OpKind.RESHAPE: BuiltinOptions.ReshapeOptions,
    OpKind.SOFTMAX: BuiltinOptions.SoftmaxOptions,
    OpKind.QUANTIZE: BuiltinOptions.QuantizeOptions,
    OpKind.DEQUANTIZE: BuiltinOptions.DequantizeOptions,
    OpKind.CONCATENATION: BuiltinOptions.ConcatenationOptions,
    OpKind.RESIZE_NEAREST_NEIGHBOR: BuiltinOptions.ResizeNearestNeighborOptions,
    OpKind.HARD_SWISH: BuiltinOptions.HardSwishOptions,
    OpKind.LOGISTIC: BuiltinOptions.NONE,
    OpKind.TRANSPOSE: BuiltinOptions.TransposeOptions,
    OpKind.RELU: BuiltinOptions.NONE,
    OpKind.RELU6: BuiltinOptions.NONE,
}

# Operators whose second input is a constant that the IR keeps as an attribute.
FOLDED_INPUT_KINDS = frozenset({
    OpKind.PAD, OpKind.RESHAPE, OpKind.MEAN, OpKind.TRANSPOSE, OpKind.RESIZE_NEAREST_NEIGHBOR,
})


def activation_of_clamp(clamp: tuple[float, float]) -> int | None:
    """The fused activation code for ``clamp`` bounds, or None when TFLite has no such activation."""
    for code, bounds in CLAMP_OF_ACTIVATION.items():
        if all(_same_bound(a, b) for a, b in zip(bounds, clamp)):
            return code
    return None


def _same_bound(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-12)
