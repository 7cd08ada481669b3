"""Patch-based execution in the reference runtime, bit-exact with layer-based execution.

The patch stage (`patch/geometry.py`) runs once per tile of the split tensor, tiles in raster order.
For every op and patch the geometry (`analysis/receptive.py`) gives the fresh output region and, per
input, the positions read and the op's own per-edge padding. The op runs through the ordinary
kernels (`reference.run_op`) on the cropped inputs, with its pads replaced: a border patch keeps the
real zero padding, an interior patch gets pad 0 and a wider window. PAD ops get their paddings
cropped the same way.

Each stage tensor's buffer for the patch is assembled from its fresh part and, with halo caching,
from the caches (`patch/halo_cache.py`): a column cache holding the last ``halo_c`` columns of the
previous patch's buffer, and a row cache per grid column holding the last ``halo_r`` rows that the
patch above computed. The caches here are real arrays of exactly the analytic sizes, so a schedule
whose cache layout is too small fails an assertion instead of reading values it never kept. The
last op of the stage writes its tile into the full split tensor; the rest of the graph then runs
layer by layer.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from ..ir import ConvAttrs, Graph, Op, PadAttrs, Pads, PoolAttrs, Tensor
from ..patch.halo_cache import HaloCacheLayout, halo_cache_layout
from ..patch.geometry import PatchConfig, PatchGeometry, patch_geometry
from .reference import Interpreter, run_op


def cropped_op(op: Op, rows, cols) -> Op:
    """``op`` with its padding replaced by this patch's per-edge padding."""
    row, col = rows[0], cols[0]
    if isinstance(op.attrs, (ConvAttrs, PoolAttrs)):
        pads = Pads(row.pad_before, row.pad_after, col.pad_before, col.pad_after)
        return replace(op, attrs=replace(op.attrs, pads=pads))
    if isinstance(op.attrs, PadAttrs):
        paddings = list(op.attrs.paddings)
        paddings[1] = (row.pad_before, row.pad_after)
        paddings[2] = (col.pad_before, col.pad_after)
        return replace(op, attrs=PadAttrs(tuple(paddings)))
    return op


class _Strip:
    """A cache along one axis: the values of positions ``[start, start + n)`` of a tensor (``n`` at
    most ``width``), with a mask of the positions actually computed. Merging a newer buffer keeps
    the highest positions computed so far (with residual branches a later buffer may end before an
    earlier one), taking each position from the buffer where it has it and from the old strip
    otherwise."""

    def __init__(self, axis: int, width: int):
        self.axis, self.width = axis, width
        self.start, self.values, self.valid = 0, None, np.zeros(0, dtype=bool)

    def merge(self, start: int, values: np.ndarray) -> None:
        """Add the buffer ``values`` whose first position along the axis is ``start``."""
        stop = start + values.shape[self.axis]
        old_stop = self.start + self.valid.size
        new_stop = max(stop, old_stop) if self.values is not None else stop
        lowest = min(start, self.start) if self.values is not None else start
        new_start = max(new_stop - self.width, lowest)
        shape = list(values.shape)
        shape[self.axis] = new_stop - new_start
        merged = np.zeros(shape, dtype=values.dtype)
        valid = np.zeros(new_stop - new_start, dtype=bool)
        for src_start, src, src_valid in ((self.start, self.values, self.valid),
                                          (start, values, np.ones(values.shape[self.axis], bool))):
            if src is None:
                continue
            lo, hi = max(src_start, new_start), min(src_start + src.shape[self.axis], new_stop)
            if lo >= hi:
                continue
            take = [slice(None)] * 4
            put = [slice(None)] * 4
            take[self.axis] = slice(lo - src_start, hi - src_start)
            put[self.axis] = slice(lo - new_start, hi - new_start)
            merged[tuple(put)] = src[tuple(take)]
            valid[lo - new_start: hi - new_start] = src_valid[lo - src_start: hi - src_start]
        self.start, self.values, self.valid = new_start, merged, valid

    def take(self, lo: int, hi: int, what: str) -> np.ndarray:
        """The cached positions ``[lo, hi)``; asserts that every one of them was computed."""
        assert self.values is not None and self.start <= lo and hi <= self.start + self.valid.size \
            and self.valid[lo - self.start: hi - self.start].all(), f"{what}: not in the cache"
        index = [slice(None)] * 4
        index[self.axis] = slice(lo - self.start, hi - self.start)
        return self.values[tuple(index)]

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return 0 if self.values is None else self.values.nbytes


