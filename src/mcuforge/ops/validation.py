"""The value-validation pass at import: the generic checks of `ir.checks` and each op's own.

`validate_model` checks every value a graph carries once, before anything else runs, so that the
analysis, the reference runtime and the generated C may assume a valid graph. Op by op it checks the
op's input and output count (`OpDef.input_count`), every tensor the op names (labelled by
`OpDef.input_roles`: "input", "filter", "bias", ...), the attributes by their type, and then what
only the op's kind defines (`OpDef.check_values`: the multipliers its ``prepare`` derives, the output
quantisation it requires, symmetric weights); tensors no op names are checked last. Both frontends
(.tflite and the model description) call it; a bad value raises `InvalidValueError` naming the
source, the operator (#index, name, kind), the tensor and the field.
"""

from __future__ import annotations

from ..ir.checks import (check_attrs, check_graph_io, check_op_io, check_tensor, operator_location,
                         tensor_roles)
from ..ir.graph import Graph
from .registry import OpDef, find_op_def

_GENERIC = OpDef()  # the default hooks, for a kind that no op module implements


def validate_model(graph: Graph, source: str | None = None) -> Graph:
    """Check every value ``graph`` carries (see the module docstring); return it unchanged or raise
    `InvalidValueError` naming ``source`` (default: the graph's name), operator, tensor and field."""
    origin = source if source is not None else f"graph {graph.name}"
    check_graph_io(graph, origin)
    checked: set[str] = set()
    for index, op in enumerate(graph.ops):
        definition = find_op_def(op.kind) or _GENERIC
        where = operator_location(origin, index, op)
        check_op_io(graph, op, where, definition.input_count)
        for role, name in tensor_roles(op, definition.input_roles):
            if name not in checked:
                check_tensor(graph.tensors[name], f"{where}: {role} tensor {name}")
                checked.add(name)
        check_attrs(graph, op, where)
        definition.check_values(graph, op, where)
    for name, tensor in graph.tensors.items():
        if name not in checked:
            check_tensor(tensor, f"{origin}: tensor {name}")
    return graph
