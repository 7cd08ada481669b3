"""Tensors of the IR: shape (NHWC for 4-D activations), dtype, quantisation, optional constant data.

Weight layouts follow TFLite so that .tflite import and export are direct:
CONV_2D filters are OHWI ``[out, kh, kw, in]``, DEPTHWISE_CONV_2D filters are ``[1, kh, kw, out]``,
FULLY_CONNECTED weights are ``[out, in]``, biases are 1-D ``[out]`` (int32 in int8 graphs).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np


class DType(enum.Enum):
    """Element types the IR knows. ``INT4`` is a weight-only type, stored packed two per byte in Flash."""

    FLOAT32 = "float32"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    UINT8 = "uint8"
    BOOL = "bool"
    INT4 = "int4"

    @property
    def bits(self) -> int:
        """Bits per element."""
        return _BITS[self]

    @property
    def numpy(self) -> np.dtype:
        """The numpy dtype that holds this type unpacked (int4 is held as int8)."""
        return np.dtype(_NUMPY[self])


_BITS = {
    DType.FLOAT32: 32, DType.INT8: 8, DType.INT16: 16, DType.INT32: 32, DType.INT64: 64,
    DType.UINT8: 8, DType.BOOL: 8, DType.INT4: 4,
}
_NUMPY = {
    DType.FLOAT32: "float32", DType.INT8: "int8", DType.INT16: "int16", DType.INT32: "int32",
    DType.INT64: "int64", DType.UINT8: "uint8", DType.BOOL: "bool", DType.INT4: "int8",
}


@dataclass(frozen=True)
class QuantParams:
    """Affine quantisation: ``real = scale * (q - zero_point)``.

    Per-tensor when ``axis`` is None (one scale and zero point), per-axis otherwise
    (one scale and zero point per index of dimension ``axis``).
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    def __post_init__(self) -> None:
        if len(self.scale) != len(self.zero_point):
            raise ValueError("quantisation needs as many zero points as scales")
        if self.axis is None and len(self.scale) != 1:
            raise ValueError("per-tensor quantisation has exactly one scale")

    @property
    def per_axis(self) -> bool:
        """True when there is one scale per index of ``axis``."""
        return self.axis is not None

    @staticmethod
    def per_tensor(scale: float, zero_point: int) -> "QuantParams":
        """A per-tensor quantisation."""
        return QuantParams((float(scale),), (int(zero_point),), None)


@dataclass(frozen=True)
class Tensor:
    """One tensor of a graph. ``data`` is set for constants with known values; ``constant`` marks
    weights even when their values are not known (analytic zoo graphs)."""

    name: str
    shape: tuple[int, ...]
    dtype: DType = DType.FLOAT32
    quant: QuantParams | None = None
    constant: bool = False
    data: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.data is not None:
            if not self.constant:
                object.__setattr__(self, "constant", True)
            if tuple(self.data.shape) != tuple(self.shape):
                raise ValueError(
                    f"tensor {self.name}: data shape {tuple(self.data.shape)} != declared {self.shape}"
                )

    @property
    def num_elements(self) -> int:
        """Number of elements (product of the shape)."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes the tensor occupies in its own dtype (int4 packed two per byte, rounded up)."""
        return (self.num_elements * self.dtype.bits + 7) // 8

    def with_data(self, data: np.ndarray) -> "Tensor":
        """A copy holding ``data`` (shape must match)."""
        return Tensor(self.name, self.shape, self.dtype, self.quant, True, data)
