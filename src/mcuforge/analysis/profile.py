"""The profile of a graph: cost and memory figures together, as `mcuforge profile` prints them.

JSON keys (docs/architecture.md contract): ``macs``, ``params``, ``flash_bytes``, ``peak_activation_bytes``,
``peak_activation_bytes_no_inplace``, ``peak_activation_bytes_input_streamed``, ``blocks`` (list of
``{name, kind, peak_activation_bytes, macs, output_shape}``) and ``layers`` (per op). ``params`` is the
trainable parameter count incl. BN for zoo models (as papers report), the stored weights and biases
for imported models. Bytes; 1 kB = 1024 B.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..ir import Graph
from .conventions import REFERENCE_CONVENTIONS
from .cost import graph_cost
from .memory import memory_profile


@dataclass(frozen=True)
class BlockRow:
    """One block's figures."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    macs: int
    peak_activation_bytes: int
    peak_activation_bytes_no_inplace: int


@dataclass(frozen=True)
class LayerRow:
    """One op's figures."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    macs: int
    live_bytes: int


@dataclass(frozen=True)
class ProfileReport:
    """Everything `mcuforge profile` reports for one graph."""

    model: str
    resolution: int | None
    macs: int
    params: int
    flash_bytes: int
    peak_activation_bytes: int
    peak_activation_bytes_no_inplace: int
    peak_activation_bytes_input_streamed: int
    peak_op: str
    blocks: tuple[BlockRow, ...]
    layers: tuple[LayerRow, ...]
    patch: dict | None = None  # `patch.report.patch_summary` when a patch schedule is asked for

    def to_json(self) -> dict:
        """The JSON-ready dict with the contract keys. With a patch schedule the two peak keys are
        the schedule's, the layer-based ones move to ``layer_based``, and ``patch`` holds the plan."""
        payload = self._layer_json()
        if self.patch is not None:
            payload["layer_based"] = {
                key: payload[key] for key in ("peak_activation_bytes",
                                              "peak_activation_bytes_input_streamed")}
            payload["peak_activation_bytes"] = self.patch["peak_activation_bytes"]
            payload["peak_activation_bytes_input_streamed"] = \
                self.patch["peak_activation_bytes_input_streamed"]
            payload["patch"] = self.patch
        return payload

    def _layer_json(self) -> dict:
        return {
            "model": self.model,
            "resolution": self.resolution,
            "macs": self.macs,
            "params": self.params,
            "flash_bytes": self.flash_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "peak_activation_bytes_no_inplace": self.peak_activation_bytes_no_inplace,
            "peak_activation_bytes_input_streamed": self.peak_activation_bytes_input_streamed,
            "peak_op": self.peak_op,
            "units": "bytes; 1 kB = 1024 B; int8 activations, network input counted",
            "blocks": [
                {"name": b.name, "kind": b.kind, "output_shape": list(b.output_shape), "macs": b.macs,
                 "peak_activation_bytes": b.peak_activation_bytes,
                 "peak_activation_bytes_no_inplace": b.peak_activation_bytes_no_inplace}
                for b in self.blocks],
            "layers": [
                {"name": l.name, "kind": l.kind, "output_shape": list(l.output_shape), "macs": l.macs,
                 "live_bytes": l.live_bytes} for l in self.layers],
        }


def profile_graph(graph: Graph) -> ProfileReport:
    """Cost and memory of ``graph`` under docs/architecture.md's conventions (`REFERENCE_CONVENTIONS`, those of
    reference/numbers.json: no pointwise overlap), with and without in-place depthwise."""
    cost = graph_cost(graph)
    inplace = memory_profile(graph, REFERENCE_CONVENTIONS)
    plain = memory_profile(graph, replace(REFERENCE_CONVENTIONS, inplace_depthwise=False))
    streamed = memory_profile(graph, replace(REFERENCE_CONVENTIONS, count_network_input=False))
    plain_by_block = {b.name: b.peak_activation_bytes for b in plain.per_block}
    ops_by_name = {op.name: op for op in graph.ops}
    blocks = []
    for block, memory in zip(graph.blocks, inplace.per_block):
        last = ops_by_name[block.ops[-1]]
        blocks.append(BlockRow(block.name, block.kind, graph.tensors[last.outputs[0]].shape,
                               sum(cost.macs_per_op[name] for name in block.ops),
                               memory.peak_activation_bytes, plain_by_block[block.name]))
    layers = tuple(
        LayerRow(op.name, op.kind.value, graph.tensors[op.outputs[0]].shape, cost.macs_per_op[op.name],
                 entry.live_bytes)
        for op, entry in zip(graph.ops, inplace.per_op))
    first_input = graph.tensors[graph.inputs[0]].shape if graph.inputs else ()
    resolution = first_input[1] if len(first_input) == 4 else None
    params = cost.params_incl_bn if cost.params_incl_bn is not None else cost.params
    return ProfileReport(graph.name, resolution, cost.macs, params, cost.flash_bytes,
                         inplace.peak_activation_bytes, plain.peak_activation_bytes,
                         streamed.peak_activation_bytes, inplace.peak_op, tuple(blocks), layers)