class _Caches:
    """Halo caches of one run: a column strip per tensor (reset at every patch row), a row strip per
    (tensor, grid column)."""

    def __init__(self, layout: HaloCacheLayout):
        self.layout = layout
        self.cols: dict[str, _Strip] = {}
        self.rows: dict[tuple[str, int], _Strip] = {}

    def new_row(self) -> None:
        """Column strips hold the rows of one patch row; drop them when the next row starts."""
        self.cols.clear()

    def fill(self, name: str, buffer: np.ndarray, row, col, j: int) -> None:
        """Copy the positions ``buffer`` (tensor ``name``'s buffer for this patch) got from the
        caches into it."""
        r_buf, c_buf = row.buffers[name], col.buffers[name]
        r_fresh, c_fresh = row.fresh[name], col.fresh[name]
        cached_cols = c_fresh.start - c_buf.start
        cached_rows = r_fresh.start - r_buf.start
        if cached_cols and r_buf.size:
            strip = self.cols.get(name)
            assert strip is not None, f"column cache of {name} is empty"
            buffer[:, :, :cached_cols] = strip.take(c_buf.start, c_fresh.start, f"columns of {name}")
        if cached_rows and c_fresh.size:
            strip = self.rows.get((name, j))
            assert strip is not None, f"row cache of {name} is empty"
            buffer[:, :cached_rows, cached_cols:] = strip.take(r_buf.start, r_fresh.start,
                                                               f"rows of {name}")

    def keep(self, name: str, buffer: np.ndarray, row, col, j: int) -> None:
        """Store what later patches will take from this patch's buffer of ``name``."""
        entry = self.layout.of(name)
        if entry is None or buffer.size == 0:
            return  # an empty buffer keeps the older cache, which later patches still need
        r_buf, c_buf, c_fresh = row.buffers[name], col.buffers[name], col.fresh[name]
        if entry.halo_cols:
            assert buffer.shape[1] <= entry.col_cache_rows
            self.cols.setdefault(name, _Strip(2, entry.halo_cols)).merge(c_buf.start, buffer)
        if entry.halo_rows and c_fresh.size:
            offset = c_fresh.start - c_buf.start
            self.rows.setdefault((name, j), _Strip(1, entry.halo_rows)).merge(
                r_buf.start, buffer[:, :, offset:])

    def bytes_held(self) -> int:
        """Bytes currently held in every cache."""
        return sum(s.nbytes for s in self.cols.values()) + sum(s.nbytes for s in self.rows.values())


