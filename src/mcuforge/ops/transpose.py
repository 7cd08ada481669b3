"""TRANSPOSE by a permutation (bytes move, values do not change).

Shape: the input's dimensions permuted. Not patchable; no overlap. C: ``transpose`` (rank <= 4, a
4-D loop over the output with permuted input strides). .tflite: an empty TransposeOptions table; the
permutation input is kept as an attribute.
"""

from __future__ import annotations

import math

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..ir.ops import OpKind, TransposeAttrs
from . import reference_support as ref
from .lowering_types import KernelSpec, LayerCall, four_d, io_buffers, require_int8, unsupported
from .registry import OpDef
from .tflite_common import empty_table


def transpose(x: np.ndarray, attrs: TransposeAttrs) -> np.ndarray:
    """TRANSPOSE by ``attrs.perm``."""
    return np.ascontiguousarray(np.transpose(x, attrs.perm))


class Transpose(OpDef):
    """TRANSPOSE (see the module docstring)."""

    kinds = (OpKind.TRANSPOSE,)
    attrs_type = TransposeAttrs
    tflite_options = BuiltinOptions.TransposeOptions
    folds_constant_input = True

    def output_shape(self, op, input_shapes):
        """The permuted input shape."""
        a = op.attrs
        x = input_shapes[0]
        if sorted(a.perm) != list(range(len(x))):
            raise ValueError(f"bad permutation {a.perm} for {x}")
        return tuple(x[p] for p in a.perm)

    def run(self, graph, op, env):
        """`transpose` (any dtype)."""
        return transpose(ref.value_of(graph, env, op.inputs[0]), op.attrs)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """TRANSPOSE of a rank <= 4 tensor."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        attrs = op.attrs
        assert isinstance(attrs, TransposeAttrs)
        rank = len(x_t.shape)
        if rank > 4:
            raise unsupported(graph, index, op, "TRANSPOSE of a tensor of rank > 4")
        in_strides = [math.prod(x_t.shape[i + 1:]) for i in range(rank)]
        extra = 4 - rank
        perm = list(range(extra)) + [p + extra for p in attrs.perm]
        strides4 = [0] * extra + in_strides
        spec = KernelSpec(
            "mf_transpose_s8", "transpose",
            "const int8_t *in, int8_t *out, int32_t O0, int32_t O1, int32_t O2, int32_t O3, "
            "int32_t S0, int32_t S1, int32_t S2, int32_t S3")
        args = (*io_buffers(op), *four_d(y_t.shape), *(strides4[p] for p in perm))
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """The permutation (a constant input)."""
        perm = reader.constant(rop, 1, "permutation", where).reshape(-1)
        return TransposeAttrs(tuple(int(p) for p in perm))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """An empty TransposeOptions table."""
        return empty_table(builder, tflite.TransposeOptionsStart, tflite.TransposeOptionsEnd)

    def folded_constants(self, attrs):
        """The permutation."""
        return (("perm", np.array(attrs.perm)),)


OP_DEFS = (Transpose(),)
