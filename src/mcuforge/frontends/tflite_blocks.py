"""Infer network blocks of a graph read from a .tflite file (which records none).

The rule, applied to the ops in execution order:

1. Residual blocks. For every ADD with two activation inputs, find the branch tensor: the latest
   tensor (by the position of its producer; the graph input counts as earliest) from which both
   inputs are reachable. The ops from the first reader of that tensor up to the ADD form a residual
   block (kind ``"mbconv"`` when it holds a depthwise conv, else ``"residual"``), followed by the
   elementwise activation ops that only post-process the ADD's output. Overlapping ranges merge.
2. Layers. The other ops are cut into layers: each "main" op (conv, depthwise, fully connected,
   pooling, MEAN, CONCATENATION, RESIZE, and ADD/MUL of two activations) with the PAD ops just before
   it (they pad its input) and the ops after it up to the next main op (activations, QUANTIZE,
   RESHAPE, SOFTMAX, ...). Ops before the first main op join the first layer.
3. Merging. Consecutive layers that chain a 1x1 conv, a depthwise conv and a 1x1 conv become one
   ``"mbconv"`` block (a non-residual inverted bottleneck); a depthwise conv followed by a 1x1 conv
   becomes one ``"dwsep"`` block (MobileNetV1, DS-CNN). Other layers are blocks of their own.
4. Stem and head. A single-layer block holding the first conv of the graph is the ``"stem"``; the
   layers after the last spatial op (conv, depthwise, pooling that keeps a spatial extent) are
   merged into one ``"head"`` block (global pooling and convs over a 1x1 input are not spatial).
   Graphs without spatial ops keep one block per layer.

Blocks are named ``block0``, ``block1``, ... in execution order; every op is in exactly one block.
Zoo and spec graphs call theirs ``b0``, ``b1``, ... (their op names carry that prefix, which
quantisation relies on), and the names stay as they are, so the figures and reports of either kind
keep their names; where a user types a block, `Graph.block_name` takes either spelling for either.
"""

from __future__ import annotations

from ..ir import Block, Graph, Op, OpKind

_SPATIAL = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.AVERAGE_POOL_2D, OpKind.MAX_POOL_2D)
_MAIN = _SPATIAL + (OpKind.FULLY_CONNECTED, OpKind.MEAN, OpKind.CONCATENATION,
                    OpKind.RESIZE_NEAREST_NEIGHBOR)
_ACTIVATIONS = (OpKind.RELU, OpKind.RELU6, OpKind.HARD_SWISH, OpKind.LOGISTIC)


def infer_blocks(graph: Graph) -> tuple[Block, ...]:
    """Blocks of ``graph`` by the rule in this module's docstring."""
    ops = graph.ops
    residual = _residual_ranges(graph)
    groups: list[tuple[list[int], str, bool]] = []  # (op indices, kind, residual)
    start = 0
    for first, last in residual + [(len(ops), len(ops) - 1)]:
        segment = list(range(start, first))
        if segment:
            groups.extend((layer, kind, False) for layer, kind in _segment_blocks(graph, segment))
        if first < len(ops):
            indices = list(range(first, last + 1))
            has_dw = any(ops[i].kind is OpKind.DEPTHWISE_CONV_2D for i in indices)
            groups.append((indices, "mbconv" if has_dw else "residual", True))
        start = last + 1
    groups = _mark_stem_and_head(graph, groups)
    return tuple(Block(f"block{n}", tuple(ops[i].name for i in indices), kind, is_residual)
                 for n, (indices, kind, is_residual) in enumerate(groups))


def _is_main(graph: Graph, op: Op) -> bool:
    if op.kind in _MAIN:
        return True
    return op.kind in (OpKind.ADD, OpKind.MUL) and len(graph.activation_inputs(op)) == 2


def _is_pointwise(graph: Graph, op: Op) -> bool:
    if op.kind is not OpKind.CONV_2D or len(op.inputs) < 2:
        return False
    _, kh, kw, _ = graph.tensors[op.inputs[1]].shape
    return (kh, kw) == (1, 1) and op.attrs.stride == (1, 1)