def run_patch_stage(graph: Graph, geometry: PatchGeometry, env: dict[str, np.ndarray],
                    sink: Callable[[np.ndarray], None] | None = None) -> None:
    """Run the patch stage of ``geometry`` on ``env`` (which holds the stage input) and store the
    full split tensor in ``env``; with ``sink``, hand it each output tile instead (raster order),
    and the split tensor never exists (a pooled stage of `patch.multistage`)."""
    stage = geometry.stage
    ops = geometry.stage_ops(graph)
    split_tensor = graph.tensor(stage.split)
    split = None if sink is not None else np.zeros(split_tensor.shape,
                                                   dtype=split_tensor.dtype.numpy)
    layout = halo_cache_layout(graph, geometry)
    caches = _Caches(layout)
    network_input = env[stage.input]
    for row in geometry.rows:
        caches.new_row()
        for j, col in enumerate(geometry.cols):
            r_in, c_in = row.buffers[stage.input], col.buffers[stage.input]
            buffers = {stage.input: network_input[:, r_in.start:r_in.stop, c_in.start:c_in.stop]}
            for op in ops:
                out = op.outputs[0]
                fresh = _run_fresh(graph, op, row, col, buffers, env)
                if out == stage.split:
                    tile_r, tile_c = row.fresh[out], col.fresh[out]
                    if split is None:
                        sink(fresh)
                    else:
                        split[:, tile_r.start:tile_r.stop, tile_c.start:tile_c.stop] = fresh
                    continue
                r_buf, c_buf = row.buffers[out], col.buffers[out]
                buffer = np.empty((1, r_buf.size, c_buf.size, fresh.shape[3]), dtype=fresh.dtype)
                buffer[:, row.fresh[out].start - r_buf.start:, col.fresh[out].start - c_buf.start:] = fresh
                caches.fill(out, buffer, row, col, j)
                caches.keep(out, buffer, row, col, j)
                buffers[out] = buffer
            assert caches.bytes_held() <= layout.total_bytes
    if split is not None:
        env[stage.split] = split


def _run_fresh(graph: Graph, op: Op, row, col, buffers: dict[str, np.ndarray],
               env: dict[str, np.ndarray]) -> np.ndarray:
    """The fresh output region of ``op`` for this patch, computed from the cropped inputs."""
    out = graph.tensor(op.outputs[0])
    r_fresh, c_fresh = row.fresh[out.name], col.fresh[out.name]
    if not (r_fresh.size and c_fresh.size):
        return np.zeros((1, r_fresh.size, c_fresh.size, out.shape[3]), dtype=out.dtype.numpy)
    row_reads, col_reads = row.reads[op.name], col.reads[op.name]
    local_env: dict[str, np.ndarray] = {}
    tensors: dict[str, Tensor] = {}
    for r_read, c_read in zip(row_reads, col_reads):
        name = r_read.tensor
        r_buf, c_buf = row.buffers[name], col.buffers[name]
        crop = buffers[name][:, r_read.interval.start - r_buf.start: r_read.interval.stop - r_buf.start,
                             c_read.interval.start - c_buf.start: c_read.interval.stop - c_buf.start]
        local_env[name] = crop
        source = graph.tensor(name)
        tensors[name] = Tensor(name, tuple(crop.shape), source.dtype, source.quant)
    for name in op.inputs:
        if name not in tensors:
            tensors[name] = graph.tensor(name)
            if name in env:
                local_env[name] = env[name]
    tensors[out.name] = Tensor(out.name, (1, r_fresh.size, c_fresh.size, out.shape[3]), out.dtype,
                               out.quant)
    local_op = cropped_op(op, row_reads, col_reads)
    inputs = tuple(r.tensor for r in row_reads)
    local = Graph(f"{graph.name}:{op.name}", tensors, (local_op,), inputs, (out.name,))
    run_op(local, local_op, local_env)
    return local_env[out.name]


def run_patch_based(graph: Graph, config: PatchConfig | PatchGeometry,
                    inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run ``graph`` with the patch schedule ``config``: edge conversions once, the patch stage per
    patch, the rest layer by layer. Returns the graph outputs (equal to `Interpreter.invoke`'s)."""
    geometry = config if isinstance(config, PatchGeometry) else patch_geometry(graph, config)
    interpreter = Interpreter(graph)
    interpreter.check_inputs(inputs)
    env: dict[str, np.ndarray] = {name: t.data for name, t in graph.tensors.items()
                                  if t.data is not None}
    for name, array in zip(graph.inputs, inputs):
        env[name] = np.asarray(array)
    ops_by_name = {op.name: op for op in graph.ops}
    for name in geometry.stage.pre_ops:
        run_op(graph, ops_by_name[name], env)
    run_patch_stage(graph, geometry, env)
    for op in graph.ops[geometry.stage.end_index + 1:]:
        run_op(graph, op, env)
    return [env[name].copy() for name in graph.outputs]


__all__ = ["run_patch_based", "run_patch_stage"]
