"""Fold explicit PAD ops into the convolution that reads them.

Converters (TOCO for MCUNet, TinyNeuralNetwork for PyTorch models) express padding that TFLite's
SAME cannot, such as PyTorch's one pixel on every edge of a stride-2 conv, as a PAD op followed by a
VALID conv. The IR carries explicit per-edge pads on the conv, so such a PAD is folded into it:

    PAD(x, ((0,0), (t,b), (l,r), (0,0))) -> xp;  CONV(xp, ...) with pads P
    ==>  CONV(x, ...) with pads P + (t, b, l, r)

This is exact: TFLite's int8 PAD fills with its output zero point, and the conv pads with its input
zero point, which is the same value when the PAD keeps the quantisation (checked; float PAD fills 0).
A PAD is folded only when its output is read by nothing but that conv (as the conv's data input), is
not a graph output, and pads only the two spatial dimensions of a 4-D tensor. The padded tensor then
disappears, which is what makes the analytic memory figures match TinyEngine's (it fuses PAD the
same way). The writer (`tflite_writer.py`) puts a PAD op back for pads that are neither SAME nor
VALID, so read -> write -> read is still the identity.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import Block, ConvAttrs, Graph, Op, OpKind, Pads

_CONVS = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D)


def fold_pads(graph: Graph) -> Graph:
    """A copy of ``graph`` with every foldable PAD merged into the conv that reads it."""
    consumers = graph.consumers()
    outputs = set(graph.outputs)
    folded: dict[str, tuple[str, Pads]] = {}  # padded tensor -> (source tensor, spatial pads)
    removed_ops: set[str] = set()
    ops: list[Op] = []
    for op in graph.ops:
        pads = _foldable(graph, op, consumers, outputs)
        if pads is not None:
            folded[op.outputs[0]] = (op.inputs[0], pads)
            removed_ops.add(op.name)
            continue
        if op.kind in _CONVS and op.inputs[0] in folded:
            source, extra = folded[op.inputs[0]]
            attrs = op.attrs
            assert isinstance(attrs, ConvAttrs)
            pads = Pads(attrs.pads.top + extra.top, attrs.pads.bottom + extra.bottom,
                        attrs.pads.left + extra.left, attrs.pads.right + extra.right)
            op = replace(op, inputs=(source,) + op.inputs[1:], attrs=replace(attrs, pads=pads))
        ops.append(op)
    if not folded:
        return graph
    tensors = {name: t for name, t in graph.tensors.items() if name not in folded}
    blocks = []
    for block in graph.blocks:
        kept = tuple(name for name in block.ops if name not in removed_ops)
        if kept:
            blocks.append(Block(block.name, kept, block.kind, block.residual))
    return graph.with_ops(ops, tensors=tensors, blocks=blocks)


def _foldable(graph: Graph, op: Op, consumers: dict[str, list[Op]], outputs: set[str]) -> Pads | None:
    """The spatial pads of ``op`` when it is a PAD that can be folded into its one reader."""
    if op.kind is not OpKind.PAD or len(op.inputs) != 1:
        return None
    padded = op.outputs[0]
    readers = consumers.get(padded, [])
    if padded in outputs or len(readers) != 1:
        return None
    reader = readers[0]
    if reader.kind not in _CONVS or reader.inputs[0] != padded or padded in reader.inputs[1:]:
        return None
    paddings = op.attrs.paddings
    if len(paddings) != 4 or paddings[0] != (0, 0) or paddings[3] != (0, 0):
        return None
    if any(p < 0 for pair in paddings for p in pair):
        return None
    source, target = graph.tensors[op.inputs[0]], graph.tensors[padded]
    if source.dtype is not target.dtype or source.quant != target.quant:
        return None
    return Pads(paddings[1][0], paddings[1][1], paddings[2][0], paddings[2][1])
