"""Row halo caches in the generated C (row strips with ``+halo-full``): byte copies, no recomputation.

With halo caching a strip computes only the rows of each stage tensor that no earlier strip
computed (`analysis/receptive.py`); the rows above them, which the next op's window also reads, come
from a per-tensor row cache of ``halo_r x W x C`` bytes (`planner/halo_cache.py`). Rows of a strip
are contiguous, so the cache traffic is plain ``memmove`` calls between arena regions:

- *fill*: after the op has written its fresh rows at ``buffer + cached_rows`` (the kernel's output
  pointer), the cached rows are copied from the cache to the top of the buffer;
- *keep*: the cache then takes the buffer's last rows. It always holds the highest rows computed so
  far (with residual branches a later buffer may end above an earlier one): rows the new buffer does
  not have are moved down inside the cache first, then the buffer's rows are copied in.

The same bookkeeping runs in Python at generation time and checks that every cached row a strip
needs is in the cache, mirroring `runtime/patch.py`, whose reference execution of the same
schedule is bit-exact with layer-based execution.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.receptive import Interval
from ..errors import McuforgeError
from ..ir import Graph
from ..planner.halo_cache import HaloCacheLayout


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
