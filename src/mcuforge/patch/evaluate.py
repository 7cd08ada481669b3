"""Figures of a patch schedule: per-patch peak, total peak in both input conventions, MACs.

The conventions are stated in `geometry.py` (the switches in `analysis.conventions`).
`PatchEvaluator` holds what every schedule of one graph shares (the layer-based memory profiles, and
the live bytes of every patch shape seen so far), so a search over many schedules stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..analysis.conventions import DEFAULT_CONVENTIONS, MemoryConventions
from ..analysis.cost import op_macs
from ..analysis.memory import memory_profile
from ..analysis.overlap import Overlap, OverlapKind, is_elementwise
from ..analysis.receptive import AxisPatch, receptive_field
from ..ops.row_ring import row_ring_bytes
from ..ir import Graph, Op
from .geometry import PatchConfig, PatchGeometry, PatchStage, patch_geometry
from .halo_cache import HaloCacheLayout, halo_cache_layout
from .patch_graph import patch_graph


@dataclass(frozen=True)
class PatchWindow:
    """One patch: its tile of the split tensor and the network-input window it reads (half-open
    ``(start, stop)`` rows and columns), the padding of that window (top, bottom, left, right: the
    real zero padding at borders, 0 inside) and its peak (network input in the arena / streamed)."""

    index: tuple[int, int]
    tile: tuple[tuple[int, int], tuple[int, int]]
    input_window: tuple[tuple[int, int], tuple[int, int]]
    input_pads: tuple[int, int, int, int]
    peak_bytes: int
    peak_bytes_input_streamed: int

    def to_json(self) -> dict:
        """JSON-ready form."""
        return {"index": list(self.index), "tile": [list(a) for a in self.tile],
                "input_window": [list(a) for a in self.input_window],
                "input_pads": list(self.input_pads), "peak_bytes": self.peak_bytes,
                "peak_bytes_input_streamed": self.peak_bytes_input_streamed}


def _window(stage: PatchStage, row: AxisPatch, col: AxisPatch, peak: int, input_bytes: int
            ) -> PatchWindow:
    r_read = next(r for reads in row.reads.values() for r in reads if r.tensor == stage.input)
    c_read = next(r for reads in col.reads.values() for r in reads if r.tensor == stage.input)
    r_in, c_in = row.buffers[stage.input], col.buffers[stage.input]
    return PatchWindow(
        (row.index, col.index), ((row.tile.start, row.tile.stop), (col.tile.start, col.tile.stop)),
        ((r_in.start, r_in.stop), (c_in.start, c_in.stop)),
        (r_read.pad_before, r_read.pad_after, c_read.pad_before, c_read.pad_after),
        peak + input_bytes, peak)


@dataclass(frozen=True)
class PatchPlan:
    """Figures of one patch schedule (bytes, MACs). ``per_block`` holds each block's peak under the
    arena convention; ``peak_patch`` is the (row, col) grid index of the stage's worst patch."""

    config: PatchConfig
    stage: PatchStage
    receptive_field: tuple[int, int]
    input_patch: tuple[int, int]
    split_shape: tuple[int, ...]
    split_buffer_bytes: int
    cache: HaloCacheLayout
    patch_stage_peak_bytes: int
    patch_stage_peak_bytes_input_streamed: int
    rest_peak_bytes: int
    peak_activation_bytes: int
    peak_activation_bytes_input_streamed: int
    layer_peak_activation_bytes: int
    layer_peak_activation_bytes_input_streamed: int
    peak_patch: tuple[int, int]
    peak_op: str
    stage_macs_layer: int
    stage_macs_patch: int
    stage_macs_naive: int
    total_macs_layer: int
    per_block: tuple[tuple[str, int], ...]
    patches: tuple[PatchWindow, ...] = ()

    @property
    def total_macs(self) -> int:
        """MACs of the whole network under this schedule."""
        return self.total_macs_layer - self.stage_macs_layer + self.stage_macs_patch

    @property
    def mac_overhead(self) -> int:
        """Extra MACs over layer-based execution (recomputed halos)."""
        return self.stage_macs_patch - self.stage_macs_layer

    @property
    def mac_factor(self) -> float:
        """Total MACs relative to layer-based execution (1.0 = no overhead)."""
        return self.total_macs / self.total_macs_layer if self.total_macs_layer else 1.0

    def to_json(self) -> dict:
        """JSON-ready figures (the ``patch`` entry of profile --json and report.json)."""
        return {
            "schedule": self.config.to_string(),
            "grid": list(self.config.grid),
            "split_block": self.stage.split_block,
            "split_tensor": self.stage.split,
            "split_shape": list(self.split_shape),
            "halo": self.config.halo,
            "receptive_field": list(self.receptive_field),
            "input_patch": list(self.input_patch),
            "peak_activation_bytes": self.peak_activation_bytes,
            "peak_activation_bytes_input_streamed": self.peak_activation_bytes_input_streamed,
            "patch_stage_peak_bytes": self.patch_stage_peak_bytes,
            "patch_stage_peak_bytes_input_streamed": self.patch_stage_peak_bytes_input_streamed,
            "rest_peak_bytes": self.rest_peak_bytes,
            "layer_peak_activation_bytes": self.layer_peak_activation_bytes,
            "layer_peak_activation_bytes_input_streamed": self.layer_peak_activation_bytes_input_streamed,
            "split_buffer_bytes": self.split_buffer_bytes,
            "halo_cache_bytes": self.cache.total_bytes,
            "peak_patch": list(self.peak_patch),
            "peak_op": self.peak_op,
            "stage_macs_layer": self.stage_macs_layer,
            "stage_macs_patch": self.stage_macs_patch,
            "stage_macs_naive_equal_windows": self.stage_macs_naive,
            "macs": self.total_macs,
            "mac_overhead": self.mac_overhead,
            "mac_overhead_percent": round(100.0 * self.mac_overhead / self.total_macs_layer, 2)
            if self.total_macs_layer else 0.0,
            "blocks": [{"name": n, "peak_activation_bytes": b} for n, b in self.per_block],
            "patches": [p.to_json() for p in self.patches],
        }


