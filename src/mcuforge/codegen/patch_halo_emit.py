"""Halo caches in the generated C: strided byte copies, no recomputation.

With halo caching a patch computes only the positions of each stage tensor that no earlier patch
computed (`analysis/receptive.py`); the rest of its buffer comes from the caches of
`patch/halo_cache.py`, as the reference runtime (`runtime/patch.py`) assembles it:

- a **column cache** per tensor (``cols`` and ``full``): the last ``halo_c`` columns of the buffers
  of the current patch row, ``rows x halo_c x C`` bytes (rows of ``halo_c * C`` bytes), emptied
  when a new patch row starts;
- a **row cache** per tensor and grid column ``j`` (``full``): the last ``halo_r`` rows of that
  column's fresh columns, ``halo_r x cols_j x C`` bytes.

After the op has written its fresh region into its buffer (its output window, at ``(cached rows,
cached columns)`` with the buffer's row pitch), *fill* copies the cached columns (every buffer row)
and then the cached rows (the fresh columns) into the buffer; *keep* then merges the buffer into the
caches. A cache always holds the highest positions computed so far (with residual branches a later
buffer may end before an earlier one): positions the new buffer does not have are moved down inside
the cache first, then the buffer's are copied in. Every copy is ``rows`` ``memmove`` calls of
``nbytes`` with a source and a destination row pitch (one call when contiguous); row strips of
full-width buffers need one contiguous copy each.

The same bookkeeping runs in Python at generation time and checks that every cached position a patch
needs is in the cache, mirroring `runtime/patch.py`, whose reference execution of the same schedule
is bit-exact with layer-based execution. `cached_elementwise_aligned` and `check_cached_overlaps`
refuse the overlaps (an ADD written over its input) that the cache copies would break.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.overlap import OverlapKind
from ..errors import McuforgeError, UnsupportedOpError
from ..ir import Graph, Op
from ..planner.arena import ArenaPlan
from ..patch.halo_cache import HaloCacheLayout, halo_cache_layout
from ..patch.geometry import PatchGeometry


@dataclass(frozen=True)
class ByteCopy:
    """``rows`` times ``memmove(A + dst + r * dst_pitch, A + src + r * src_pitch, nbytes)``;
    ``what`` says why (for the comment in model.c)."""

    src: int
    dst: int
    nbytes: int
    what: str
    rows: int = 1
    src_pitch: int = 0
    dst_pitch: int = 0

    @property
    def span_bytes(self) -> tuple[int, int]:
        """Bytes from the first to the last byte read, and written."""
        return ((self.rows - 1) * self.src_pitch + self.nbytes,
                (self.rows - 1) * self.dst_pitch + self.nbytes)


@dataclass
class _Strip:
    """What a cache holds along its axis: positions ``[start, start + len(valid))``, with the
    positions actually computed marked."""

    start: int
    valid: list[bool]

    @property
    def stop(self) -> int:
        """One past the last position held."""
        return self.start + len(self.valid)

    def holds(self, lo: int, hi: int) -> bool:
        """Whether every position of ``[lo, hi)`` is held and computed."""
        return self.start <= lo and hi <= self.stop and all(self.valid[lo - self.start:hi - self.start])


def _merge(old: _Strip | None, start: int, stop: int, width: int
           ) -> tuple[_Strip, tuple[int, int] | None, tuple[int, int]]:
    """Merge a buffer holding positions ``[start, stop)`` into a cache ``width`` positions wide:
    the new strip, the old positions ``[lo, hi)`` it keeps when they move (None when they stay),
    and the buffer's positions ``[lo, hi)`` it takes (possibly empty)."""
    if old is None:
        old = _Strip(start, [])
    new_stop = max(old.stop, stop)
    new_start = max(new_stop - width, min(old.start, start))
    valid = [False] * (new_stop - new_start)
    keep_lo, keep_hi = max(new_start, old.start), min(old.stop, new_stop)
    for position in range(keep_lo, keep_hi):
        valid[position - new_start] = old.valid[position - old.start]
    moved = (keep_lo, keep_hi) if keep_hi > keep_lo and keep_lo != new_start else None
    take_lo, take_hi = max(new_start, start), min(new_stop, stop)
    for position in range(take_lo, take_hi):
        valid[position - new_start] = True
    strip = _Strip(new_start, valid)
    return strip, (None if moved is None else moved), (take_lo, max(take_lo, take_hi))


