"""Analytic activation memory: per op, per block and peak, under docs/architecture.md's conventions.

At op i the live set is every activation tensor whose lifetime covers i (`liveness.py`): the op's
inputs and outputs and every tensor kept for later (residual inputs). The network input is counted
(``count_network_input``; the MCUNetV2 paper's convention streams it from a caller buffer instead).
Weights are Flash, not SRAM. The switches are one `conventions.MemoryConventions` (the planner, the
patch search and NAS pass the same object); the lifetimes are computed once here and returned with
the profile, so the planner and the patch evaluator read them instead of sweeping again. Where an op
may write over a dying input (`overlap.py`), the output is not counted on top of that input: the op
needs the larger of the two plus the overlap's extra bytes (in-place depthwise: ``e + one H_in x
W_in plane``, or ``e`` + a few output rows with ``depthwise_row_buffer``; the residual ADD writes
into p).

For an inverted-residual block (x input, e expansion, d depthwise, p projection) this gives exactly
the rule behind reference/numbers.json: expand x+e; depthwise e+d(+x), in place e+plane(+x);
project d+p(+x). 1 kB = 1024 B in every report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..ir import Graph
from ..ops import op_def
from .conventions import DEFAULT_CONVENTIONS, MemoryConventions
from .liveness import Lifetime, lifetimes
from .overlap import Overlap, find_overlap


@dataclass(frozen=True)
class OpMemory:
    """Live activation bytes while one op runs, and the tensors that make them up."""

    index: int
    op_name: str
    live_bytes: int
    live_tensors: tuple[str, ...]
    overlap: Overlap | None


@dataclass(frozen=True)
class BlockMemory:
    """The peak of a block: the largest live set over its ops."""

    name: str
    peak_activation_bytes: int
    peak_op: str


@dataclass(frozen=True)
class MemoryProfile:
    """Result of `memory_profile`; ``lifetimes`` are the counted tensors' (the streamed network
    input left out), the one sweep the planner and the patch evaluator read."""

    peak_activation_bytes: int
    peak_op: str
    per_op: tuple[OpMemory, ...]
    per_block: tuple[BlockMemory, ...]
    options: MemoryConventions
    lifetimes: Mapping[str, Lifetime]


def memory_profile(graph: Graph, options: MemoryConventions = DEFAULT_CONVENTIONS) -> MemoryProfile:
    """Per-op live bytes, per-block peaks and the peak activation memory of ``graph``."""
    spans = lifetimes(graph)
    if not options.count_network_input:
        for name in graph.inputs:
            spans.pop(name, None)
            # The first op reading the streamed input consumes it directly from the caller's buffer.
    dying_at: dict[int, set[str]] = {}
    for name, span in spans.items():
        if span.last < len(graph.ops):
            dying_at.setdefault(span.last, set()).add(name)
    per_op: list[OpMemory] = []
    for index, op in enumerate(graph.ops):
        live = [name for name, span in spans.items() if span.alive_at(index)]
        total = sum(graph.tensors[name].nbytes for name in live)
        overlap = find_overlap(graph, op, dying_at.get(index, set()), options.overlap)
        if overlap is not None and overlap.input in spans and overlap.output in spans:
            smaller = min(graph.tensors[overlap.input].nbytes, graph.tensors[overlap.output].nbytes)
            total += overlap.extra_bytes - smaller
        per_op.append(OpMemory(index, op.name, total, tuple(live), overlap))
    if not per_op:
        io_bytes = sum(graph.tensors[name].nbytes for name in spans)
        return MemoryProfile(io_bytes, "", (), (), options, MappingProxyType(spans))
    peak = max(per_op, key=lambda entry: entry.live_bytes)
    by_name = {entry.op_name: entry for entry in per_op}
    blocks = []
    for block in graph.blocks:
        entries = [by_name[name] for name in block.ops]
        if entries:
            top = max(entries, key=lambda entry: entry.live_bytes)
            blocks.append(BlockMemory(block.name, top.live_bytes, top.op_name))
    return MemoryProfile(peak.live_bytes, peak.op_name, tuple(per_op), tuple(blocks), options,
                         MappingProxyType(spans))


def state_bytes(graph: Graph) -> int:
    """Bytes of the ops' persistent state (their variable tensors: an LSTM's hidden and cell
    state), which lives beside the activations, not among them, and is not in the peak."""
    return sum(math.prod(shape) * dtype.bits // 8 for op in graph.ops
               for _, shape, dtype, _ in op_def(op.kind).tflite_variable_tensors(graph, op))
