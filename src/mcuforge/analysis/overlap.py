"""Which operators may write their output over an input, and how much extra memory that needs.

The analytic memory model (`memory.py`) and the arena planner (`planner/arena.py`) share these rules,
so that an overlap the analysis counts is one the planner lays out and the generated kernels honour.
An overlap is legal only when the input dies at that op (no later reader, not a graph output).
Which kind an op may use is its op module's ``overlap`` rule (`mcuforge.ops`); the byte arithmetic
of each kind is here.

Kinds:
- ``ALIAS``: RESHAPE; the output is the input's bytes under another shape (no copy, no extra memory).
- ``INPLACE_DEPTHWISE`` (TinyEngine): an int8 depthwise conv computes one output channel plane into a
  temporary buffer, then writes it into that channel's positions of the input buffer; the output
  occupies the start of the input's region (stride 2 frees the tail). Extra: one ``H_in x W_in`` plane
  (docs/architecture.md convention; the kernel needs only ``H_out x W_out``). With option
  ``depthwise_row_buffer`` the kernel keeps only a ring of its latest output rows instead
  (`row_ring.py`: ``pad_top // stride + 1`` rows of ``W_out`` bytes for the usual pads).
- ``ELEMENTWISE``: ADD, MUL, RELU, RELU6, HARD_SWISH, LOGISTIC, int8->int8 QUANTIZE: output pixel i
  depends only on input pixel i and has the same size; it is written at the input's offset (the
  residual ADD writes into p). Extra: none.
- ``POINTWISE`` (vMCU, MLSys'24; option ``overlap_pointwise``): a 1x1, stride-1, unpadded CONV_2D reads
  pixel i and writes pixel i. With N pixels, C_in and C_out bytes per pixel: for expansion
  (C_out > C_in) the input sits at offset N*(C_out - C_in) inside the output region; for projection
  (C_out <= C_in) the output starts at the input's start. Pixels are processed in order and one pixel's
  input is first copied to a C_in-byte buffer, so the op needs max(in, out) + C_in bytes, not in + out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ir import ConvAttrs, DType, Graph, Op
from ..ops import OverlapRule, kinds_where, op_def
from ..ops.row_ring import row_ring_bytes


class OverlapKind(enum.Enum):
    """How an op's output shares memory with one of its inputs."""

    ALIAS = "alias"
    INPLACE_DEPTHWISE = "inplace_depthwise"
    ELEMENTWISE = "elementwise"
    POINTWISE = "pointwise"


@dataclass(frozen=True)
class Overlap:
    """The output ``output`` overlaps input ``input``; the op needs ``extra_bytes`` besides the larger
    of the two; ``output_offset`` is where the output starts relative to the input's start (negative
    when the output region starts before the input, as in pointwise expansion)."""

    kind: OverlapKind
    input: str
    output: str
    extra_bytes: int
    output_offset: int


@dataclass(frozen=True)
class OverlapOptions:
    """Which overlap kinds are allowed. ALIAS and ELEMENTWISE are always on (docs/architecture.md conventions).
    Built from the one conventions object (`conventions.MemoryConventions.overlap`), which holds the
    defaults."""

    inplace_depthwise: bool
    overlap_pointwise: bool
    depthwise_row_buffer: bool


# Kinds whose op module allows the ELEMENTWISE overlap (read by the patch package as well).
_ELEMENTWISE = kinds_where(lambda definition: definition.overlap is OverlapRule.ELEMENTWISE)


def is_elementwise(op: Op) -> bool:
    """Whether ``op`` may write its output over a same-shaped input (the ELEMENTWISE kind)."""
    return op.kind in _ELEMENTWISE


def find_overlap(graph: Graph, op: Op, dying: set[str], options: OverlapOptions) -> Overlap | None:
    """The overlap ``op`` may use, given the set of tensors whose last use is this op (``dying``).
    An overlap whose temp buffer is at least as large as the bytes it shares saves nothing (e.g. an
    in-place depthwise conv with one channel) and is not offered."""
    overlap = _legal_overlap(graph, op, dying, options)
    if overlap is not None and overlap.extra_bytes > 0 and overlap.extra_bytes >= min(
            graph.tensors[overlap.input].nbytes, graph.tensors[overlap.output].nbytes):
        return None
    return overlap


def _legal_overlap(graph: Graph, op: Op, dying: set[str], options: OverlapOptions) -> Overlap | None:
    if len(op.outputs) != 1:
        return None
    out = graph.tensors[op.outputs[0]]
    candidates = [name for name in graph.activation_inputs(op) if name in dying]
    if not candidates:
        return None
    rule = op_def(op.kind).overlap
    if rule is OverlapRule.ALIAS:
        src = candidates[0]
        return Overlap(OverlapKind.ALIAS, src, out.name, 0, 0)
    if rule is OverlapRule.INPLACE_DEPTHWISE and options.inplace_depthwise:
        src = graph.tensors[op.inputs[0]]
        if src.name in candidates and src.dtype is DType.INT8 and out.dtype is DType.INT8 \
                and src.shape[3] == out.shape[3]:
            element = src.nbytes // src.num_elements
            if options.depthwise_row_buffer:
                attrs = op.attrs
                assert isinstance(attrs, ConvAttrs)
                extra = row_ring_bytes(src.shape[1], src.shape[2], out.shape[1], out.shape[2],
                                       attrs.stride[0], attrs.pads.top, element)
            else:
                extra = src.shape[1] * src.shape[2] * element
            return Overlap(OverlapKind.INPLACE_DEPTHWISE, src.name, out.name, extra, 0)
        return None
    if rule is OverlapRule.ELEMENTWISE:
        matching = [name for name in candidates if graph.tensors[name].shape == out.shape
                    and graph.tensors[name].dtype.bits == out.dtype.bits]
        if len(matching) > 1:
            # Of two dying inputs, write over the older one (the residual stream of a block rather
            # than the branch just computed): the stream then keeps its offset from block to block,
            # which leaves the branch's region whole for the next block's expansion.
            produced = {t: k for k, o in enumerate(graph.ops) for t in o.outputs}
            matching.sort(key=lambda name: produced.get(name, -1))
        if matching:
            return Overlap(OverlapKind.ELEMENTWISE, matching[0], out.name, 0, 0)
        return None
    if rule is OverlapRule.POINTWISE and options.overlap_pointwise and _is_pointwise(graph, op):
        src = graph.tensors[op.inputs[0]]
        if src.name not in candidates or src.dtype.bits != 8 or out.dtype.bits != 8:
            return None
        pixels = src.shape[1] * src.shape[2]
        c_in, c_out = src.shape[3], out.shape[3]
        offset = -pixels * (c_out - c_in) if c_out > c_in else 0
        return Overlap(OverlapKind.POINTWISE, src.name, out.name, c_in, offset)
    return None


def _is_pointwise(graph: Graph, op: Op) -> bool:
    attrs = op.attrs
    assert isinstance(attrs, ConvAttrs)
    weight = graph.tensors[op.inputs[1]].shape
    no_pad = attrs.pads.top == attrs.pads.bottom == attrs.pads.left == attrs.pads.right == 0
    return weight[1] == weight[2] == 1 and attrs.stride == (1, 1) and no_pad and weight[3] == \
        graph.tensors[op.inputs[0]].shape[3]
