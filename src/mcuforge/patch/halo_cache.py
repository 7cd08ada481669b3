"""Halo caches: keep the overlapping rows/columns earlier patches computed instead of recomputing.

MCUNetV2 recomputes the overlap (halo) between neighbouring patches' windows. Caching it (in the
spirit of StreamNet) trades a small buffer for those MACs. Patches run in raster order; along an axis
in cache mode a patch computes only the positions no earlier patch on that axis computed
(`analysis/receptive.py`), and takes the rest of each buffer from a cache:

- ``cols`` mode (horizontal reuse): per stage tensor ``t`` a **column cache** of the last
  ``halo_c(t)`` columns of the previous patch's buffer of ``t``, over that buffer's rows:
  ``max_i rows_i(t) x halo_c(t) x C`` bytes. Rows are still recomputed between patch rows.
- ``full`` mode: the column cache plus a **row cache** of the last ``halo_r(t)`` rows of ``t`` over
  every column ever computed (``halo_r(t) x W(t) x C``): every element is computed once, so the
  stage costs exactly its layer-based MACs.

``halo_c(t)`` is the largest number of cached positions over the grid (for a tensor read by a
``k x k``, stride-``s`` window it is about ``k - s``). The stage input (read in place from the
network input) and the split tensor (tiles are disjoint) need no cache. Every cache lives for the
whole patch stage and is added to every patch's live set (`geometry.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..analysis.receptive import halo_positions
from ..ir import Graph

if TYPE_CHECKING:
    from .geometry import PatchGeometry

HALO_MODES = ("none", "cols", "full")


@dataclass(frozen=True)
class TensorCache:
    """The caches of one stage tensor: halo sizes (positions) and bytes."""

    tensor: str
    halo_rows: int
    halo_cols: int
    row_cache_bytes: int
    col_cache_bytes: int
    col_cache_rows: int


@dataclass(frozen=True)
class HaloCacheLayout:
    """Every tensor's caches for one patch schedule; ``total_bytes`` is what the stage adds."""

    mode: str
    tensors: tuple[TensorCache, ...]

    @property
    def total_bytes(self) -> int:
        """Bytes of every cache together."""
        return sum(t.row_cache_bytes + t.col_cache_bytes for t in self.tensors)

    def of(self, name: str) -> TensorCache | None:
        """The caches of tensor ``name`` (None when it has none)."""
        return next((t for t in self.tensors if t.tensor == name), None)


def halo_cache_layout(graph: Graph, geometry: "PatchGeometry") -> HaloCacheLayout:
    """The caches a schedule needs (empty in ``none`` mode)."""
    mode = geometry.config.halo
    if mode == "none":
        return HaloCacheLayout(mode, ())
    stage = geometry.stage
    produced = [graph.op(name).outputs[0] for name in stage.ops]
    caches = []
    for name in produced:
        if name == stage.split:
            continue
        tensor = graph.tensor(name)
        element_bytes = tensor.nbytes // tensor.num_elements
        channel_bytes = tensor.shape[3] * element_bytes
        halo_cols = halo_positions(geometry.cols, name)
        halo_rows = halo_positions(geometry.rows, name) if mode == "full" else 0
        cache_rows = max(r.buffers[name].size for r in geometry.rows)
        computed_cols = sum(c.fresh[name].size for c in geometry.cols)
        row_bytes = halo_rows * computed_cols * channel_bytes
        col_bytes = cache_rows * halo_cols * channel_bytes
        if row_bytes or col_bytes:
            caches.append(TensorCache(name, halo_rows, halo_cols, row_bytes, col_bytes, cache_rows))
    return HaloCacheLayout(mode, tuple(caches))
