"""EXPAND_DIMS: the same bytes with a dimension of size 1 inserted at ``axis``.

As TFLite Micro's ``kernels/expand_dims.cc``: the axis is a constant int32 input holding one value
in [-rank - 1, rank] (a negative axis counts from the end: ``axis + rank + 1``); the data is copied
unchanged (any quantisation). Shape: the input's with 1 inserted. Not patchable. Overlap: ALIAS
(the output is the input's bytes; the generated C does nothing, or copies when the plan places them
apart). .tflite: an empty ExpandDimsOptions table; the axis input is kept as an attribute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import InvalidValueError, ModelFileError
from ..ir.checks import check_requantisation
from ..ir.ops import OpKind
from .reshape import AliasingOp
from .tflite_common import empty_table


@dataclass(frozen=True)
class ExpandDimsAttrs:
    """EXPAND_DIMS: insert a dimension of size 1 at ``axis`` (negative: from the end)."""

    axis: int


def expanded_axis(axis: int, rank: int) -> int:
    """The non-negative position of the new dimension in the output (ValueError out of range)."""
    if not -rank - 1 <= axis <= rank:
        raise ValueError(f"EXPAND_DIMS axis {axis} out of range [{-rank - 1}, {rank}] for a "
                         f"rank-{rank} input")
    return axis + rank + 1 if axis < 0 else axis


class ExpandDims(AliasingOp):
    """EXPAND_DIMS (see the module docstring)."""

    kinds = (OpKind.EXPAND_DIMS,)
    attrs_type = ExpandDimsAttrs
    tflite_options = BuiltinOptions.ExpandDimsOptions
    folds_constant_input = True

    def output_shape(self, op, input_shapes):
        """The input shape with 1 inserted at the axis."""
        x = tuple(input_shapes[0])
        position = expanded_axis(op.attrs.axis, len(x))
        return x[:position] + (1,) + x[position:]

    def check_values(self, graph, op, where):
        """The axis is in range; the requantisation ``in / out``."""
        try:
            expanded_axis(op.attrs.axis, len(graph.tensors[op.inputs[0]].shape))
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {exc}") from None
        check_requantisation(graph, op, where, op.inputs[:1])

    def decode_attrs(self, kind, reader, rop, where):
        """The axis (a constant input of one value)."""
        values = reader.constant(rop, 1, "axis", where).reshape(-1)
        if values.size != 1:
            raise ModelFileError(f"{reader.source}: {where}: axis holds {values.size} values, "
                                 "expected 1")
        return ExpandDimsAttrs(int(values[0]))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """An empty ExpandDimsOptions table."""
        return empty_table(builder, tflite.ExpandDimsOptionsStart, tflite.ExpandDimsOptionsEnd)

    def folded_constants(self, attrs):
        """The axis, as a one-element vector."""
        return (("axis", np.array([attrs.axis])),)


OP_DEFS = (ExpandDims(),)