def _residual_ranges(graph: Graph) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (first, last) op index ranges of residual blocks."""
    producer_index = {out: i for i, op in enumerate(graph.ops) for out in op.outputs}
    position = graph.op_index()
    consumers = graph.consumers()
    ranges: list[tuple[int, int]] = []
    for index, op in enumerate(graph.ops):
        inputs = graph.activation_inputs(op)
        if op.kind is not OpKind.ADD or len(inputs) != 2:
            continue
        left, right = _ancestors(graph, inputs[0]), _ancestors(graph, inputs[1])
        common = left & right
        if not common:
            continue
        branch = max(sorted(common), key=lambda name: producer_index.get(name, -1))
        # The block starts at the first reader of the branch tensor that leads to this ADD.
        on_path = left | right
        first = min(position[reader.name] for reader in consumers.get(branch, [])
                    if reader is op or (position[reader.name] < index
                                        and set(reader.outputs) & on_path))
        last = index
        out = op.outputs[0]
        while last + 1 < len(graph.ops):
            follower = graph.ops[last + 1]
            users = consumers.get(out, [])
            if follower.kind not in _ACTIVATIONS or len(users) != 1 or users[0] is not follower:
                break
            last += 1
            out = follower.outputs[0]
        ranges.append((first, last))
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def _ancestors(graph: Graph, name: str) -> set[str]:
    """Activation tensors from which ``name`` is reachable (``name`` included)."""
    producers = graph.producers()
    seen = {name}
    stack = [name]
    while stack:
        op = producers.get(stack.pop())
        if op is None:
            continue
        for source in graph.activation_inputs(op):
            if source not in seen:
                seen.add(source)
                stack.append(source)
    return seen


def _segment_blocks(graph: Graph, segment: list[int]) -> list[tuple[list[int], str]]:
    """Cut a run of non-residual ops into layers, then merge the dw-separable patterns."""
    layers: list[list[int]] = []
    pending_pads: list[int] = []
    for i in segment:
        op = graph.ops[i]
        if _is_main(graph, op):
            layers.append(pending_pads + [i])
            pending_pads = []
        elif op.kind is OpKind.PAD:
            pending_pads.append(i)
        elif layers:
            layers[-1].extend(pending_pads + [i])
            pending_pads = []
        else:
            pending_pads.append(i)
    if pending_pads:
        if layers:
            layers[-1].extend(pending_pads)
        else:
            layers.append(pending_pads)
    blocks: list[tuple[list[int], str]] = []
    n = 0
    while n < len(layers):
        signature = [_layer_signature(graph, layer) for layer in layers[n:n + 3]]
        if signature[:3] == ["pw", "dw", "pw"] and _chained(graph, layers[n:n + 3]):
            blocks.append((layers[n] + layers[n + 1] + layers[n + 2], "mbconv"))
            n += 3
        elif signature[:2] == ["dw", "pw"] and _chained(graph, layers[n:n + 2]):
            blocks.append((layers[n] + layers[n + 1], "dwsep"))
            n += 2
        else:
            blocks.append((layers[n], "layer"))
            n += 1
    return blocks


def _main_op(graph: Graph, layer: list[int]) -> Op | None:
    for i in layer:
        if _is_main(graph, graph.ops[i]):
            return graph.ops[i]
    return None


def _layer_signature(graph: Graph, layer: list[int]) -> str:
    op = _main_op(graph, layer)
    if op is None:
        return "other"
    if op.kind is OpKind.DEPTHWISE_CONV_2D:
        return "dw"
    if _is_pointwise(graph, op):
        return "pw"
    return op.kind.value


def _chained(graph: Graph, layers: list[list[int]]) -> bool:
    """True when each layer's main op reads an activation written inside the previous layer."""
    for before, after in zip(layers, layers[1:]):
        written = {out for i in before for out in graph.ops[i].outputs}
        main = _main_op(graph, after)
        if main is None:
            return False
        reads = set(graph.activation_inputs(main))
        for i in after:  # the main op may read through a PAD of its own layer
            if graph.ops[i].kind is OpKind.PAD:
                reads.update(graph.activation_inputs(graph.ops[i]))
        if not reads & written:
            return False
    return True


def _is_spatial_layer(graph: Graph, indices: list[int]) -> bool:
    """True when the layers hold a conv over more than one pixel or a pool that keeps a spatial
    extent (global pooling and 1x1-input convs are classifier ops)."""
    for i in indices:
        op = graph.ops[i]
        if op.kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D):
            if _pixels(graph.tensors[op.inputs[0]].shape) > 1:
                return True
        elif op.kind in _SPATIAL and _pixels(graph.tensors[op.outputs[0]].shape) > 1:
            return True
    return False


def _pixels(shape: tuple[int, ...]) -> int:
    return shape[1] * shape[2] if len(shape) == 4 else 1


def _mark_stem_and_head(graph: Graph, groups: list[tuple[list[int], str, bool]]
                        ) -> list[tuple[list[int], str, bool]]:
    spatial = [n for n, (indices, _, _) in enumerate(groups) if _is_spatial_layer(graph, indices)]
    if not spatial:
        return groups
    conv_kinds = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D)
    first_conv = next((n for n, (indices, _, _) in enumerate(groups)
                       if any(graph.ops[i].kind in conv_kinds for i in indices)), None)
    result = list(groups)
    if first_conv is not None and result[first_conv][1] == "layer":
        result[first_conv] = (result[first_conv][0], "stem", False)
    tail = result[spatial[-1] + 1:]
    if tail and not any(is_residual for _, _, is_residual in tail):
        head = [i for indices, _, _ in tail for i in indices]
        result = result[:spatial[-1] + 1] + [(head, "head", False)]
    return result
