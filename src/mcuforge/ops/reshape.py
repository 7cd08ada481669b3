"""RESHAPE to a fully resolved shape: the same bytes under another shape.

Shape: ``new_shape`` (same element count). Not patchable. Overlap: ALIAS (the output is the input's
bytes; the generated C does nothing, or copies when the plan places them apart). .tflite:
ReshapeOptions with new_shape; the shape input is kept as an attribute. Reading, the new shape comes
from the constant shape input, else the options, else the output tensor; one -1 is resolved from
the input's element count.
"""

from __future__ import annotations

import math

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import ModelFileError
from ..ir.ops import OpKind, ReshapeAttrs
from ..ir.tensor import DType
from . import reference_support as ref
from .lowering_types import LayerCall, io_buffers
from .registry import OpDef, OverlapRule


class AliasingOp(OpDef):
    """An op whose output is its input's bytes under another shape (RESHAPE, EXPAND_DIMS, SQUEEZE):
    the planner lays the output over a dying input (overlap rule ALIAS), so the C does nothing;
    otherwise it copies the bytes."""

    overlap = OverlapRule.ALIAS

    def run(self, graph, op, env):
        """The input's values under the output's shape (any dtype)."""
        return ref.value_of(graph, env, op.inputs[0]).reshape(graph.tensor(op.outputs[0]).shape)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """Nothing when the planner aliases the output to the input, else a byte copy."""
        x_t = graph.tensors[op.inputs[0]]
        src, dst = io_buffers(op)
        return LayerCall(op.name, op.kind.value, None, (), copy=(src, dst, x_t.nbytes),
                         note="alias" if overlapped else "copy")


class Reshape(AliasingOp):
    """RESHAPE (see the module docstring)."""

    input_dtypes = frozenset({DType.INT8, DType.INT16})  # int16: 16x8 activations (`ops.wide`)
    output_dtypes = frozenset({DType.INT8, DType.INT16})

    kinds = (OpKind.RESHAPE,)
    attrs_type = ReshapeAttrs
    tflite_options = BuiltinOptions.ReshapeOptions
    tflite_option_fields = (tflite.ReshapeOptions, ("NewShape",))
    folds_constant_input = True

    def output_shape(self, op, input_shapes):
        """``new_shape`` when it holds as many elements as the input."""
        a = op.attrs
        x = input_shapes[0]
        if math.prod(a.new_shape) != math.prod(x):
            raise ValueError(f"cannot reshape {x} to {a.new_shape}")
        return tuple(a.new_shape)

    def decode_attrs(self, kind, reader, rop, where):
        """The new shape, resolved (see the module docstring)."""
        target: tuple[int, ...] | None = None
        values = reader.constant_or_none(rop, 1, "shape", where)
        if values is not None:
            target = tuple(int(v) for v in values.reshape(-1))
        if target is None and rop.options.get("NewShape"):
            target = tuple(int(v) for v in rop.options["NewShape"])
        if target is None:
            target = reader.shape(rop.outputs[0])
        total = math.prod(reader.shape(rop.inputs[0]))
        unknown = [i for i, d in enumerate(target) if d == -1]
        known = math.prod(d for d in target if d != -1)
        if len(unknown) > 1 or any(d < -1 for d in target) or (unknown and known == 0):
            raise ModelFileError(f"{reader.source}: {where}: cannot resolve new shape {list(target)}")
        if unknown:
            if total % known:
                raise ModelFileError(f"{reader.source}: {where}: cannot reshape {total} elements "
                                     f"to {list(target)}")
            target = tuple(total // known if d == -1 else d for d in target)
        return ReshapeAttrs(target)

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """ReshapeOptions with new_shape."""
        new_shape = builder.CreateNumpyVector(np.asarray(attrs.new_shape, dtype="<i4"))
        tflite.ReshapeOptionsStart(builder)
        tflite.ReshapeOptionsAddNewShape(builder, new_shape)
        return tflite.ReshapeOptionsEnd(builder)

    def folded_constants(self, attrs):
        """The new shape."""
        return (("shape", np.array(attrs.new_shape)),)


OP_DEFS = (Reshape(),)
