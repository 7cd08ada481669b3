"""Edge conversions of float-I/O models, and the int8 graph the generated C runs.

A model with float input and output (a leading QUANTIZE, a trailing DEQUANTIZE, as TinyEngine's
vww.tflite) is int8 inside. The generated API is int8 only,
``int mcuforge_invoke(const int8_t *input, int8_t *output)``: the caller quantises the input
(q = round(x / scale) + zero_point, saturated) and dequantises the output with the scales and zero
points that model.h lists. `strip_edge_conversions` gives that int8 graph; the reference runtime run on
it yields exactly the int8 tensors of the full graph, so both are compared bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import UnsupportedOpError
from ..ir import DType, Graph, OpKind
from ..ops.support import is_edge_conversion


@dataclass(frozen=True)
class EdgeConversions:
    """The int8 graph and the float tensors the caller converts from/to (empty when none)."""

    graph: Graph
    float_inputs: tuple[str, ...]
    float_outputs: tuple[str, ...]


def strip_edge_conversions(graph: Graph) -> EdgeConversions:
    """Drop QUANTIZE ops that read a float graph input and DEQUANTIZE ops that write a float graph
    output; their int8 sides become the graph's inputs and outputs."""
    inputs, outputs = list(graph.inputs), list(graph.outputs)
    dropped: set[str] = set()
    consumers = graph.consumers()
    for op in graph.ops:
        if not is_edge_conversion(graph, op, consumers):  # the rule `ops.support` checks by
            continue
        if op.kind is OpKind.QUANTIZE:
            inputs[inputs.index(op.inputs[0])] = op.outputs[0]
        else:
            outputs[outputs.index(op.outputs[0])] = op.inputs[0]
        dropped.add(op.name)
    float_inputs = tuple(n for n in graph.inputs if n not in inputs)
    float_outputs = tuple(n for n in graph.outputs if n not in outputs)
    ops = [op for op in graph.ops if op.name not in dropped]
    blocks = [replace(b, ops=tuple(n for n in b.ops if n not in dropped)) for b in graph.blocks]
    stripped = replace(graph.with_ops(ops, blocks=[b for b in blocks if b.ops]),
                       inputs=tuple(inputs), outputs=tuple(outputs))
    for name in (*stripped.inputs, *stripped.outputs):
        tensor = stripped.tensors[name]
        if tensor.dtype is not DType.INT8:
            raise UnsupportedOpError(f"graph input/output {name} is {tensor.dtype.value}; the "
                                     "generated C takes and returns int8 tensors")
    return EdgeConversions(stripped, float_inputs, float_outputs)
