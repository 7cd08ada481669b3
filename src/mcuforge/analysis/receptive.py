"""Receptive fields and patch geometry: which input window every output patch needs.

Every op of a patch stage reads its input through a window along each spatial axis: kernel ``k``
(dilated: ``(k - 1) * d + 1``), stride ``s`` and padding ``p`` before the first pixel. Output rows
``[a, b)`` read the unclipped input rows ``[a*s - p, (b-1)*s - p + k)``; clipping that range to the
input gives the rows actually read, and what falls outside becomes the op's own per-edge padding
(``pad_before = max(0, p - a*s)``, ``pad_after`` likewise at the far edge). A patch at a border keeps
the real zero padding; an interior patch gets pad 0 and a wider window. Elementwise ops (ADD, MUL,
activations, requantisation) are windows with ``k = s = 1``, ``p = 0``; PAD is ``k = s = 1`` with ``p``
its leading padding.

The geometry is separable: the rows a patch needs depend only on its grid row, the columns only on
its grid column, so everything is computed per axis (`axis_geometry`) and combined per patch.

Two modes per axis, for grid index ``g`` (patches run in raster order):
- **recompute** (MCUNetV2): every patch computes the full *buffer* ``B_g(t)`` each tensor needs:
  ``B_g(t)`` is the hull of the windows its consumers read, and the fresh part ``F_g(t) = B_g(t)``.
  Overlapping windows are recomputed (the halo), which is the MAC overhead.
- **cache** (halo caching, in the spirit of StreamNet): a patch computes only what no earlier patch on
  this axis computed, ``F_g(t) = [max(B_g.start, B_{g-1}.stop), B_g.stop)``; the consumers read
  ``B_g(t)``, whose leading ``F_g.start - B_g.start`` positions come from a cache kept from patch
  ``g - 1``. Consumers only need windows of their *fresh* outputs, so buffers shrink as well.

The split tensor's buffer and fresh part are the tile itself (tiles are disjoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ..errors import UnsupportedOpError
from ..ir import Graph, Op
from ..ops import kinds_where, op_def

# Ops whose output pixel (y, x) depends only on input pixels (y, x) of every activation input, ops
# that read a spatial window, and both together: what the op modules declare (`mcuforge.ops`).
POINTWISE_KINDS = kinds_where(lambda definition: definition.spatially_pointwise)
PATCHABLE_KINDS = kinds_where(lambda definition: definition.patchable)
WINDOW_KINDS = PATCHABLE_KINDS - POINTWISE_KINDS


@dataclass(frozen=True)
class Interval:
    """Half-open range ``[start, stop)`` of pixel positions along one axis."""

    start: int
    stop: int

    @property
    def size(self) -> int:
        """Number of positions (0 when empty)."""
        return max(0, self.stop - self.start)

    def hull(self, other: "Interval | None") -> "Interval":
        """The smallest interval holding both (an empty interval holds nothing)."""
        if other is None or other.size == 0:
            return self
        if self.size == 0:
            return other
        return Interval(min(self.start, other.start), max(self.stop, other.stop))


@dataclass(frozen=True)
class AxisWindow:
    """How an op reads its input along one axis: effective kernel, stride, padding before."""

    kernel: int
    stride: int
    pad_before: int

    def read(self, out: Interval, in_size: int) -> tuple[Interval, int, int]:
        """Input positions read for output positions ``out`` (clipped to ``[0, in_size)``) and the
        padding the cropped op needs before and after them."""
        lo = out.start * self.stride - self.pad_before
        hi = (out.stop - 1) * self.stride - self.pad_before + self.kernel
        before = max(0, min(hi, 0) - lo)
        after = max(0, hi - max(lo, in_size))
        start = min(max(lo, 0), in_size)
        clipped = Interval(start, max(start, min(hi, in_size)))
        return clipped, before, after


def axis_window(graph: Graph, op: Op, axis: int) -> AxisWindow:
    """The window of ``op`` along spatial ``axis`` (1 = height, 2 = width) of NHWC tensors."""
    if axis not in (1, 2):
        raise ValueError("axis must be 1 (height) or 2 (width)")
    window = op_def(op.kind).window(graph, op, axis)
    if window is None:
        raise UnsupportedOpError(f"op {op.name} ({op.kind.value}) cannot run patch by patch")
    return AxisWindow(*window)


def receptive_field(graph: Graph, ops: Sequence[Op], output: str, axis: int = 1) -> tuple[int, int]:
    """(receptive field, jump) of one pixel of ``output`` in the input of the first of ``ops``, along
    ``axis``, ignoring borders: the size of the input window one output pixel depends on, and the
    input distance between neighbouring output pixels. Along a branching path the largest wins."""
    need: dict[str, tuple[int, int]] = {output: (1, 1)}
    for op in reversed(ops):
        if op.outputs[0] not in need:
            continue
        size, jump = need[op.outputs[0]]
        window = axis_window(graph, op, axis)
        in_size, in_jump = (size - 1) * window.stride + window.kernel, jump * window.stride
        for name in graph.activation_inputs(op):
            old = need.get(name)
            need[name] = (in_size, in_jump) if old is None else (max(old[0], in_size),
                                                                 max(old[1], in_jump))
    inputs = [n for n in graph.activation_inputs(ops[0])] if ops else [output]
    return need.get(inputs[0], (1, 1))


def tile_intervals(size: int, parts: int) -> tuple[Interval, ...]:
    """Split ``[0, size)`` into ``parts`` tiles whose sizes differ by at most one. When ``size`` does
    not divide, the larger tiles go to the borders first (first, last, second, second last, ...):
    border patches need smaller input windows because part of their window is padding."""
    if not 1 <= parts <= size:
        raise ValueError(f"cannot split {size} positions into {parts} tiles")
    base, extra = divmod(size, parts)
    order = []
    left, right = 0, parts - 1
    while left <= right:
        order.append(left)
        if right != left:
            order.append(right)
        left, right = left + 1, right - 1
    sizes = [base] * parts
    for index in order[:extra]:
        sizes[index] += 1
    tiles, start = [], 0
    for length in sizes:
        tiles.append(Interval(start, start + length))
        start += length
    return tuple(tiles)


@dataclass(frozen=True)
class OpRead:
    """One activation input read by an op for one patch on one axis: the positions read (absolute,
    clipped to the tensor) and the op's padding before and after them."""

    tensor: str
    interval: Interval
    pad_before: int
    pad_after: int


