"""PACK: N tensors of one shape stacked along a new dimension ``axis`` (bytes move, values do not
change).

As TFLite Micro's ``kernels/pack.cc`` (``PackImpl``): the output has the inputs' shape with N
inserted at ``axis`` (negative: ``axis + rank + 1``); for each of the ``outer`` = prod(shape[:axis])
slices, the inputs' contiguous blocks of prod(shape[axis:]) elements follow one another. TFLite
copies raw bytes, and requires (for int8) that every input shares the output's scale and zero point,
which the value checks enforce. Shape: see above. Not patchable; no overlap. C: the ``concat``
template (the same block copy as CONCATENATION, as ``mf_pack<N>_s8``). .tflite: PackOptions with
values_count and axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import InvalidValueError
from ..ir.ops import OpKind
from . import reference_support as ref
from .lowering_types import Buffer, KernelSpec, LayerCall, require_int8
from .registry import OpDef


@dataclass(frozen=True)
class PackAttrs:
    """PACK of ``values_count`` inputs along the new dimension ``axis`` (negative: from the end
    of the output)."""

    values_count: int
    axis: int = 0


def packed_axis(axis: int, rank: int) -> int:
    """The non-negative position of the new dimension in the output (ValueError out of range)."""
    if not -rank - 1 <= axis <= rank:
        raise ValueError(f"PACK axis {axis} out of range [{-rank - 1}, {rank}] for rank-{rank} "
                         "inputs")
    return axis + rank + 1 if axis < 0 else axis


class Pack(OpDef):
    """PACK (see the module docstring)."""

    kinds = (OpKind.PACK,)
    attrs_type = PackAttrs
    tflite_options = BuiltinOptions.PackOptions
    tflite_option_fields = (tflite.PackOptions, ("ValuesCount", "Axis"))
    input_count = (1, 1 << 16)

    def output_shape(self, op, input_shapes):
        """The inputs' common shape with their count inserted at the axis."""
        x = tuple(input_shapes[0])
        if any(tuple(s) != x for s in input_shapes[1:]):
            raise ValueError(f"cannot pack inputs of shapes {[list(s) for s in input_shapes]}")
        if op.attrs.values_count != len(input_shapes):
            raise ValueError(f"values_count {op.attrs.values_count} but {len(input_shapes)} inputs")
        position = packed_axis(op.attrs.axis, len(x))
        return x[:position] + (len(input_shapes),) + x[position:]

    def check_values(self, graph, op, where):
        """values_count is the number of inputs and the axis is in range; every quantised input
        has the output's scale and zero point."""
        try:
            if op.attrs.values_count != len(op.inputs):
                raise ValueError(f"values_count {op.attrs.values_count} but {len(op.inputs)} "
                                 "inputs")
            packed_axis(op.attrs.axis, len(graph.tensors[op.inputs[0]].shape))
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {exc}") from None
        y_q = graph.tensors[op.outputs[0]].quant
        for name in op.inputs:
            x_q = graph.tensors[name].quant
            if x_q is None or y_q is None:
                continue
            if x_q.zero_point[0] != y_q.zero_point[0] or \
                    np.float32(x_q.scale[0]) != np.float32(y_q.scale[0]):
                raise InvalidValueError(
                    f"{where}: input tensor {name} has scale {x_q.scale[0]:g} and zero point "
                    f"{x_q.zero_point[0]}, the output {y_q.scale[0]:g} and {y_q.zero_point[0]} "
                    "(PACK copies bytes: they must be equal)")

    def run(self, graph, op, env):
        """``np.stack`` of the inputs (any dtype)."""
        xs = [ref.value_of(graph, env, name) for name in op.inputs]
        return np.stack(xs, axis=packed_axis(op.attrs.axis, xs[0].ndim))

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """For each outer slice, the inputs' blocks one after the other (the ``concat`` kernel)."""
        y_t = graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (*op.inputs, y_t.name))
        x_shape = graph.tensors[op.inputs[0]].shape
        axis = packed_axis(op.attrs.axis, len(x_shape))
        outer, inner = math.prod(x_shape[:axis]), math.prod(x_shape[axis:])
        n = len(op.inputs)
        params = ", ".join([f"const int8_t *in{i}" for i in range(n)]
                           + ["int8_t *out", "int32_t outer"]
                           + [f"int32_t inner{i}" for i in range(n)])
        spec = KernelSpec(f"mf_pack{n}_s8", "concat", params, {"n_inputs": n})
        args = (*(Buffer("tensor", name) for name in op.inputs), Buffer("tensor", y_t.name), outer,
                *([inner] * n))
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """values_count and axis of PackOptions."""
        return PackAttrs(int(rop.options.get("ValuesCount", 0)), int(rop.options.get("Axis", 0)))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """PackOptions with values_count and axis."""
        tflite.PackOptionsStart(builder)
        tflite.PackOptionsAddValuesCount(builder, attrs.values_count)
        tflite.PackOptionsAddAxis(builder, attrs.axis)
        return tflite.PackOptionsEnd(builder)


OP_DEFS = (Pack(),)
