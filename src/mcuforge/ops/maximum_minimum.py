"""MAXIMUM and MINIMUM of two int8 tensors (``reference_ops::MaximumMinimumBroadcastSlow``),
bit-exact with TFLite Micro.

- TFLite Micro compares the raw int8 values, without requantising: the result means max / min of
  the real values only when both operands and the output share one quantisation, which TFLite's
  quantisation spec requires of these ops and the converter produces. That is checked at import
  (a differing scale or zero point is refused); the kernel is then ``np.maximum`` / ``np.minimum``.
- Shape: numpy broadcasting. Spatially pointwise (patchable); ELEMENTWISE overlap. No attributes.
- C: ``maximum_minimum``, the broadcast loop (`broadcast`; a constant operand is a const array).
- .tflite: an empty MaximumMinimumOptions table, as the converter writes it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import InvalidValueError
from ..ir.ops import OpKind
from ..ir.shapes import broadcast_shape
from .broadcast import BROADCAST_PARAMS, loop_args
from .lowering_types import KernelSpec, LayerCall, require_int8
from .reference_support import check_int8, quant_of, value_of
from .registry import OpDef, OverlapRule
from .tflite_common import empty_table

_FUNCTIONS: dict[OpKind, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    OpKind.MAXIMUM: np.maximum, OpKind.MINIMUM: np.minimum}


def maximum_minimum_int8(kind: OpKind, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """MAXIMUM or MINIMUM (``kind``) of the raw int8 values, with numpy broadcasting."""
    return _FUNCTIONS[kind](np.asarray(x1, np.int8), np.asarray(x2, np.int8)).astype(np.int8)


class MaximumMinimum(OpDef):
    """MAXIMUM / MINIMUM (see the module docstring)."""

    overlap = OverlapRule.ELEMENTWISE
    input_count = (2, 2)
    spatially_pointwise = True
    tflite_options = BuiltinOptions.MaximumMinimumOptions

    def __init__(self, kind: OpKind):
        self.kinds = (kind,)

    def output_shape(self, op, input_shapes):
        """The broadcast shape of the two operands."""
        return broadcast_shape(input_shapes[0], input_shapes[1])

    def check_values(self, graph, op, where):
        """Both operands quantised as the output (TFLite compares raw values)."""
        y_t = graph.tensors[op.outputs[0]]
        for name in op.inputs:
            x_t = graph.tensors[name]
            if x_t.quant is None or y_t.quant is None:
                continue
            x_q, y_q = x_t.quant, y_t.quant
            if float(np.float32(x_q.scale[0])) != float(np.float32(y_q.scale[0])) \
                    or x_q.zero_point[0] != y_q.zero_point[0]:
                raise InvalidValueError(
                    f"{where}: tensor {name}: scale {x_q.scale[0]:.6g}, zero point "
                    f"{x_q.zero_point[0]} differs from the output's ({y_q.scale[0]:.6g}, "
                    f"{y_q.zero_point[0]}); {op.kind.value} needs one quantisation for all three")

    def window(self, graph, op, axis):
        """Kernel 1, stride 1, no padding."""
        return 1, 1, 0

    def run(self, graph, op, env):
        """The raw int8 maximum / minimum of both operands."""
        a, b = op.inputs
        check_int8(graph, op, [a, b, op.outputs[0]])
        for name in (a, b, op.outputs[0]):
            quant_of(graph, op, name)
        return maximum_minimum_int8(op.kind, value_of(graph, env, a), value_of(graph, env, b))

    def lower(self, graph, index, op, target, overlapped, row_ring=False) -> LayerCall:
        """The broadcast loop comparing raw values."""
        require_int8(graph, index, op, (*op.inputs, op.outputs[0]))
        head, note = loop_args(graph, index, op, overlapped)
        function = "max" if op.kind is OpKind.MAXIMUM else "min"
        spec = KernelSpec(f"mf_{function}imum_s8", "maximum_minimum", BROADCAST_PARAMS,
                          {"function": function})
        return LayerCall(op.name, op.kind.value, spec, head, note=note)

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """An empty MaximumMinimumOptions table."""
        return empty_table(builder, tflite.MaximumMinimumOptionsStart,
                           tflite.MaximumMinimumOptionsEnd)


OP_DEFS = (MaximumMinimum(OpKind.MAXIMUM), MaximumMinimum(OpKind.MINIMUM))
