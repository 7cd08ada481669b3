"""GATHER along ``axis`` with constant indices (bytes move, values do not change).

As TFLite Micro's ``kernels/gather.cc``: with ``batch_dims`` leading dimensions shared by the input
and the indices (negative: ``batch_dims + rank(indices)``, and at most ``axis``), the output is
``input[:axis] + indices[batch_dims:] + input[axis + 1:]``; for each batch, outer index and
coordinate, the input's block of prod(input[axis + 1:]) elements at that coordinate is copied.
Every index must lie in [0, input[axis]) (TFLite Micro fails at run time otherwise; here the value
checks refuse it at import). Any quantisation: the bytes are copied.

The indices are a constant input kept as an attribute (their values and shape); a GATHER whose
indices are computed at run time (an embedding lookup) is refused at import. Shape: see above. Not
patchable; no overlap. C: ``gather`` (a block copy per coordinate, indices in Flash). .tflite:
GatherOptions with axis and batch_dims.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import InvalidValueError
from ..ir.checks import check_requantisation
from ..ir.ops import OpKind
from . import reference_support as ref
from .lowering_types import (ConstArray, KernelSpec, LayerCall, c_ident, io_buffers, require_int8,
                             unsupported)
from .registry import OpDef


@dataclass(frozen=True)
class GatherAttrs:
    """GATHER of the constant ``indices`` (flat, row-major, of shape ``indices_shape``) along
    ``axis``, the first ``batch_dims`` dimensions shared by input and indices."""

    indices: tuple[int, ...]
    indices_shape: tuple[int, ...]
    axis: int = 0
    batch_dims: int = 0


@dataclass(frozen=True)
class GatherLayout:
    """The loop sizes of one GATHER (TFLite Micro's ``Gather``)."""

    axis: int
    batch_dims: int
    batch: int
    outer: int
    axis_size: int
    coords: int
    inner: int


def gather_layout(shape: tuple[int, ...], attrs: GatherAttrs) -> GatherLayout:
    """The resolved axis and batch_dims and the loop sizes; ValueError for attributes that do not
    fit ``shape`` or an index out of range."""
    rank, idx_rank = len(shape), len(attrs.indices_shape)
    if math.prod(attrs.indices_shape) != len(attrs.indices):
        raise ValueError(f"{len(attrs.indices)} indices for an indices shape "
                         f"{list(attrs.indices_shape)}")
    axis = attrs.axis + rank if attrs.axis < 0 else attrs.axis
    if not 0 <= axis < rank:
        raise ValueError(f"GATHER axis {attrs.axis} out of range for a rank-{rank} input")
    batch_dims = attrs.batch_dims + idx_rank if attrs.batch_dims < 0 else attrs.batch_dims
    if not 0 <= batch_dims <= min(axis, idx_rank):
        raise ValueError(f"batch_dims {attrs.batch_dims} out of range (axis {axis}, indices of "
                         f"rank {idx_rank})")
    if tuple(shape[:batch_dims]) != tuple(attrs.indices_shape[:batch_dims]):
        raise ValueError(f"the first {batch_dims} dimensions of the input {list(shape)} and the "
                         f"indices {list(attrs.indices_shape)} differ")
    bad = [i for i in attrs.indices if not 0 <= i < shape[axis]]
    if bad:
        raise ValueError(f"index {bad[0]} out of range [0, {shape[axis]}) along axis {axis}")
    return GatherLayout(axis, batch_dims, math.prod(shape[:batch_dims]),
                        math.prod(shape[batch_dims:axis]), shape[axis],
                        math.prod(attrs.indices_shape[batch_dims:]), math.prod(shape[axis + 1:]))


def gather(x: np.ndarray, attrs: GatherAttrs) -> np.ndarray:
    """GATHER of ``x`` (any dtype)."""
    g = gather_layout(x.shape, attrs)
    x4 = x.reshape(g.batch, g.outer, g.axis_size, g.inner)
    idx = np.asarray(attrs.indices, dtype=np.int64).reshape(g.batch, 1, g.coords)
    y = x4[np.arange(g.batch)[:, None, None], np.arange(g.outer)[None, :, None], idx]
    shape = (*x.shape[:g.axis], *attrs.indices_shape[g.batch_dims:], *x.shape[g.axis + 1:])
    return np.ascontiguousarray(y).reshape(shape)


class Gather(OpDef):
    """GATHER (see the module docstring)."""

    kinds = (OpKind.GATHER,)
    attrs_type = GatherAttrs
    tflite_options = BuiltinOptions.GatherOptions
    tflite_option_fields = (tflite.GatherOptions, ("Axis", "BatchDims"))
    folds_constant_input = True

    def output_shape(self, op, input_shapes):
        """``input[:axis] + indices[batch_dims:] + input[axis + 1:]``."""
        x = tuple(input_shapes[0])
        g = gather_layout(x, op.attrs)
        return (*x[:g.axis], *op.attrs.indices_shape[g.batch_dims:], *x[g.axis + 1:])

    def check_values(self, graph, op, where):
        """Axis, batch_dims and every index in range; the requantisation ``in / out``."""
        try:
            gather_layout(graph.tensors[op.inputs[0]].shape, op.attrs)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {exc}") from None
        check_requantisation(graph, op, where, op.inputs[:1])

    def run(self, graph, op, env):
        """`gather` (any dtype)."""
        return gather(ref.value_of(graph, env, op.inputs[0]), op.attrs)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """A block copy per (batch, outer, coordinate), the indices a const array."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        try:
            g = gather_layout(x_t.shape, op.attrs)
        except ValueError as exc:
            raise unsupported(graph, index, op, str(exc)) from None
        indices = ConstArray(c_ident(index, "indices"), "int32_t",
                             np.asarray(op.attrs.indices, dtype=np.int32))
        spec = KernelSpec(
            "mf_gather_s8", "gather",
            "const int8_t *in, int8_t *out, const int32_t *indices, int32_t batch, int32_t outer, "
            "int32_t axis_size, int32_t coords, int32_t inner")
        args = (*io_buffers(op), indices, g.batch, g.outer, g.axis_size, g.coords, g.inner)
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """The indices (a constant input) and GatherOptions' axis and batch_dims."""
        values = reader.constant(rop, 1, "indices", where)
        return GatherAttrs(tuple(int(v) for v in values.reshape(-1)), tuple(values.shape),
                           int(rop.options.get("Axis", 0)), int(rop.options.get("BatchDims", 0)))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """GatherOptions with axis and batch_dims."""
        tflite.GatherOptionsStart(builder)
        tflite.GatherOptionsAddAxis(builder, attrs.axis)
        tflite.GatherOptionsAddBatchDims(builder, attrs.batch_dims)
        return tflite.GatherOptionsEnd(builder)

    def folded_constants(self, attrs):
        """The indices, in their shape."""
        return (("indices", np.array(attrs.indices, dtype=np.int64).reshape(attrs.indices_shape)),)


OP_DEFS = (Gather(),)
