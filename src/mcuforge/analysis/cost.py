"""MACs, parameters and Flash bytes of a graph.

MACs (multiply-accumulates) follow numbers.json: CONV_2D ``OH*OW*OC*KH*KW*IC_per_group``,
DEPTHWISE_CONV_2D ``OH*OW*OC*KH*KW``, FULLY_CONNECTED ``in*out``; other ops count 0.
Flash bytes: every constant tensor in its own dtype (int8 weights, int4 packed two per byte, int32
biases) plus per-output-channel requantisation data of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED
(an int32 multiplier and an int32 shift: ``REQUANT_BYTES_PER_CHANNEL`` = 8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import Graph, Op, OpKind

REQUANT_BYTES_PER_CHANNEL = 8
_WEIGHTED = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED)


def op_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one op (see module docstring)."""
    if op.kind is OpKind.CONV_2D:
        out = graph.tensors[op.outputs[0]].shape
        oc, kh, kw, ic = graph.tensors[op.inputs[1]].shape
        return out[1] * out[2] * oc * kh * kw * ic
    if op.kind is OpKind.DEPTHWISE_CONV_2D:
        out = graph.tensors[op.outputs[0]].shape
        _, kh, kw, oc = graph.tensors[op.inputs[1]].shape
        return out[1] * out[2] * oc * kh * kw
    if op.kind is OpKind.FULLY_CONNECTED:
        out_features, in_features = graph.tensors[op.inputs[1]].shape
        rows = math.prod(graph.tensors[op.outputs[0]].shape) // out_features
        return rows * in_features * out_features
    return 0


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
    weighted_inputs = {name for op in graph.ops if op.kind in _WEIGHTED for name in op.inputs[1:]}
    params = sum(graph.tensors[name].num_elements for name in weighted_inputs)
    weight_bytes = sum(graph.tensors[name].nbytes for name in used_constants)
    requant_bytes = 0
    for op in graph.ops:
        if op.kind in _WEIGHTED:
            out_channels = graph.tensors[op.inputs[1]].shape[0 if op.kind is not OpKind.DEPTHWISE_CONV_2D else 3]
            requant_bytes += REQUANT_BYTES_PER_CHANNEL * out_channels
    incl_bn = graph.metadata.get("params_incl_bn")
    return CostReport(sum(macs_per_op.values()), params, int(incl_bn) if incl_bn is not None else None,
                      weight_bytes, requant_bytes, weight_bytes + requant_bytes, macs_per_op)
