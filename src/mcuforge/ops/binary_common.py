"""What ADD and MUL share: two int8 operands with numpy broadcasting and a fused clamp
(`ElementwiseAttrs`), spatially pointwise, the ELEMENTWISE overlap, and a C lowering that becomes
a 256-entry table when one operand is a one-valued constant (`lut.lower_binary_scalar`).

A subclass sets ``kernel`` (the reference ``kernel(a, b, clamp, a_q, b_q, y_q)``), its .tflite
options (``tflite_options``, ``tflite_option_fields`` and the generated ``options_functions``:
start, add-fused-activation, end) and `lower_tensors`, the lowering of two tensor operands.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..ir.ops import ElementwiseAttrs
from ..ir.shapes import broadcast_shape
from .lowering_types import LayerCall, unsupported
from .lut import lower_binary_scalar, scalar_constant_operand
from .reference_support import binary_int8
from .registry import OpDef, OverlapRule
from .tflite_common import fused_activation


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
        """The op's int8 kernel on both operands."""
        return self._run(graph, op, env)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """A 256-entry table when one operand is a one-valued constant, else `lower_tensors`."""
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
