"""Generic value checks: what any op's tensors and attributes must satisfy, whatever its kind.

`validate` (validate.py) checks the structure of a graph (names resolve, topological order, shapes
agree). The value checks make sure the numbers the structure carries are usable, so that the
analysis, the reference runtime and the generated C may assume them. This module holds the checks
that do not depend on an op's kind; what a kind adds (its input count, the multipliers its
``prepare`` derives, the output quantisation it requires) lives in the op's module, as the
`OpDef.input_count`, `OpDef.input_roles` and `OpDef.check_values` hooks, and
`mcuforge.ops.validation.validate_model` runs both, op by op. The generic checks are:

- the graph has at least one op, one input and one output; every tensor an op names exists
  (`check_graph_io`, `check_op_io`);
- every dimension is at least 1 and no tensor holds more than `MAX_TENSOR_ELEMENTS` elements; every
  scale is finite and inside [`MIN_SCALE`, `MAX_SCALE`]; every zero point lies inside its dtype
  (int8 -128..127, uint8 0..255, int4 -8..7, int16/int32/int64 0, as TFLite requires); constant
  data has the tensor's shape and element type (`check_tensor`);
- by attributes type (`ConvAttrs`, `PoolAttrs`, ...; `check_attrs`): strides, dilations, kernels and
  depth multipliers are at least 1 and bounded by the input (a dilation above the input's extent, a
  stride above the padded extent); pads are at least 0 and smaller than the (dilated) kernel
  extent; axes and permutations are in range; sizes are at least 1; SOFTMAX's beta is finite and > 0;
- the helpers the op hooks share: `check_multiplier` (a real multiplier must be finite and give a
  quantised multiplier whose shift is at most `MAX_MULTIPLIER_SHIFT`, TFLite's
  ``QuantizeMultiplier`` range; multipliers below 2^-31 flush to zero, as in TFLite, so the
  generated C never shifts by more than 31 bits) and `check_requantisation` (``in / out``).

A bad value raises `InvalidValueError` (an `InvalidGraphError` and a `ModelFileError`) naming the
source, the operator (#index, name, kind), the tensor and the field, e.g. ``model.tflite:
operator #3 conv1 (CONV_2D): dilation_h 2147483647 exceeds input height 96``. Checks are written
by attribute type and by tensor quantisation, not by model.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..arith.fixedpoint import quantize_multiplier_scalar
from ..errors import InvalidValueError
from .graph import Graph
from .ops import (ConcatAttrs, ConvAttrs, FullyConnectedAttrs, MeanAttrs, Op, PadAttrs, PoolAttrs,
                  ReshapeAttrs, ResizeAttrs, SoftmaxAttrs, TransposeAttrs)
from .tensor import DType, QuantParams, Tensor

MAX_TENSOR_ELEMENTS = 1 << 28  # 256 Mi elements: a thousand times the SRAM of any MCU
MAX_RANK = 8
MIN_SCALE = 2.0 ** -64
MAX_SCALE = 2.0 ** 64
MAX_MULTIPLIER_SHIFT = 30  # TFLite: real = q * 2^(shift - 31), shift <= 30

ZERO_POINT_RANGE: dict[DType, tuple[int, int]] = {
    DType.INT8: (-128, 127), DType.UINT8: (0, 255), DType.INT4: (-8, 7),
    DType.INT16: (0, 0), DType.INT32: (0, 0), DType.INT64: (0, 0),
}
_QUANTISED = (DType.INT8, DType.UINT8, DType.INT16)


def operator_location(origin: str, index: int, op: Op) -> str:
    """The prefix of a refusal about operator ``index``: ``origin: operator #i name (KIND)``."""
    return f"{origin}: operator #{index} {op.name} ({op.kind.value})"


def check_graph_io(graph: Graph, origin: str) -> None:
    """The graph has at least one op, one input and one output, and its inputs and outputs are
    tensors."""
    if not graph.ops:
        raise InvalidValueError(f"{origin}: the graph has no operators")
    if not graph.inputs:
        raise InvalidValueError(f"{origin}: the graph has no inputs")
    if not graph.outputs:
        raise InvalidValueError(f"{origin}: the graph has no outputs")
    for name in (*graph.inputs, *graph.outputs):
        if name not in graph.tensors:
            raise InvalidValueError(f"{origin}: graph input/output {name!r} is not a tensor")


