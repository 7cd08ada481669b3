"""Tensor lifetimes over a graph's execution order.

A lifetime is ``(first, last)`` in op indices: ``first`` is the index of the op that writes the tensor
(-1 for graph inputs, which exist before the first op), ``last`` the index of the last op that reads it
(``len(ops)`` for graph outputs, which must survive the whole run). A tensor occupies memory at op ``i``
when ``first <= i <= last``. Constants are Flash and have no lifetime.

Float tensors at the edges of a quantised graph (the float input of a leading QUANTIZE, the float output
of a trailing DEQUANTIZE) are conversions done by the caller and get no lifetime either
(docs/architecture.md: TinyEngine's convention).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import DType, Graph, OpKind


@dataclass(frozen=True)
class Lifetime:
    """Op indices between which a tensor must be kept (both ends included)."""

    first: int
    last: int

    def alive_at(self, index: int) -> bool:
        """True when the tensor occupies memory while op ``index`` runs."""
        return self.first <= index <= self.last


def edge_conversion_tensors(graph: Graph) -> set[str]:
    """Float graph inputs read only by QUANTIZE and float graph outputs written by DEQUANTIZE."""
    consumers = graph.consumers()
    producers = graph.producers()
    edges: set[str] = set()
    for name in graph.inputs:
        users = consumers.get(name, [])
        if (graph.tensors[name].dtype is DType.FLOAT32 and users
                and all(op.kind is OpKind.QUANTIZE for op in users)):
            edges.add(name)
    for name in graph.outputs:
        op = producers.get(name)
        if graph.tensors[name].dtype is DType.FLOAT32 and op is not None and op.kind is OpKind.DEQUANTIZE:
            edges.add(name)
    return edges


def lifetimes(graph: Graph, include_edge_conversions: bool = False) -> dict[str, Lifetime]:
    """Lifetime of every activation tensor, by name (see module docstring)."""
    end = len(graph.ops)
    first: dict[str, int] = {name: -1 for name in graph.inputs}
    last: dict[str, int] = {name: -1 for name in graph.inputs}
    for index, op in enumerate(graph.ops):
        for name in op.inputs:
            if graph.is_activation(name):
                last[name] = index
        for name in op.outputs:
            first[name] = index
            last.setdefault(name, index)
            last[name] = max(last[name], index)
    for name in graph.outputs:
        last[name] = end
    skip = set() if include_edge_conversions else edge_conversion_tensors(graph)
    return {name: Lifetime(first[name], last[name]) for name in first if name not in skip}