def patch_live_bytes(graph: Graph, stage: PatchStage, ops: list[Op], row: AxisPatch,
                     col: AxisPatch, options: MemoryConventions) -> list[int]:
    """Per stage op: live bytes of this patch's windows (split tile excluded, input not counted),
    from the memory profile of the patch's graph (`patch_graph.patch_graph`, the one the arena
    plans lay out too)."""
    patch = patch_graph(graph, stage, ops, row, col)
    profile = memory_profile(patch, replace(options, count_network_input=False))
    by_name = {entry.op_name: entry for entry in profile.per_op}
    live = []
    for op in ops:
        entry = by_name.get(op.name)
        if entry is None:
            live.append(0)
            continue
        total = entry.live_bytes
        if entry.overlap is not None and entry.overlap.output == stage.split:
            total = sum(patch.tensor(name).nbytes for name in entry.live_tensors)
        live.append(total)
    return live


class StageLiveness:
    """The live sets and overlaps of a stage's ops (the same for every patch: only the sizes of the
    tensors change), so that a patch's live bytes are sums instead of a new memory profile. Patches
    with an empty buffer use the live sets of the stage without the ops and reads of the empty
    tensors (as `patch_graph` leaves them out), built once per set of empty tensors;
    `tests/test_patch_memory.py` checks that both agree with `patch_live_bytes`."""

    def __init__(self, graph: Graph, stage: PatchStage, ops: list[Op], options: MemoryConventions):
        tensors = {name: graph.tensor(name) for op in ops for name in op.inputs + op.outputs}
        inputs = (stage.input,) if stage.input in tensors else ()
        full = Graph(f"{graph.name}:stage", tensors, tuple(ops), inputs, (stage.split,))
        profile = memory_profile(full, replace(options, count_network_input=False))
        self.graph, self.stage, self.ops, self.options = graph, stage, ops, options
        self.entries = profile.per_op
        # ELEMENTWISE overlaps pick the first dying input whose shape equals the output's; in a
        # patch the shapes differ from the full stage's, so keep every such candidate per op.
        spans = profile.lifetimes  # the stage input is streamed: not among them
        self.elementwise_candidates: dict[str, list[str]] = {}
        for index, op in enumerate(ops):
            out = graph.tensor(op.outputs[0])
            if is_elementwise(op):
                self.elementwise_candidates[op.name] = [
                    name for name in full.activation_inputs(op)
                    if name in spans and spans[name].last == index and name != stage.input
                    and graph.tensor(name).dtype.bits == out.dtype.bits]
        self.channel_bytes = {name: t.shape[3] * t.nbytes // max(t.num_elements, 1)
                              for name, t in tensors.items() if not t.constant}
        self._reduced: dict[frozenset[str], StageLiveness] = {}

    def _without(self, empty: frozenset[str]) -> "StageLiveness":
        """The liveness of the stage without the ops writing, and the reads of, ``empty``."""
        if empty not in self._reduced:
            kept = []
            for op in self.ops:
                if op.outputs[0] != self.stage.split and op.outputs[0] in empty:
                    continue
                inputs = tuple(name for name in op.inputs if name not in empty)
                kept.append(replace(op, inputs=inputs) if inputs != op.inputs else op)
            self._reduced[empty] = StageLiveness(self.graph, self.stage, kept, self.options)
        return self._reduced[empty]

    def live_bytes(self, row: AxisPatch, col: AxisPatch) -> list[int]:
        """Per stage op: live bytes of this patch's windows (split tile excluded, input not counted)."""
        sizes = {name: (row.buffers[name].size, col.buffers[name].size) for name in self.channel_bytes}
        empty = frozenset(name for name, (h, w) in sizes.items() if h == 0 or w == 0)
        if empty:
            reduced = self._without(empty)
            by_op = dict(zip((op.name for op in reduced.ops), reduced.live_bytes(row, col)))
            return [by_op.get(op.name, 0) for op in self.ops]
        nbytes = {name: h * w * self.channel_bytes[name] for name, (h, w) in sizes.items()}
        split = self.stage.split
        result = []
        for entry in self.entries:
            total = sum(nbytes[name] for name in entry.live_tensors)
            overlap = entry.overlap
            if entry.op_name in self.elementwise_candidates:
                out = self.graph.op(entry.op_name).outputs[0]
                source = next((name for name in self.elementwise_candidates[entry.op_name]
                               if sizes[name] == sizes[out]), None)
                overlap = None if source is None else replace(
                    overlap or Overlap(OverlapKind.ELEMENTWISE, source, out, 0, 0), input=source)
            if overlap is not None and overlap.output != split and overlap.input in nbytes \
                    and overlap.input in entry.live_tensors:
                same_shape = sizes[overlap.input] == sizes[overlap.output]
                if overlap.kind is OverlapKind.INPLACE_DEPTHWISE:
                    element = self.channel_bytes[overlap.input] // self.graph.tensor(overlap.input).shape[3]
                    extra = sizes[overlap.input][0] * sizes[overlap.input][1] * element
                    if self.options.depthwise_row_buffer:
                        attrs = self.graph.op(entry.op_name).attrs
                        extra = row_ring_bytes(*sizes[overlap.input], *sizes[overlap.output],
                                               attrs.stride[0], attrs.pads.top, element)
                elif overlap.kind is OverlapKind.POINTWISE:
                    extra = self.channel_bytes[overlap.input]
                else:
                    extra = 0
                shared = min(nbytes[overlap.input], nbytes[overlap.output])
                worth_it = extra == 0 or extra < shared  # as `overlap.find_overlap` decides
                if worth_it and (same_shape or overlap.kind in (OverlapKind.INPLACE_DEPTHWISE,
                                                                OverlapKind.POINTWISE)):
                    total += extra - shared
            if split in entry.live_tensors:
                total -= nbytes[split]
            result.append(total)
        return result