def check_op_io(graph: Graph, op: Op, where: str, input_count: tuple[int, int]) -> None:
    """``op`` has between ``input_count`` (fewest, most) inputs and one output, all of them
    tensors of ``graph``."""
    fewest, most = input_count
    if not fewest <= len(op.inputs) <= most:
        expected = str(fewest) if fewest == most else f"{fewest} to {most}"
        raise InvalidValueError(f"{where}: has {len(op.inputs)} inputs, expected {expected}")
    if len(op.outputs) != 1:
        raise InvalidValueError(f"{where}: has {len(op.outputs)} outputs, expected 1")
    for name in (*op.inputs, *op.outputs):
        if name not in graph.tensors:
            raise InvalidValueError(f"{where}: tensor {name!r} does not exist")


def tensor_roles(op: Op, input_roles: tuple[str, ...]) -> list[tuple[str, str]]:
    """(role, tensor name) of every tensor ``op`` names: the inputs labelled by ``input_roles``
    (e.g. "input", "filter", "bias"; inputs beyond them are "input 2", "input 3", ...), then
    "output"."""
    labels = list(input_roles) + [f"input {k + 1}" for k in range(len(input_roles), len(op.inputs))]
    roles = list(zip(labels, op.inputs))
    roles += [("output", name) for name in op.outputs]
    return roles


# --- tensors ---------------------------------------------------------------------------------

def check_tensor(tensor: Tensor, where: str) -> None:
    """Rank, dimensions, element count, quantisation and constant data of ``tensor``."""
    shape = tensor.shape
    if len(shape) > MAX_RANK:
        raise InvalidValueError(f"{where}: rank {len(shape)} exceeds {MAX_RANK}")
    for axis, size in enumerate(shape):
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise InvalidValueError(f"{where}: dimension {axis} is {size} (must be at least 1)")
    if math.prod(shape) > MAX_TENSOR_ELEMENTS:
        raise InvalidValueError(f"{where}: shape {list(shape)} has {math.prod(shape):,} elements "
                                f"(more than {MAX_TENSOR_ELEMENTS:,})")
    if tensor.quant is not None:
        _check_quant(tensor, tensor.quant, where)
    if tensor.data is not None:
        if tuple(tensor.data.shape) != tuple(shape):
            raise InvalidValueError(f"{where}: data shape {list(tensor.data.shape)} != {list(shape)}")
        if tensor.data.dtype != tensor.dtype.numpy:
            raise InvalidValueError(f"{where}: data is {tensor.data.dtype}, the tensor is "
                                    f"{tensor.dtype.value}")


def _check_quant(tensor: Tensor, quant: QuantParams, where: str) -> None:
    if quant.axis is not None and not 0 <= quant.axis < max(len(tensor.shape), 1):
        raise InvalidValueError(f"{where}: quantized_dimension {quant.axis} out of range for "
                                f"shape {list(tensor.shape)}")
    if quant.axis is not None and tensor.shape and tensor.shape[quant.axis] != len(quant.scale):
        raise InvalidValueError(f"{where}: {len(quant.scale)} scales along quantized_dimension "
                                f"{quant.axis} of shape {list(tensor.shape)}")
    for scale in quant.scale:
        stored = float(np.float32(scale)) if math.isfinite(scale) else scale
        if not (math.isfinite(stored) and MIN_SCALE <= abs(stored) <= MAX_SCALE):
            raise InvalidValueError(f"{where}: scale {scale!r} is not finite or outside "
                                    f"[{MIN_SCALE:g}, {MAX_SCALE:g}]")
        if stored < 0 and not tensor.constant:
            raise InvalidValueError(f"{where}: scale {scale!r} is negative")
    low, high = ZERO_POINT_RANGE.get(tensor.dtype, (0, 0))
    if tensor.dtype is DType.FLOAT32:
        return
    for zero_point in quant.zero_point:
        if not low <= zero_point <= high:
            raise InvalidValueError(f"{where}: zero point {zero_point} outside "
                                    f"{tensor.dtype.value} [{low}, {high}]")


