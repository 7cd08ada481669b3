"""Fold SPACE_TO_BATCH_ND -> CONV_2D / DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND into one dilated conv.

TensorFlow's converter expresses a convolution with dilation d = (dh, dw) as

    SPACE_TO_BATCH_ND(x, block d, paddings P) -> xb;  CONV(xb) stride 1, VALID -> yb;
    BATCH_TO_SPACE_ND(yb, block d, crops C) -> y

Interleaving the d_h * d_w phase images back, output row h reads padded rows ``h + C_top + k * dh``,
i.e. input rows ``h + (P_top - C_top) + k * dh``: a conv with dilation d and leading pad
``P_top - C_top`` (the trailing pad follows from y's size), the same per column. The fold is exact:
SPACE_TO_BATCH_ND pads with its output zero point (`ops.space_batch`), which is the conv's input
zero point, and a conv's padding is that zero point too. (TFLite Micro's SPACE_TO_BATCH_ND pads
with an indeterminate value, so on the original file it agrees wherever no padding is read.) A
chain whose pads would be negative is left as it is. Both data-movement ops must be 4-D with the
same block, the conv stride 1, dilation 1 and unpadded, and the intermediate tensors read by
nothing else and not graph outputs.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import Block, ConvAttrs, Graph, Op, OpKind, Pads

_CONVS = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D)


def fold_dilated_convs(graph: Graph) -> Graph:
    """A copy of ``graph`` with every foldable SPACE_TO_BATCH_ND -> conv -> BATCH_TO_SPACE_ND chain
    replaced by one dilated conv writing the BATCH_TO_SPACE_ND output."""
    consumers = graph.consumers()
    outputs = set(graph.outputs)
    replaced: dict[str, Op] = {}   # conv name -> the dilated conv
    removed: set[str] = set()      # the two data-movement ops of each folded chain
    dropped: set[str] = set()      # the intermediate tensors
    for op in graph.ops:
        chain = _chain(graph, op, consumers, outputs)
        if chain is None:
            continue
        conv, b2s, attrs = chain
        replaced[conv.name] = replace(conv, inputs=(op.inputs[0],) + conv.inputs[1:],
                                      outputs=b2s.outputs, attrs=attrs)
        removed.update((op.name, b2s.name))
        dropped.update((op.outputs[0], conv.outputs[0]))
    if not replaced:
        return graph
    ops = [replaced.get(op.name, op) for op in graph.ops if op.name not in removed]
    tensors = {name: t for name, t in graph.tensors.items() if name not in dropped}
    blocks = []
    for block in graph.blocks:
        kept = tuple(name for name in block.ops if name not in removed)
        if kept:
            blocks.append(Block(block.name, kept, block.kind, block.residual))
    return graph.with_ops(ops, tensors=tensors, blocks=blocks)


def _only_reader(name: str, consumers, outputs) -> Op | None:
    readers = consumers.get(name, [])
    return readers[0] if len(readers) == 1 and name not in outputs else None


def _chain(graph: Graph, s2b: Op, consumers, outputs) -> tuple[Op, Op, ConvAttrs] | None:
    """(conv, BATCH_TO_SPACE_ND, the dilated conv's attributes) when ``s2b`` starts a foldable
    chain."""
    if s2b.kind is not OpKind.SPACE_TO_BATCH_ND:
        return None
    conv = _only_reader(s2b.outputs[0], consumers, outputs)
    if conv is None or conv.kind not in _CONVS or conv.inputs[0] != s2b.outputs[0]:
        return None
    b2s = _only_reader(conv.outputs[0], consumers, outputs)
    if b2s is None or b2s.kind is not OpKind.BATCH_TO_SPACE_ND:
        return None
    x, y = graph.tensors[s2b.inputs[0]], graph.tensors[b2s.outputs[0]]
    block = s2b.attrs.block_shape
    if len(x.shape) != 4 or len(block) != 2 or b2s.attrs.block_shape != block:
        return None
    attrs = conv.attrs
    if attrs.stride != (1, 1) or attrs.dilation != (1, 1) or attrs.pads != Pads():
        return None
    kh, kw = graph.tensors[conv.inputs[1]].shape[1:3]
    lead = [p[0] - c[0] for p, c in zip(s2b.attrs.pads, b2s.attrs.pads)]
    trail = [out - size - before + (k - 1) * d for out, size, before, k, d in
             zip(y.shape[1:3], x.shape[1:3], lead, (kh, kw), block)]
    pads = Pads(lead[0], trail[0], lead[1], trail[1])
    if min(lead + trail) < 0:
        return None
    return conv, b2s, replace(attrs, pads=pads, dilation=tuple(block))