@dataclass(frozen=True)
class AxisPatch:
    """The geometry of grid index ``index`` on one axis.

    ``buffers[t]``: positions of tensor ``t`` held while this patch runs (stage input included: the
    hull of what its readers read); ``fresh[t]``: positions of ``t`` this patch computes;
    ``cached[t]``: positions taken from the halo cache (``fresh.start - buffer.start``);
    ``reads[op]``: what each op reads to compute its fresh output.
    """

    index: int
    tile: Interval
    buffers: Mapping[str, Interval]
    fresh: Mapping[str, Interval]
    reads: Mapping[str, tuple[OpRead, ...]]

    def cached(self, tensor: str) -> int:
        """Leading positions of ``tensor``'s buffer that come from the cache."""
        return self.fresh[tensor].start - self.buffers[tensor].start


def axis_geometry(graph: Graph, ops: Sequence[Op], split: str, axis: int,
                  tiles: Sequence[Interval], cache: bool) -> tuple[AxisPatch, ...]:
    """Per grid index along ``axis``: buffers, fresh parts and reads of every tensor of the stage
    ``ops`` (in execution order) whose output ``split`` is tiled by ``tiles`` (see module docstring;
    ``cache`` selects halo caching instead of recomputation)."""
    produced = {name for op in ops for name in op.outputs}
    previous_stop: dict[str, int] = {}
    result = []
    for index, tile in enumerate(tiles):
        buffers: dict[str, Interval] = {split: tile}
        fresh: dict[str, Interval] = {}
        reads: dict[str, tuple[OpRead, ...]] = {}
        for op in reversed(ops):
            out = op.outputs[0]
            buffer = buffers.get(out)
            if buffer is None:
                raise UnsupportedOpError(f"op {op.name}: its output {out} is not used inside the "
                                         "patch stage")
            if out == split or not cache:
                fresh[out] = buffer
            else:
                fresh[out] = Interval(max(buffer.start, previous_stop.get(out, 0)), buffer.stop)
                if fresh[out].size == 0:
                    fresh[out] = Interval(buffer.stop, buffer.stop)
            window = axis_window(graph, op, axis)
            op_reads = []
            for name in graph.activation_inputs(op):
                in_size = graph.tensor(name).shape[axis]
                if fresh[out].size:
                    interval, before, after = window.read(fresh[out], in_size)
                else:
                    interval, before, after = Interval(0, 0), 0, 0
                op_reads.append(OpRead(name, interval, before, after))
                if interval.size:
                    buffers[name] = interval.hull(buffers.get(name))
                elif name not in buffers:
                    buffers[name] = Interval(0, 0)
            reads[op.name] = tuple(op_reads)
        for name in produced:
            if name in buffers and buffers[name].size:
                previous_stop[name] = max(previous_stop.get(name, 0), buffers[name].stop)
        result.append(AxisPatch(index, tile, buffers, fresh, reads))
    return tuple(result)


def halo_positions(patches: Sequence[AxisPatch], tensor: str) -> int:
    """The largest number of cached positions of ``tensor`` over the grid (0 in recompute mode)."""
    return max((p.cached(tensor) for p in patches if tensor in p.fresh), default=0)
