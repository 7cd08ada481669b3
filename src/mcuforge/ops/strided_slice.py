"""STRIDED_SLICE with constant begin, end and strides (bytes move, values do not change).

As TFLite Micro's ``kernels/strided_slice.cc`` (``reference_ops::StridedSlice`` and
``strided_slice_logic.h``): begin, end and strides hold one value per input dimension (rank <= 4);
per axis, ``StartForAxis`` takes begin (``begin_mask``: the first element in the stride's
direction), adds the axis size to a negative value and clamps it to [0, size] (stride > 0) or
[-1, size - 1] (stride < 0); ``StopForAxis`` does the same with end and ``end_mask``, and a
``shrink_axis_mask`` axis stops at start + 1 and disappears from the output. The slice walks
start, start + stride, ... while before the stop. TFLite Micro ignores the ellipsis and new-axis
masks and the offset flag, so a model that sets them is refused. Any quantisation: the bytes are
copied.

Shape: the number of steps of every kept axis. Not patchable; no overlap. C: ``strided_slice``
(a 4-D walk of the output from a base offset with per-axis input steps). .tflite:
StridedSliceOptions with the masks; begin, end and strides are constant inputs kept as attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import InvalidValueError, UnsupportedOpError
from ..ir.checks import check_requantisation
from ..ir.ops import OpKind
from . import reference_support as ref
from .lowering_types import KernelSpec, LayerCall, io_buffers, require_int8, unsupported
from .registry import OpDef

MAX_RANK = 4  # TFLite Micro: "input dim should not exceed 4"


@dataclass(frozen=True)
class StridedSliceAttrs:
    """STRIDED_SLICE: ``begin``, ``end`` and ``strides`` (one per input dimension) and the masks
    TFLite Micro honours (bit i for dimension i)."""

    begin: tuple[int, ...]
    end: tuple[int, ...]
    strides: tuple[int, ...]
    begin_mask: int = 0
    end_mask: int = 0
    shrink_axis_mask: int = 0


def _clamp(value: int, low: int, high: int) -> int:
    return high if value > high else low if value < low else value


def slice_ranges(shape: tuple[int, ...],
                 attrs: StridedSliceAttrs) -> list[tuple[int, int, int, bool]]:
    """(start, stop, stride, shrunk) of every axis, as TFLite's StartForAxis / StopForAxis
    compute them; ValueError when the attributes do not fit ``shape``."""
    rank = len(shape)
    if rank > MAX_RANK:
        raise ValueError(f"STRIDED_SLICE of a rank-{rank} input (at most {MAX_RANK})")
    if not len(attrs.begin) == len(attrs.end) == len(attrs.strides) == rank:
        raise ValueError(f"begin, end and strides have {len(attrs.begin)}, {len(attrs.end)} and "
                         f"{len(attrs.strides)} values, expected {rank} (the input rank)")
    ranges = []
    for axis, size in enumerate(shape):
        stride = attrs.strides[axis]
        if stride == 0:
            raise ValueError(f"stride of dimension {axis} is 0")
        start = attrs.begin[axis]
        if attrs.begin_mask >> axis & 1:
            start = -(1 << 31) if stride > 0 else (1 << 31) - 1
        start = start + size if start < 0 else start
        start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
        shrunk = bool(attrs.shrink_axis_mask >> axis & 1)
        if shrunk:
            stop = start + 1
        else:
            stop = attrs.end[axis]
            if attrs.end_mask >> axis & 1:
                stop = (1 << 31) - 1 if stride > 0 else -(1 << 31)
            stop = stop + size if stop < 0 else stop
            stop = _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)
        count = len(range(start, stop, stride))
        if shrunk and not (0 <= start < size and stride > 0):
            raise ValueError(f"shrunk dimension {axis} starts at {start} with stride {stride} "
                             f"(needs a start in [0, {size}) and a positive stride)")
        if count < 1:
            raise ValueError(f"dimension {axis} selects no element (start {start}, stop {stop}, "
                             f"stride {stride})")
        ranges.append((start, stop, stride, shrunk))
    return ranges


def strided_slice(x: np.ndarray, attrs: StridedSliceAttrs) -> np.ndarray:
    """STRIDED_SLICE of ``x`` (any dtype)."""
    ranges = slice_ranges(x.shape, attrs)
    picks = np.ix_(*[np.arange(start, stop, stride) for start, stop, stride, _ in ranges])
    kept = tuple(len(range(a, b, s)) for a, b, s, shrunk in ranges if not shrunk)
    return np.ascontiguousarray(x[picks]).reshape(kept)


class StridedSlice(OpDef):
    """STRIDED_SLICE (see the module docstring)."""

    kinds = (OpKind.STRIDED_SLICE,)
    attrs_type = StridedSliceAttrs
    tflite_options = BuiltinOptions.StridedSliceOptions
    tflite_option_fields = (tflite.StridedSliceOptions,
                            ("BeginMask", "EndMask", "EllipsisMask", "NewAxisMask",
                             "ShrinkAxisMask", "Offset"))
    folds_constant_input = True

    def output_shape(self, op, input_shapes):
        """The number of steps of every axis that is not shrunk."""
        return tuple(len(range(a, b, s)) for a, b, s, shrunk
                     in slice_ranges(tuple(input_shapes[0]), op.attrs) if not shrunk)

    def check_values(self, graph, op, where):
        """Begin, end, strides and masks select at least one element per axis from a rank <= 4
        input; the requantisation ``in / out``."""
        try:
            slice_ranges(graph.tensors[op.inputs[0]].shape, op.attrs)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {exc}") from None
        check_requantisation(graph, op, where, op.inputs[:1])

    def run(self, graph, op, env):
        """`strided_slice` (any dtype)."""
        return strided_slice(ref.value_of(graph, env, op.inputs[0]), op.attrs)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """A 4-D walk of the output: input offset = base + sum(i_k * step_k)."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        try:
            ranges = slice_ranges(x_t.shape, op.attrs)
        except ValueError as exc:
            raise unsupported(graph, index, op, str(exc)) from None
        rank = len(x_t.shape)
        strides = [int(np.prod(x_t.shape[k + 1:], dtype=np.int64)) for k in range(rank)]
        base = sum(start * s for (start, _, _, _), s in zip(ranges, strides))
        counts = [len(range(a, b, st)) for a, b, st, _ in ranges]
        steps = [st * s for (_, _, st, _), s in zip(ranges, strides)]
        pad = 4 - rank
        spec = KernelSpec(
            "mf_strided_slice_s8", "strided_slice",
            "const int8_t *in, int8_t *out, int32_t base, int32_t O0, int32_t O1, int32_t O2, "
            "int32_t O3, int32_t T0, int32_t T1, int32_t T2, int32_t T3")
        args = (*io_buffers(op), base, *([1] * pad + counts), *([0] * pad + steps))
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """Begin, end and strides (constant inputs) and the masks of StridedSliceOptions."""
        options = rop.options
        for field in ("EllipsisMask", "NewAxisMask", "Offset"):
            if options.get(field):
                raise UnsupportedOpError(f"{where}: {field} {int(options[field])} is not "
                                         "supported (TFLite Micro ignores it)")
        begin, end, strides = (tuple(int(v) for v in reader.constant(rop, k, what, where)
                                     .reshape(-1))
                               for k, what in ((1, "begin"), (2, "end"), (3, "strides")))
        return StridedSliceAttrs(begin, end, strides, int(options.get("BeginMask", 0)),
                                 int(options.get("EndMask", 0)),
                                 int(options.get("ShrinkAxisMask", 0)))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """StridedSliceOptions with the begin, end and shrink-axis masks."""
        tflite.StridedSliceOptionsStart(builder)
        tflite.StridedSliceOptionsAddBeginMask(builder, attrs.begin_mask)
        tflite.StridedSliceOptionsAddEndMask(builder, attrs.end_mask)
        tflite.StridedSliceOptionsAddShrinkAxisMask(builder, attrs.shrink_axis_mask)
        return tflite.StridedSliceOptionsEnd(builder)

    def folded_constants(self, attrs):
        """Begin, end and strides."""
        return (("begin", np.array(attrs.begin)), ("end", np.array(attrs.end)),
                ("strides", np.array(attrs.strides)))


OP_DEFS = (StridedSlice(),)
