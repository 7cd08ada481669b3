"""The C lowering of int8 ops that are a function of one int8 input value: a 256-entry table.

With the quantisation parameters fixed per layer, RELU, RELU6, HARD_SWISH, LOGISTIC, int8 -> int8
QUANTIZE, and ADD / MUL with a one-valued constant operand (MobileNetV3's hard sigmoid:
``relu6(x + 3)``, ``x * 1/6``) map every int8 value to one int8 value. The generator evaluates the op's
own reference kernel on all 256 values and emits the results as a per-layer ``int8_t[256]`` table in
Flash: the C is then bit-exact by construction, and one byte load per element. When the table is
the identity clipped to a range (RELU6, and RELU with equal input and output quantisation) the layer
calls a clamp kernel instead and stores no table. Element i of the output depends only on element i
of the input, so the output may overlap the input (the ELEMENTWISE overlap).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir.ops import ElementwiseAttrs, Op, OpKind
from .lowering_types import (Buffer, ConstArray, KernelSpec, LayerCall, c_ident, require_int8,
                             unsupported)
from .reference_support import unary_int8
from .registry import OpDef, OverlapRule

# Every int8 value, ordered by its unsigned byte: the C indexes the table with (uint8_t)x.
BY_BYTE = np.arange(256, dtype=np.uint8).view(np.int8)

_LUT_SPEC = KernelSpec("mf_lut_s8", "elementwise_lut",
                       "const int8_t *in, int8_t *out, int32_t n, const int8_t *lut")
_CLAMP_SPEC = KernelSpec("mf_clamp_s8", "elementwise_clamp",
                         "const int8_t *in, int8_t *out, int32_t n, int32_t lo, int32_t hi")


def table_call(graph, index: int, op: Op, source: str, table: np.ndarray,
               overlapped: bool) -> LayerCall:
    """The layer for ``y = table[x]`` over ``source`` (a clamp when the table is a clipped identity)."""
    table = np.asarray(table).astype(np.int64).reshape(256)
    n = graph.tensors[source].num_elements
    io = (Buffer("tensor", source), Buffer("tensor", op.outputs[0]), n)
    lo, hi = int(table[BY_BYTE == -128][0]), int(table[BY_BYTE == 127][0])  # f(-128), f(127)
    if lo <= hi and np.array_equal(table, np.clip(BY_BYTE.astype(np.int64), lo, hi)):
        return LayerCall(op.name, op.kind.value, _CLAMP_SPEC, (*io, lo, hi),
                         note=f"clamp [{lo}, {hi}]" + (", in place" if overlapped else ""))
    lut = ConstArray(c_ident(index, "lut"), "int8_t", table.astype(np.int8))
    return LayerCall(op.name, op.kind.value, _LUT_SPEC, (*io, lut),
                     note="256-entry table" + (", in place" if overlapped else ""))


def lower_unary_table(graph, index: int, op: Op, kernel: Callable[..., np.ndarray],
                      overlapped: bool) -> LayerCall:
    """A unary op as the table of its reference ``kernel(x, x_q, y_q)`` (or a clamp)."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (x_t.name, y_t.name))
    try:
        table = kernel(BY_BYTE, x_t.quant, y_t.quant)
    except ValueError as exc:
        raise unsupported(graph, index, op, str(exc)) from None
    return table_call(graph, index, op, op.inputs[0], table, overlapped)


def scalar_constant_operand(graph, op: Op) -> int | None:
    """For ADD / MUL: the position of a constant operand that holds a single value and does not
    widen the output (so the op is a unary function of the other operand), else None."""
    if len(op.inputs) != 2:
        return None
    y_shape = graph.tensors[op.outputs[0]].shape
    for position, name in enumerate(op.inputs):
        tensor, other = graph.tensors[name], graph.tensors[op.inputs[1 - position]]
        if tensor.constant and tensor.data is not None and not other.constant \
                and other.shape == y_shape and np.unique(np.asarray(tensor.data)).size == 1:
            return position
    return None


def lower_binary_scalar(graph, index: int, op: Op, kernel: Callable[..., np.ndarray],
                        overlapped: bool, position: int) -> LayerCall:
    """ADD or MUL (reference ``kernel(a, b, clamp, a_q, b_q, y_q)``) of a tensor and a one-valued
    constant (operand ``position``) as a table."""
    names = tuple(op.inputs)
    require_int8(graph, index, op, (*names, op.outputs[0]))
    assert isinstance(op.attrs, ElementwiseAttrs)
    constant = np.asarray(graph.tensors[names[position]].data).reshape(-1)[:1]
    operands = [BY_BYTE, BY_BYTE]
    operands[position] = np.broadcast_to(constant.astype(np.int8), (256,))
    quants = [graph.tensors[name].quant for name in names]
    table = kernel(operands[0], operands[1], op.attrs.clamp, quants[0], quants[1],
                   graph.tensors[op.outputs[0]].quant)
    return table_call(graph, index, op, names[1 - position], table, overlapped)


class UnaryTableOp(OpDef):
    """An int8 op that is a function of one input value (``kernel(x, x_q, y_q)``): shape
    unchanged, spatially pointwise (a 1 x 1 window), ELEMENTWISE overlap, the reference kernel run
    through `reference_support.unary_int8`, and the C a 256-entry table of that kernel."""

    overlap = OverlapRule.ELEMENTWISE
    spatially_pointwise = True

    def __init__(self, kind: OpKind, kernel: Callable[..., np.ndarray]):
        self.kinds = (kind,)
        self.kernel = kernel
        self._run = unary_int8(kernel)

    def window(self, graph, op, axis):
        """Kernel 1, stride 1, no padding."""
        return 1, 1, 0

    def run(self, graph, op, env):
        """The op's int8 kernel."""
        return self._run(graph, op, env)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """The 256-entry table of the reference kernel (a clamp when it is one)."""
        return lower_unary_table(graph, index, op, self.kernel, overlapped)
