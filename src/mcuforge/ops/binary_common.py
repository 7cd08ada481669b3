"""What ADD and MUL share: two int8 operands with numpy broadcasting and a fused clamp
(`ElementwiseAttrs`), spatially pointwise, the ELEMENTWISE overlap, and a C lowering that becomes
a 256-entry table when one operand is a one-valued constant (`lut.lower_binary_scalar`).

A subclass sets ``kernel`` (the reference ``kernel(a, b, clamp, a_q, b_q, y_q)``), its .tflite
options (``tflite_options``, ``tflite_option_fields`` and the generated ``options_functions``:
start, add-fused-activation, end) and `lower_tensors`, the lowering of two tensor operands.

int16 operands (16x8, zero point 0) run the same ``kernel`` (which gives int16 for int16 inputs) and
lower through `lower_tensors` (no table); `int16_operands` refuses an int16 mixed with another
dtype in one line.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.ops import ElementwiseAttrs
from ..ir.shapes import broadcast_shape
from ..ir.tensor import DType
from . import reference_support as ref
from .lowering_types import LayerCall, unsupported
from .lut import lower_binary_scalar, scalar_constant_operand
from .reference_support import binary_int8
from .registry import OpDef, OverlapRule
from .tflite_common import fused_activation


def int16_operands(graph, op, where: str) -> bool:
    """Whether a binary op is int16 (both operands and the output int16); an int16 mixed with
    another dtype raises `UnsupportedOpError` of one line naming ``where``, the tensor, its dtype."""
    names = (*op.inputs, op.outputs[0])
    dtypes = [graph.tensor(n).dtype for n in names]
    if DType.INT16 not in dtypes:
        return False
    for role, name, dtype in zip(("input 1", "input 2", "output"), names, dtypes):
        if dtype is not DType.INT16:
            raise UnsupportedOpError(
                f"unsupported dtype at {where}: {role} tensor {name} is {dtype.value}; an int16 "
                f"{op.kind.value} takes int16 operands and output")
    return True


class BinaryElementwiseOp(OpDef):
    """ADD / MUL (see the module docstring)."""

    attrs_type = ElementwiseAttrs
    overlap = OverlapRule.ELEMENTWISE
    input_count = (2, 2)
    spatially_pointwise = True
    options_functions: tuple[Callable[..., Any], ...] = ()

    def __init__(self, kind, kernel: Callable[..., np.ndarray]):
        self.kinds = (kind,)
        self.kernel = kernel
        self._run = binary_int8(kernel)

    def output_shape(self, op, input_shapes):
        """The broadcast shape of the two operands."""
        return broadcast_shape(input_shapes[0], input_shapes[1])

    def window(self, graph, op, axis):
        """Kernel 1, stride 1, no padding."""
        return 1, 1, 0

    def run(self, graph, op, env):
        """The op's kernel on both operands: int8, or int16 (`int16_operands`)."""
        if not int16_operands(graph, op, ref.op_location(graph, op)):
            return self._run(graph, op, env)
        a, b = op.inputs
        return self.kernel(ref.value_of(graph, env, a), ref.value_of(graph, env, b), op.attrs.clamp,
                           ref.quant_of(graph, op, a), ref.quant_of(graph, op, b),
                           ref.quant_of(graph, op, op.outputs[0]))

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """A 256-entry table when one int8 operand is a one-valued constant, else `lower_tensors`
        (always for int16)."""
        if int16_operands(graph, op, f"operator #{index} {op.name} ({op.kind.value})"):
            return self.lower_tensors(graph, index, op, target, overlapped)
        position = scalar_constant_operand(graph, op)
        if position is not None:
            return lower_binary_scalar(graph, index, op, self.kernel, overlapped, position)
        return self.lower_tensors(graph, index, op, target, overlapped)

    def lower_tensors(self, graph, index, op, target, overlapped) -> LayerCall:
        """The lowering of two tensor operands (each op's own kernel)."""
        raise unsupported(graph, index, op, "no C kernel for two tensor operands")

    def decode_attrs(self, kind, reader, rop, where):
        """The fused activation."""
        return ElementwiseAttrs(reader.clamp(rop, where))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """The options table with the fused activation."""
        start, add_activation, end = self.options_functions
        start(builder)
        add_activation(builder, fused_activation(kind, attrs.clamp, output_name))
        return end(builder)
