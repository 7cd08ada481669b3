"""MACs, parameters and Flash bytes of a graph.

MACs (multiply-accumulates) are each op module's rule and follow numbers.json: CONV_2D
``OH*OW*OC*KH*KW*IC_per_group``, DEPTHWISE_CONV_2D ``OH*OW*OC*KH*KW``, FULLY_CONNECTED ``in*out``;
other ops count 0.
Flash bytes: every constant tensor in its own dtype (int8 weights, int4 packed two per byte, int32
biases) plus per-output-channel requantisation data of every op with weights (CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED: an int32 multiplier and an int32 shift, ``REQUANT_BYTES_PER_CHANNEL`` = 8).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph, Op
from ..ops import op_def

REQUANT_BYTES_PER_CHANNEL = 8


def op_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one op (its op module's rule, `mcuforge.ops`)."""
    return op_def(op.kind).macs(graph, op)


@dataclass(frozen=True)
class CostReport:
    """Compute and storage figures of a graph."""

    macs: int
    params: int
    params_incl_bn: int | None
    weight_bytes: int
    requant_bytes: int
    flash_bytes: int
    macs_per_op: dict[str, int]


def graph_cost(graph: Graph) -> CostReport:
    """MACs, parameter count (stored constants' elements), and Flash bytes of ``graph``."""
    macs_per_op = {op.name: op_macs(graph, op) for op in graph.ops}
    used_constants = {name for op in graph.ops for name in op.inputs if graph.tensors[name].constant}
    out_channels = {op.name: op_def(op.kind).weight_output_channels(graph, op) for op in graph.ops}
    weighted = [op for op in graph.ops if out_channels[op.name] is not None]
    weighted_inputs = {name for op in weighted for name in op.inputs[1:]}
    params = sum(graph.tensors[name].num_elements for name in weighted_inputs)
    weight_bytes = sum(graph.tensors[name].nbytes for name in used_constants)
    requant_bytes = sum(REQUANT_BYTES_PER_CHANNEL * out_channels[op.name] for op in weighted)
    incl_bn = graph.metadata.get("params_incl_bn")
    return CostReport(sum(macs_per_op.values()), params, int(incl_bn) if incl_bn is not None else None,
                      weight_bytes, requant_bytes, weight_bytes + requant_bytes, macs_per_op)