# --- attributes ------------------------------------------------------------------------------

def check_attrs(graph: Graph, op: Op, where: str) -> None:
    """The attributes of ``op``, by their type (windows, axes, pads, sizes, permutations, beta)."""
    attrs = op.attrs
    x = graph.tensors[op.inputs[0]].shape
    if isinstance(attrs, ConvAttrs):
        _check_conv(graph, op, attrs, x, where)
    elif isinstance(attrs, PoolAttrs):
        _check_spatial_input(x, where)
        _at_least_one(where, kernel_h=attrs.kernel[0], kernel_w=attrs.kernel[1],
                      stride_h=attrs.stride[0], stride_w=attrs.stride[1])
        _check_window(where, x, attrs.kernel, attrs.stride, (1, 1), attrs.pads)
    elif isinstance(attrs, FullyConnectedAttrs):
        w = graph.tensors[op.inputs[1]].shape
        if len(w) != 2:
            raise InvalidValueError(f"{where}: weights tensor {op.inputs[1]} has shape {list(w)}, "
                                    "expected [out, in]")
    elif isinstance(attrs, MeanAttrs):
        for axis in attrs.axes:
            _check_axis(where, "axis", axis, len(x))
    elif isinstance(attrs, ConcatAttrs):
        _check_axis(where, "axis", attrs.axis, len(x))
    elif isinstance(attrs, PadAttrs):
        for axis, (before, after) in enumerate(attrs.paddings):
            if before < 0 or after < 0:
                raise InvalidValueError(f"{where}: padding of dimension {axis} is "
                                        f"({before}, {after}) (must be at least 0)")
    elif isinstance(attrs, ReshapeAttrs):
        for axis, size in enumerate(attrs.new_shape):
            if size < 1:
                raise InvalidValueError(f"{where}: new_shape dimension {axis} is {size} "
                                        "(must be at least 1)")
    elif isinstance(attrs, ResizeAttrs):
        _check_spatial_input(x, where)
        _at_least_one(where, size_h=attrs.size[0], size_w=attrs.size[1])
    elif isinstance(attrs, TransposeAttrs):
        if sorted(attrs.perm) != list(range(len(x))):
            raise InvalidValueError(f"{where}: perm {list(attrs.perm)} is not a permutation of "
                                    f"the {len(x)} input dimensions")
    elif isinstance(attrs, SoftmaxAttrs):
        if not (math.isfinite(attrs.beta) and attrs.beta > 0):
            raise InvalidValueError(f"{where}: beta {attrs.beta!r} (must be finite and > 0)")


def _check_conv(graph: Graph, op: Op, attrs: ConvAttrs, x: tuple[int, ...], where: str) -> None:
    _check_spatial_input(x, where)
    w = graph.tensors[op.inputs[1]].shape
    if len(w) != 4:
        raise InvalidValueError(f"{where}: filter tensor {op.inputs[1]} has shape {list(w)}, "
                                "expected 4-D")
    _at_least_one(where, stride_h=attrs.stride[0], stride_w=attrs.stride[1],
                  dilation_h=attrs.dilation[0], dilation_w=attrs.dilation[1],
                  depth_multiplier=attrs.depth_multiplier)
    _check_window(where, x, (w[1], w[2]), attrs.stride, attrs.dilation, attrs.pads)


def _check_spatial_input(x: tuple[int, ...], where: str) -> None:
    if len(x) != 4:
        raise InvalidValueError(f"{where}: needs a 4-D NHWC input, got {list(x)}")


def _at_least_one(where: str, **fields: int) -> None:
    for field, value in fields.items():
        if value < 1:
            raise InvalidValueError(f"{where}: {field} {value} (must be at least 1)")


