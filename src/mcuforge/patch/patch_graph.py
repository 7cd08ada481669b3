"""The graph of one patch: the stage's ops on that patch's buffers (built once, read by both the
evaluation of a schedule's memory, `evaluate.py`, and its per-patch arena plans, `arena.py`).

Every activation tensor of the stage takes the shape of its buffer in patch ``(row, col)``, except
the split tile, which has no bytes here: the last op writes it straight into the split tensor, which
accumulates every tile outside the patch-local region. The stage input (the network input, read in
place) is the graph's input; evaluation and planning stream it (``count_network_input`` off), so
it is not counted either. With cached halos a patch may need nothing of a tensor (an empty buffer): the ops
writing such a tensor are left out, and so are the reads of it.
"""

from __future__ import annotations

from dataclasses import replace

from ..analysis.receptive import AxisPatch
from ..ir import Graph, Op, Tensor
from .geometry import PatchStage


def empty_buffer(graph: Graph, name: str, row: AxisPatch, col: AxisPatch) -> bool:
    """Whether activation ``name`` has no bytes in patch ``(row, col)`` (with cached halos a patch
    may need nothing of a tensor)."""
    return graph.is_activation(name) and not (row.buffers[name].size and col.buffers[name].size)


def patch_graph(graph: Graph, stage: PatchStage, ops: list[Op], row: AxisPatch,
                col: AxisPatch) -> Graph:
    """The stage ``ops`` with every activation tensor shaped as its buffer in patch ``(row, col)``
    and the split tile without bytes (see the module docstring); the graph's input is the stage
    input when a kept op reads it, its output the split tensor."""
    tensors: dict[str, Tensor] = {}
    kept = []
    for op in ops:
        if op.outputs[0] != stage.split and empty_buffer(graph, op.outputs[0], row, col):
            continue  # nothing of its output is needed by this patch
        inputs = tuple(name for name in op.inputs if not empty_buffer(graph, name, row, col))
        kept.append(replace(op, inputs=inputs) if inputs != op.inputs else op)
        for name in inputs + op.outputs:
            tensor = graph.tensor(name)
            if tensor.constant:
                tensors[name] = tensor
            elif name == stage.split:
                tensors[name] = Tensor(name, (1, 0, 0, tensor.shape[3]), tensor.dtype, tensor.quant)
            else:
                shape = (1, row.buffers[name].size, col.buffers[name].size, tensor.shape[3])
                tensors[name] = Tensor(name, shape, tensor.dtype, tensor.quant)
    inputs = (stage.input,) if stage.input in tensors else ()
    return Graph(f"{graph.name}:patch", tensors, tuple(kept), inputs, (stage.split,))