class HaloCaches:
    """Offsets and contents of every halo cache of a schedule, starting at arena offset ``base``."""

    def __init__(self, graph: Graph, geometry: PatchGeometry, layout: HaloCacheLayout, base: int):
        self.graph = graph
        self.entries = {t.tensor: t for t in layout.tensors}
        self.col_offsets: dict[str, int] = {}
        self.row_offsets: dict[tuple[str, int], int] = {}
        self.fresh_cols: dict[tuple[str, int], int] = {}
        cursor = base
        for name, entry in self.entries.items():
            self.col_offsets[name] = cursor
            cursor += entry.col_cache_bytes
            for j, col in enumerate(geometry.cols):
                self.row_offsets[(name, j)] = cursor
                self.fresh_cols[(name, j)] = col.fresh[name].size
                cursor += entry.halo_rows * col.fresh[name].size * self._pixel(name)
        self.total_bytes = cursor - base
        assert self.total_bytes == layout.total_bytes, "halo cache layout mismatch"
        self._cols: dict[str, _Strip] = {}
        self._rows: dict[tuple[str, int], _Strip] = {}

    def _pixel(self, name: str) -> int:
        tensor = self.graph.tensor(name)
        return tensor.nbytes // (tensor.shape[1] * tensor.shape[2])

    def new_row(self) -> None:
        """A new patch row starts: column caches hold nothing of it yet."""
        self._cols.clear()

    def copies(self, name: str, row, col, j: int, buffer_offset: int) -> list[ByteCopy]:
        """The copies that fill ``name``'s buffer for patch ``(row, col)`` (grid column ``j``, at
        arena ``buffer_offset``) from its caches, then keep what later patches take from it;
        empty when the tensor has no cache or the buffer is empty."""
        entry = self.entries.get(name)
        r_buf, c_buf, r_fresh, c_fresh = (row.buffers[name], col.buffers[name], row.fresh[name],
                                          col.fresh[name])
        if entry is None or r_buf.size == 0 or c_buf.size == 0:
            return []
        px = self._pixel(name)
        pitch = c_buf.size * px
        cached_cols, cached_rows = c_fresh.start - c_buf.start, r_fresh.start - r_buf.start
        copies = []
        if cached_cols:
            strip = self._cols.get(name)
            if strip is None or not strip.holds(c_buf.start, c_fresh.start):
                raise McuforgeError(f"column cache of {name}: columns [{c_buf.start}, "
                                    f"{c_fresh.start}) are not held")
            copies.append(ByteCopy(self.col_offsets[name] + (c_buf.start - strip.start) * px,
                                   buffer_offset, cached_cols * px,
                                   f"halo columns of {name} from its cache", r_buf.size,
                                   entry.halo_cols * px, pitch))
        if cached_rows and c_fresh.size:
            strip = self._rows.get((name, j))
            if strip is None or not strip.holds(r_buf.start, r_fresh.start):
                raise McuforgeError(f"row cache of {name}: rows [{r_buf.start}, {r_fresh.start}) "
                                    "are not held")
            row_bytes = c_fresh.size * px
            copies.append(ByteCopy(self.row_offsets[(name, j)] + (r_buf.start - strip.start)
                                   * row_bytes, buffer_offset + cached_cols * px, row_bytes,
                                   f"halo rows of {name} from its cache", cached_rows,
                                   row_bytes, pitch))
        if entry.halo_cols:
            if r_buf.size > entry.col_cache_rows:
                raise McuforgeError(f"column cache of {name}: {r_buf.size} rows, room for "
                                    f"{entry.col_cache_rows}")
            copies.extend(self._keep_cols(name, entry.halo_cols, c_buf, r_buf.size, buffer_offset,
                                          pitch, px))
        if entry.halo_rows and c_fresh.size:
            copies.extend(self._keep_rows(name, j, entry.halo_rows, r_buf,
                                          buffer_offset + cached_cols * px, pitch, c_fresh.size * px))
        return copies

    def _keep_cols(self, name: str, width: int, c_buf, rows: int, buffer_offset: int,
                   pitch: int, px: int) -> list[ByteCopy]:
        cache, cache_pitch = self.col_offsets[name], width * px
        old = self._cols.get(name)
        strip, moved, (lo, hi) = _merge(old, c_buf.start, c_buf.stop, width)
        copies = []
        if moved is not None:
            copies.append(ByteCopy(cache + (moved[0] - old.start) * px,
                                   cache + (moved[0] - strip.start) * px, (moved[1] - moved[0]) * px,
                                   f"shift the column cache of {name}", rows, cache_pitch,
                                   cache_pitch))
        if hi > lo:
            copies.append(ByteCopy(buffer_offset + (lo - c_buf.start) * px,
                                   cache + (lo - strip.start) * px, (hi - lo) * px,
                                   f"keep the last columns of {name}", rows, pitch, cache_pitch))
        self._cols[name] = strip
        return copies

    def _keep_rows(self, name: str, j: int, height: int, r_buf, fresh_offset: int, pitch: int,
                   row_bytes: int) -> list[ByteCopy]:
        cache = self.row_offsets[(name, j)]
        old = self._rows.get((name, j))
        strip, moved, (lo, hi) = _merge(old, r_buf.start, r_buf.stop, height)
        copies = []
        if moved is not None:
            copies.append(ByteCopy(cache + (moved[0] - old.start) * row_bytes,
                                   cache + (moved[0] - strip.start) * row_bytes,
                                   (moved[1] - moved[0]) * row_bytes,
                                   f"shift the row cache of {name}"))
        if hi > lo:
            copies.append(ByteCopy(fresh_offset + (lo - r_buf.start) * pitch,
                                   cache + (lo - strip.start) * row_bytes, row_bytes,
                                   f"keep the last rows of {name}", hi - lo, pitch, row_bytes))
        self._rows[(name, j)] = strip
        return copies


