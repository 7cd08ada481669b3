"""Graph validation: names resolve, every activation is written once before it is read, the op
order is topological (hence acyclic), shapes agree with the rules in `shapes.py`, blocks are valid."""

from __future__ import annotations

from ..errors import InvalidGraphError
from .graph import Graph
from .ops import Op
from .shapes import infer_output_shape


def validate(graph: Graph) -> Graph:
    """Check ``graph``; return it unchanged or raise `InvalidGraphError` naming the op and tensor."""
    names = set(graph.tensors)
    for name in (*graph.inputs, *graph.outputs):
        if name not in names:
            raise InvalidGraphError(f"graph {graph.name}: graph input/output {name!r} is not a tensor")
    written: set[str] = set(graph.inputs)
    seen_ops: set[str] = set()
    for index, op in enumerate(graph.ops):
        where = f"graph {graph.name}: op #{index} {op.name} ({op.kind.value})"
        if op.name in seen_ops:
            raise InvalidGraphError(f"{where}: duplicate op name")
        seen_ops.add(op.name)
        for name in (*op.inputs, *op.outputs):
            if name not in names:
                raise InvalidGraphError(f"{where}: tensor {name!r} does not exist")
        for name in op.inputs:
            if graph.is_activation(name) and name not in written:
                raise InvalidGraphError(
                    f"{where}: reads {name!r} before any op writes it (cycle or wrong order)")
        for name in op.outputs:
            if name in written:
                raise InvalidGraphError(f"{where}: {name!r} is written twice")
            if graph.tensors[name].constant:
                raise InvalidGraphError(f"{where}: writes constant tensor {name!r}")
            written.add(name)
        _check_shapes(graph, op, where)
    for name in graph.outputs:
        if name not in written:
            raise InvalidGraphError(f"graph {graph.name}: output {name!r} is never written")
    op_names = [op.name for op in graph.ops]
    position = {name: i for i, name in enumerate(op_names)}
    in_block: set[str] = set()
    for block in graph.blocks:
        for name in block.ops:
            if name not in position:
                raise InvalidGraphError(f"graph {graph.name}: block {block.name} names unknown op {name!r}")
            if name in in_block:
                raise InvalidGraphError(f"graph {graph.name}: op {name!r} is in two blocks")
            in_block.add(name)
    return graph


def _check_shapes(graph: Graph, op: Op, where: str) -> None:
    shapes = [graph.tensors[name].shape for name in op.inputs]
    try:
        expected = infer_output_shape(op, shapes)
    except (ValueError, IndexError, TypeError) as exc:
        raise InvalidGraphError(f"{where}: {exc}") from None
    actual = graph.tensors[op.outputs[0]].shape
    if tuple(actual) != tuple(expected):
        raise InvalidGraphError(
            f"{where}: output {op.outputs[0]!r} has shape {actual}, inputs give {expected}")


def topological_order(graph: Graph) -> Graph:
    """A copy of ``graph`` whose ops are sorted so that every op runs after the ops it reads from
    (stable: keeps the given order where it is already valid). Raises on a cycle."""
    producers = graph.producers()
    remaining = list(graph.ops)
    done: set[str] = set(graph.inputs) | {n for n, t in graph.tensors.items() if t.constant}
    ordered: list[Op] = []
    while remaining:
        for i, op in enumerate(remaining):
            if all(name in done or name not in producers for name in op.inputs):
                ordered.append(op)
                done.update(op.outputs)
                del remaining[i]
                break
        else:
            stuck = ", ".join(op.name for op in remaining[:5])
            raise InvalidGraphError(f"graph {graph.name}: cycle among ops {stuck}")
    return graph.with_ops(ordered)
