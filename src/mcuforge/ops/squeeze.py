"""SQUEEZE: the same bytes with dimensions of size 1 removed.

As TFLite Micro's ``kernels/squeeze.cc``: ``squeeze_dims`` (SqueezeOptions) lists the dimensions
to remove, each of size 1 and in [-rank, rank) (negative: ``dim + rank``); an empty list removes
every dimension of size 1. The data is copied unchanged (any quantisation). Shape: the input's
without those dimensions. Not patchable. Overlap: ALIAS (the output is the input's bytes; the
generated C does nothing, or copies when the plan places them apart). .tflite: SqueezeOptions with
squeeze_dims.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import InvalidValueError
from ..ir.checks import check_requantisation
from ..ir.ops import OpKind
from .reshape import AliasingOp


@dataclass(frozen=True)
class SqueezeAttrs:
    """SQUEEZE: remove ``squeeze_dims`` (negative: from the end); empty: every size-1 dimension."""

    squeeze_dims: tuple[int, ...] = ()


def squeezed_shape(shape: tuple[int, ...], squeeze_dims: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` without the squeezed dimensions (ValueError for one out of range or not 1)."""
    rank = len(shape)
    if not squeeze_dims:
        return tuple(d for d in shape if d != 1)
    remove = set()
    for dim in squeeze_dims:
        if not -rank <= dim < rank:
            raise ValueError(f"SQUEEZE dimension {dim} out of range for a rank-{rank} input")
        position = dim + rank if dim < 0 else dim
        if shape[position] != 1:
            raise ValueError(f"SQUEEZE dimension {dim} has size {shape[position]}, expected 1")
        remove.add(position)
    return tuple(d for i, d in enumerate(shape) if i not in remove)


class Squeeze(AliasingOp):
    """SQUEEZE (see the module docstring)."""

    kinds = (OpKind.SQUEEZE,)
    attrs_type = SqueezeAttrs
    tflite_options = BuiltinOptions.SqueezeOptions
    tflite_option_fields = (tflite.SqueezeOptions, ("SqueezeDims",))

    def output_shape(self, op, input_shapes):
        """The input shape without the squeezed dimensions."""
        return squeezed_shape(tuple(input_shapes[0]), op.attrs.squeeze_dims)

    def check_values(self, graph, op, where):
        """Every squeezed dimension is in range and of size 1; the requantisation ``in / out``."""
        try:
            squeezed_shape(graph.tensors[op.inputs[0]].shape, op.attrs.squeeze_dims)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {exc}") from None
        check_requantisation(graph, op, where, op.inputs[:1])

    def decode_attrs(self, kind, reader, rop, where):
        """The squeezed dimensions of SqueezeOptions."""
        return SqueezeAttrs(tuple(int(d) for d in rop.options.get("SqueezeDims", ()) or ()))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """SqueezeOptions with squeeze_dims."""
        dims = builder.CreateNumpyVector(np.asarray(attrs.squeeze_dims, dtype="<i4"))
        tflite.SqueezeOptionsStart(builder)
        tflite.SqueezeOptionsAddSqueezeDims(builder, dims)
        return tflite.SqueezeOptionsEnd(builder)


OP_DEFS = (Squeeze(),)