def _signature(stage_tensors: list[str], row: AxisPatch, col: AxisPatch) -> tuple:
    return tuple((row.buffers[n].size, col.buffers[n].size) for n in stage_tensors)


class PatchEvaluator:
    """Evaluates patch schedules of one graph under one set of memory options."""

    def __init__(self, graph: Graph, options: MemoryConventions = DEFAULT_CONVENTIONS,
                 stage_options: MemoryConventions | None = None):
        """``options`` are the conventions of the whole analysis; ``stage_options`` (default: the
        same) those of the patch stage, for code whose stage allows fewer overlaps than its rest."""
        self.graph = graph
        self.options = options
        self.stage_options = options if stage_options is None else stage_options
        self.layer = memory_profile(graph, options)
        self.streamed = memory_profile(graph, replace(options, count_network_input=False))
        self.total_macs = sum(op_macs(graph, op) for op in graph.ops)
        self.block_of = graph.block_of_op()
        self._memo: dict[tuple, list[int]] = {}
        self._stages: dict[str, StageLiveness] = {}

    def _liveness(self, stage: PatchStage, ops: list[Op]) -> StageLiveness:
        if stage.split_block not in self._stages:
            self._stages[stage.split_block] = StageLiveness(self.graph, stage, ops,
                                                             self.stage_options)
        return self._stages[stage.split_block]

    def evaluate(self, config: PatchConfig) -> PatchPlan:
        """Peak memory (both input conventions), MACs and per-block figures of ``config``."""
        graph = self.graph
        geometry = patch_geometry(graph, config)
        stage = geometry.stage
        ops = geometry.stage_ops(graph)
        split = graph.tensor(stage.split)
        cache = halo_cache_layout(graph, geometry)
        extra = split.nbytes + cache.total_bytes
        input_bytes = graph.tensor(stage.input).nbytes
        names = sorted({n for op in ops for n in op.inputs + op.outputs if graph.is_activation(n)})
        stage_peak, peak_patch, peak_op = -1, (0, 0), ""
        block_peaks: dict[str, int] = {}
        windows = []
        for row in geometry.rows:
            for col in geometry.cols:
                key = (stage.split_block,) + _signature(names, row, col)
                if key not in self._memo:
                    self._memo[key] = self._liveness(stage, ops).live_bytes(row, col)
                windows.append(_window(stage, row, col, max(self._memo[key]) + extra, input_bytes))
                for op, live in zip(ops, self._memo[key]):
                    if live + extra > stage_peak:
                        stage_peak, peak_patch, peak_op = live + extra, (row.index, col.index), op.name
                    block = self.block_of.get(op.name)
                    if block is not None:
                        block_peaks[block] = max(block_peaks.get(block, 0), live + extra + input_bytes)
        layer, streamed = self.layer, self.streamed
        rest = max((e.live_bytes for e in layer.per_op[stage.end_index + 1:]), default=0)
        pre = [e.live_bytes for e in layer.per_op[:len(stage.pre_ops)]]
        pre_streamed = [e.live_bytes for e in streamed.per_op[:len(stage.pre_ops)]]
        for entry in layer.per_op[:len(stage.pre_ops)] + layer.per_op[stage.end_index + 1:]:
            block = self.block_of.get(entry.op_name)
            if block is not None:
                block_peaks[block] = max(block_peaks.get(block, 0), entry.live_bytes)
        macs_layer, macs_patch, macs_naive = stage_macs(graph, ops, geometry)
        input_patch = (max(r.buffers[stage.input].size for r in geometry.rows),
                       max(c.buffers[stage.input].size for c in geometry.cols))
        rf = (receptive_field(graph, ops, stage.split, 1)[0],
              receptive_field(graph, ops, stage.split, 2)[0])
        return PatchPlan(
            config, stage, rf, input_patch, split.shape, split.nbytes, cache,
            stage_peak + input_bytes, stage_peak, rest,
            max([stage_peak + input_bytes, rest] + pre), max([stage_peak, rest] + pre_streamed),
            layer.peak_activation_bytes, streamed.peak_activation_bytes, peak_patch, peak_op,
            macs_layer, macs_patch, macs_naive, self.total_macs,
            tuple((block.name, block_peaks[block.name]) for block in graph.blocks
                  if block.name in block_peaks), tuple(windows))


def evaluate_patch(graph: Graph, config: PatchConfig,
                   options: MemoryConventions = DEFAULT_CONVENTIONS) -> PatchPlan:
    """Peak memory (both input conventions), MACs and per-block figures of ``config``."""
    return PatchEvaluator(graph, options).evaluate(config)


def stage_macs(graph: Graph, ops: list[Op], geometry: PatchGeometry) -> tuple[int, int, int]:
    """Layer-based MACs of the stage, MACs of this schedule, and the naive figure: every patch
    computing a window as large as the largest one (padding computed as if it were data)."""
    layer = patch = naive = 0
    for op in ops:
        macs = op_macs(graph, op)
        if not macs:
            continue
        name = op.outputs[0]
        out = graph.tensor(name).shape
        per_pixel = macs // (out[1] * out[2])
        rows = sum(r.fresh[name].size for r in geometry.rows)
        cols = sum(c.fresh[name].size for c in geometry.cols)
        layer += macs
        patch += per_pixel * rows * cols
        naive += per_pixel * len(geometry.rows) * max(r.buffers[name].size for r in geometry.rows) \
            * len(geometry.cols) * max(c.buffers[name].size for c in geometry.cols)
    return layer, patch, naive
