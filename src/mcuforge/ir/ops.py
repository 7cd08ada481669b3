"""Operators of the IR: a kind, input and output tensor names, and typed, frozen attributes.

Constant operands that TFLite passes as tensors (PAD paddings, RESHAPE shape, MEAN axes, TRANSPOSE
permutation, RESIZE size) are attributes here, so passes never chase constant tensors for them.
Weights and biases stay tensor inputs: ``CONV_2D(x, filter, bias)``, ``FULLY_CONNECTED(x, w, bias)``
(bias may be absent: then the op has two inputs).

Fused activations are clamp bounds in real units: ``(0, 6)`` is ReLU6, ``(0, inf)`` ReLU,
``(-inf, inf)`` none. Int8 kernels derive their integer clamp from the output quantisation exactly
as TFLite's ``CalculateActivationRangeQuantized`` does.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Callable, Union

from tflite.BuiltinOperator import BuiltinOperator

INF = math.inf
NO_CLAMP: tuple[float, float] = (-INF, INF)
RELU: tuple[float, float] = (0.0, INF)
RELU6: tuple[float, float] = (0.0, 6.0)
RELU_N1_TO_1: tuple[float, float] = (-1.0, 1.0)


def _builtin_operator_names() -> list[str]:
    """Every TFLite builtin operator name, in the order of its builtin code."""
    codes = {name: value for name, value in vars(BuiltinOperator).items()
             if not name.startswith("_") and isinstance(value, int)}
    return sorted(codes, key=lambda name: codes[name])


# Operator kinds: one member per TFLite builtin operator (values are the operator names), so that a
# new op needs no edit here. Which kinds are implemented is the op registry's business
# (`mcuforge.ops.registry`); every other kind is refused where a graph is built or read.
OpKind = enum.Enum("OpKind", [(name, name) for name in _builtin_operator_names()],  # type: ignore[misc]
                   module=__name__, qualname="OpKind")
OpKind.__doc__ = "Operator kinds; values are the TFLite builtin operator names."


@dataclass(frozen=True)
class Pads:
    """Explicit zero padding of the two spatial dimensions, in pixels."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0

    @staticmethod
    def same(in_h: int, in_w: int, kernel: tuple[int, int], stride: tuple[int, int],
             dilation: tuple[int, int] = (1, 1)) -> "Pads":
        """TensorFlow/TFLite 'SAME' padding (the extra pixel goes to the bottom/right)."""
        def one(size: int, k: int, s: int, d: int) -> tuple[int, int]:
            eff = (k - 1) * d + 1
            out = -(-size // s)
            total = max((out - 1) * s + eff - size, 0)
            return total // 2, total - total // 2
        top, bottom = one(in_h, kernel[0], stride[0], dilation[0])
        left, right = one(in_w, kernel[1], stride[1], dilation[1])
        return Pads(top, bottom, left, right)

    @staticmethod
    def symmetric(pad: int) -> "Pads":
        """The same padding on every edge (PyTorch's ``padding=p``)."""
        return Pads(pad, pad, pad, pad)


@dataclass(frozen=True)
class ConvAttrs:
    """CONV_2D and DEPTHWISE_CONV_2D."""

    stride: tuple[int, int] = (1, 1)
    pads: Pads = Pads()
    dilation: tuple[int, int] = (1, 1)
    clamp: tuple[float, float] = NO_CLAMP
    depth_multiplier: int = 1


@dataclass(frozen=True)
class PoolAttrs:
    """AVERAGE_POOL_2D and MAX_POOL_2D."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: Pads = Pads()
    clamp: tuple[float, float] = NO_CLAMP


@dataclass(frozen=True)
class FullyConnectedAttrs:
    """FULLY_CONNECTED: ``y[..., out] = x[..., in] @ w.T + b``; input is flattened to [batch, in]."""

    clamp: tuple[float, float] = NO_CLAMP
    keep_num_dims: bool = False


@dataclass(frozen=True)
class ElementwiseAttrs:
    """ADD and MUL (with numpy broadcasting)."""

    clamp: tuple[float, float] = NO_CLAMP


@dataclass(frozen=True)
class MeanAttrs:
    """MEAN over ``axes``."""

    axes: tuple[int, ...]
    keep_dims: bool = True


@dataclass(frozen=True)
class PadAttrs:
    """PAD: ``(before, after)`` for every dimension; pad value is the zero point (real 0)."""

    paddings: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ReshapeAttrs:
    """RESHAPE to ``new_shape`` (fully resolved, no -1)."""

    new_shape: tuple[int, ...]


@dataclass(frozen=True)
class SoftmaxAttrs:
    """SOFTMAX over the last axis."""

    beta: float = 1.0


@dataclass(frozen=True)
class ConcatAttrs:
    """CONCATENATION along ``axis``."""

    axis: int
    clamp: tuple[float, float] = NO_CLAMP


@dataclass(frozen=True)
class ResizeAttrs:
    """RESIZE_NEAREST_NEIGHBOR to ``size`` = (height, width)."""

    size: tuple[int, int]
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass(frozen=True)
class TransposeAttrs:
    """TRANSPOSE with permutation ``perm``."""

    perm: tuple[int, ...]


@dataclass(frozen=True)
class NoAttrs:
    """Operators without attributes (QUANTIZE, DEQUANTIZE, HARD_SWISH, LOGISTIC, RELU, RELU6)."""


Attrs = Union[ConvAttrs, PoolAttrs, FullyConnectedAttrs, ElementwiseAttrs, MeanAttrs, PadAttrs,
              ReshapeAttrs, SoftmaxAttrs, ConcatAttrs, ResizeAttrs, TransposeAttrs, NoAttrs]

# What the IR itself needs to know of every implemented kind: its attributes type and its shape rule.
# The op registry (`mcuforge.ops`) fills both tables from the op modules (`register_kind`); the IR
# stays below the ops and never names one.
ATTRS_OF_KIND: dict[OpKind, type] = {}
SHAPE_RULE_OF_KIND: dict[OpKind, Callable[["Op", list[tuple[int, ...]]], tuple[int, ...]]] = {}


def register_kind(kind: OpKind, attrs_type: type,
                  shape_rule: Callable[["Op", list[tuple[int, ...]]], tuple[int, ...]]) -> None:
    """Declare ``kind`` implemented: ops of it take ``attrs_type`` and their output shape is
    ``shape_rule(op, input_shapes)``. Called by `mcuforge.ops.registry` for every op module."""
    known = ATTRS_OF_KIND.get(kind)
    if known is not None and known is not attrs_type:
        raise ValueError(f"{kind.value} registered twice, with {known.__name__} and "
                         f"{attrs_type.__name__}")
    ATTRS_OF_KIND[kind] = attrs_type
    SHAPE_RULE_OF_KIND[kind] = shape_rule


@dataclass(frozen=True)
class Op:
    """One operator. ``name`` is unique in its graph; blocks refer to ops by name."""

    name: str
    kind: OpKind
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Attrs = field(default_factory=NoAttrs)

    def __post_init__(self) -> None:
        expected = ATTRS_OF_KIND.get(self.kind)
        if expected is None:
            raise TypeError(f"op {self.name}: {self.kind.value} is not an implemented op kind")
        if not isinstance(self.attrs, expected):
            raise TypeError(f"op {self.name}: {self.kind.value} takes {expected.__name__}, "
                            f"got {type(self.attrs).__name__}")