def cached_elementwise_aligned(graph: Graph, geometry: PatchGeometry, op: Op) -> bool:
    """For an element-wise op whose output has a cache: whether some input it may write over
    starts, in every patch, as many rows (and columns) into its buffer as the output's fresh rows
    (and columns) start into the output's buffer (the condition `check_cached_overlaps` checks on
    the plan)."""
    out = op.outputs[0]
    if out == geometry.stage.split or geometry.config.halo == "none":
        return True
    entry = halo_cache_layout(graph, geometry).of(out)
    if entry is None:
        return True

    def aligned(name: str, patches) -> bool:
        return all(next(r for r in patch.reads[op.name] if r.tensor == name).interval.start
                   - patch.buffers[name].start == patch.fresh[out].start - patch.buffers[out].start
                   for patch in patches)

    for name in graph.activation_inputs(op):
        if name == geometry.stage.input:
            continue
        if aligned(name, geometry.rows) and aligned(name, geometry.cols):
            return True
    return False


def check_cached_overlaps(plan: ArenaPlan, layout: HaloCacheLayout, ops: list[Op],
                          patch_ops: list) -> None:
    """Refuse overlaps the halo caches would break. An element-wise op (the residual ADD) may write
    over an input whose rows (columns) are cached too, when in every patch its fresh output window
    starts where the input window it reads starts, with rows no further apart than the input's:
    each byte is then read before it is written, and the cached rows and columns filled in beside
    them afterwards land on input positions no later op reads. An element-wise op whose output has
    no cache needs its output window to start at or before the input window, rows no further
    apart. ``patch_ops``: per patch planned by ``plan``, the `patch_emit` items of the stage's ops
    (their ``anchors`` and row ``pitches``)."""
    producer = {op.outputs[0]: k for k, op in enumerate(ops)}
    for overlap in plan.overlaps:
        entry = layout.of(overlap.output)
        if entry is None and overlap.kind is not OverlapKind.ELEMENTWISE:
            continue
        k = producer[overlap.output]
        safe = overlap.kind is OverlapKind.ELEMENTWISE and overlap.output_offset == 0
        for per_patch in patch_ops if safe else ():
            if not _trails_its_input(per_patch[k], overlap.input, exact=entry is not None):
                safe = False
                break
        if not safe:
            raise UnsupportedOpError(f"{overlap.kind.value} overlap on {overlap.output}, whose rows "
                                     "or columns are cached: not supported by the generated C")


def _trails_its_input(item, input_name: str, exact: bool) -> bool:
    """Whether the output window of ``item`` (a `patch_emit` op of one patch) starts where
    (``exact``) or before the windows it reads of ``input_name`` start, its rows no further apart."""
    def pitch(key: str) -> int:
        tensor = item.graph.tensor(key)
        dense = tensor.nbytes // tensor.shape[1] if tensor.shape[1] else 0
        return item.pitches.get(key, dense)

    out_key = next(key for key in item.anchors if key.endswith(":out"))
    out = item.anchors[out_key]
    reads = [key for key, anchor in item.anchors.items()
             if anchor[0] == "local" and anchor[1] == input_name and ":in" in key]
    if not reads:
        return not exact
    return all((item.anchors[key][2] == out[2] if exact else out[2] <= item.anchors[key][2])
               and pitch(out_key) <= pitch(key) for key in reads)