def _check_window(where: str, x: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
                  dilation: tuple[int, int], pads) -> None:
    """Dilation bounded by the input, pads in [0, dilated kernel extent), stride bounded by the
    padded input (any stride of 2 is accepted: it is how a 1-pixel input is downsampled)."""
    axes = (("h", "height", x[1], pads.top, pads.bottom), ("w", "width", x[2], pads.left, pads.right))
    for k, (suffix, extent_name, extent, before, after) in enumerate(axes):
        if kernel[k] > 1 and dilation[k] > extent:
            raise InvalidValueError(f"{where}: dilation_{suffix} {dilation[k]} exceeds input "
                                    f"{extent_name} {extent}")
        kernel_extent = (kernel[k] - 1) * dilation[k] + 1
        for side, pad in (("before", before), ("after", after)):
            if pad < 0 or (pad > 0 and pad >= kernel_extent):
                raise InvalidValueError(f"{where}: pad {side} along {extent_name} is {pad} "
                                        f"(must be in [0, {kernel_extent - 1}])")
        padded = extent + before + after
        if stride[k] > max(padded, 2):
            raise InvalidValueError(f"{where}: stride_{suffix} {stride[k]} exceeds padded input "
                                    f"{extent_name} {padded}")
        if kernel_extent > padded:
            raise InvalidValueError(f"{where}: kernel {extent_name} {kernel_extent} (dilated) "
                                    f"exceeds padded input {extent_name} {padded}")


def _check_axis(where: str, field: str, axis: int, rank: int) -> None:
    if not -rank <= axis < max(rank, 1):
        raise InvalidValueError(f"{where}: {field} {axis} out of range for a rank-{rank} input")


# --- multipliers (the helpers of the per-op hooks) ---------------------------------------------

def quantised_scales(graph: Graph, name: str) -> tuple[float, ...] | None:
    """The float32 scales of an int-quantised tensor, or None when it is float or unquantised."""
    tensor = graph.tensors[name]
    if tensor.quant is None or tensor.dtype not in (*_QUANTISED, DType.INT4):
        return None
    return tuple(float(np.float32(s)) for s in tensor.quant.scale)


def check_multiplier(where: str, what: str, real: float) -> None:
    """``real`` must be finite and give a shift <= `MAX_MULTIPLIER_SHIFT` (tiny ones flush to 0)."""
    if not math.isfinite(real):
        raise InvalidValueError(f"{where}: {what} multiplier is {real!r}")
    if real == 0:
        return
    _, shift = quantize_multiplier_scalar(real)
    if shift > MAX_MULTIPLIER_SHIFT:
        raise InvalidValueError(f"{where}: {what} multiplier {real:.6g} is not representable "
                                f"(shift {shift} > {MAX_MULTIPLIER_SHIFT})")


def check_requantisation(graph: Graph, op: Op, where: str, names: Iterable[str]) -> None:
    """The ``in / out`` multiplier of each quantised non-constant input of ``names``, when the op's
    first input and its output are int-quantised."""
    if quantised_scales(graph, op.inputs[0]) is None:
        return
    y = quantised_scales(graph, op.outputs[0])
    if y is None:
        return
    for name in names:
        scales = quantised_scales(graph, name)
        if scales is not None and not graph.tensors[name].constant:
            check_multiplier(where, f"requantisation (tensor {name} / output)", scales[0] / y[0])


def check_same_quantisation(graph: Graph, op: Op, where: str, why: str) -> None:
    """The op's output is quantised exactly as its first input (float32 scales compared, as TFLite
    stores them): for ops that move or interpolate raw int8 values. ``why`` ends the message."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x_t.quant is None or y_t.quant is None:
        return
    if (float(np.float32(x_t.quant.scale[0])) != float(np.float32(y_t.quant.scale[0]))
            or x_t.quant.zero_point[0] != y_t.quant.zero_point[0]):
        raise InvalidValueError(
            f"{where}: tensor {y_t.name}: scale {y_t.quant.scale[0]:.6g}, zero point "
            f"{y_t.quant.zero_point[0]} differs from the input's ({x_t.quant.scale[0]:.6g}, "
            f"{x_t.quant.zero_point[0]}); {why}")
