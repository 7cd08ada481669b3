"""Row halo caches in the generated C (row strips with ``+halo-full``): byte copies, no recomputation.

With halo caching a strip computes only the rows of each stage tensor that no earlier strip
computed (`analysis/receptive.py`); the rows above them, which the next op's window also reads, come
from a per-tensor row cache of ``halo_r x W x C`` bytes (`patch/halo_cache.py`). Rows of a strip
are contiguous, so the cache traffic is plain ``memmove`` calls between arena regions:

- *fill*: after the op has written its fresh rows at ``buffer + cached_rows`` (the kernel's output
  pointer), the cached rows are copied from the cache to the top of the buffer;
- *keep*: the cache then takes the buffer's last rows. It always holds the highest rows computed so
  far (with residual branches a later buffer may end above an earlier one): rows the new buffer does
  not have are moved down inside the cache first, then the buffer's rows are copied in.

The same bookkeeping runs in Python at generation time and checks that every cached row a strip
needs is in the cache, mirroring `runtime/patch.py`, whose reference execution of the same
schedule is bit-exact with layer-based execution. `cached_elementwise_aligned` and
`check_cached_overlaps` refuse the overlaps (an ADD written over its input) that the cache copies
would break. Caches are rows of full-width buffers: grids with several columns recompute halos.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.overlap import OverlapKind
from ..analysis.receptive import Interval
from ..errors import McuforgeError, UnsupportedOpError
from ..ir import Graph, Op
from ..planner.arena import ArenaPlan
from ..patch.halo_cache import HaloCacheLayout, halo_cache_layout
from ..patch.geometry import PatchGeometry


@dataclass(frozen=True)
class ByteCopy:
    """``memmove(A + dst, A + src, nbytes)``; ``what`` says why (for the comment in model.c)."""

    src: int
    dst: int
    nbytes: int
    what: str


class RowCaches:
    """Offsets and contents of every row cache, starting at arena offset ``base``."""

    def __init__(self, graph: Graph, layout: HaloCacheLayout, base: int):
        self.graph = graph
        self.entries = {t.tensor: t for t in layout.tensors if t.halo_rows}
        self.offsets: dict[str, int] = {}
        cursor = base
        for name, entry in self.entries.items():
            self.offsets[name] = cursor
            cursor += entry.row_cache_bytes
        self.total_bytes = cursor - base
        self._held: dict[str, tuple[int, list[bool]]] = {}  # name -> (first row, valid rows)

    def _row_bytes(self, name: str) -> int:
        tensor = self.graph.tensor(name)
        return tensor.nbytes // tensor.shape[1]

    def copies(self, name: str, buffer: Interval, fresh: Interval, buffer_offset: int
               ) -> list[ByteCopy]:
        """The copies that fill ``name``'s buffer (rows ``buffer``, at arena ``buffer_offset``)
        from its cache, then keep its last rows; empty when the tensor has no cache."""
        entry = self.entries.get(name)
        if entry is None or buffer.size == 0:
            return []
        row_bytes = self._row_bytes(name)
        cache = self.offsets[name]
        copies = []
        cached = fresh.start - buffer.start
        if cached:
            start, valid = self._held.get(name, (0, []))
            lo, hi = buffer.start - start, fresh.start - start
            if lo < 0 or hi > len(valid) or not all(valid[lo:hi]):
                raise McuforgeError(f"row cache of {name}: rows [{buffer.start}, {fresh.start}) "
                                    "are not held")
            copies.append(ByteCopy(cache + lo * row_bytes, buffer_offset, cached * row_bytes,
                                   f"halo rows of {name} from its cache"))
        copies.extend(self._keep(name, entry.halo_rows, buffer, buffer_offset, row_bytes))
        return copies

    def _keep(self, name: str, height: int, buffer: Interval, buffer_offset: int,
              row_bytes: int) -> list[ByteCopy]:
        cache = self.offsets[name]
        old_start, old_valid = self._held.get(name, (buffer.start, []))
        old_stop = old_start + len(old_valid)
        new_stop = max(old_stop, buffer.stop)
        new_start = max(new_stop - height, min(old_start, buffer.start))
        valid = [False] * (new_stop - new_start)
        copies = []
        keep_lo, keep_hi = max(new_start, old_start), min(old_stop, new_stop)
        if keep_hi > keep_lo and keep_lo != new_start:
            copies.append(ByteCopy(cache + (keep_lo - old_start) * row_bytes,
                                   cache + (keep_lo - new_start) * row_bytes,
                                   (keep_hi - keep_lo) * row_bytes, f"shift the cache of {name}"))
        for row in range(keep_lo, keep_hi):
            valid[row - new_start] = old_valid[row - old_start]
        take_lo, take_hi = max(new_start, buffer.start), min(new_stop, buffer.stop)
        if take_hi > take_lo:
            copies.append(ByteCopy(buffer_offset + (take_lo - buffer.start) * row_bytes,
                                   cache + (take_lo - new_start) * row_bytes,
                                   (take_hi - take_lo) * row_bytes, f"keep the last rows of {name}"))
            for row in range(take_lo, take_hi):
                valid[row - new_start] = True
        self._held[name] = (new_start, valid)
        return copies


def cached_elementwise_aligned(graph: Graph, geometry: PatchGeometry, op: Op) -> bool:
    """For an element-wise op whose output has a row cache: whether some input it may write over
    starts, in every strip, as many rows into its buffer as the output's fresh rows start into the
    output's buffer (the condition `check_cached_overlaps` checks on the plan)."""
    out = op.outputs[0]
    if out == geometry.stage.split or geometry.config.halo != "full":
        return True
    entry = halo_cache_layout(graph, geometry).of(out)
    if entry is None or not entry.halo_rows:
        return True
    for name in graph.activation_inputs(op):
        if name == geometry.stage.input:
            continue
        if all(next(r for r in row.reads[op.name] if r.tensor == name).interval.start
               - row.buffers[name].start == row.fresh[out].start - row.buffers[out].start
               for row in geometry.rows):
            return True
    return False


def check_cached_overlaps(plan: ArenaPlan, layout: HaloCacheLayout, ops: list[Op],
                          patch_ops: list) -> None:
    """Refuse overlaps the row caches would break. An element-wise op (the residual ADD) may write
    over an input whose rows are cached too, when in every patch its fresh output rows start where
    the input rows it reads start: each byte is then read before it is written, and the cached rows
    filled in above them afterwards land on input rows no later op reads. ``patch_ops``: per patch
    planned by ``plan``, the `patch_emit` items of the stage's ops (their ``anchors``)."""
    producer = {op.outputs[0]: k for k, op in enumerate(ops)}
    for overlap in plan.overlaps:
        entry = layout.of(overlap.output)
        if entry is None or not entry.halo_rows:
            continue
        k = producer[overlap.output]
        aligned = overlap.kind is OverlapKind.ELEMENTWISE and overlap.output_offset == 0
        for per_patch in patch_ops if aligned else ():
            item = per_patch[k]
            reads = [anchor for key, anchor in item.anchors.items()
                     if anchor[0] == "local" and anchor[1] == overlap.input and ":in" in key]
            out = next(anchor for key, anchor in item.anchors.items() if key.endswith(":out"))
            if not reads or any(read[2] != out[2] for read in reads):
                aligned = False
                break
        if not aligned:
            raise UnsupportedOpError(f"{overlap.kind.value} overlap on {overlap.output}, whose rows "
                                     "are cached: not supported by the generated C")
