"""Row-buffered in-place depthwise convolution: how many output rows the ring must hold.

An in-place depthwise conv (`overlap.py`, ``INPLACE_DEPTHWISE``) works one channel c at a time and
writes output pixel p of channel c over input pixel p of channel c (HWC layout, same channel count,
output at the input's offset). Instead of copying the whole ``H x W`` input plane aside (docs/architecture.md's
convention), the kernel keeps its most recent output rows in a ring and writes a row back once no
output row still to be computed reads the input rows it covers.

Schedule (one channel; H x W input, OH x OW output, kernel height kh, stride s, top pad pt):

- Output row ``oy`` occupies flat pixel positions ``[oy*OW, (oy+1)*OW)``, so it overwrites input
  rows up to ``R(oy) = min(((oy+1)*OW - 1) // W, H - 1)``.
- Output row ``j`` reads input rows ``j*s - pt .. j*s - pt + kh - 1`` (clipped to the input). It
  reads some row ``<= R(oy)`` only if ``j*s - pt <= R(oy)``, i.e. ``j <= J(oy) = (R(oy) + pt) // s``.
- Row ``oy`` is computed into ring slot ``oy % rows`` at step ``oy`` and written back right after step
  ``T(oy) = max(oy, min(J(oy), OH - 1))``. Safety: every output row that reads an input row the
  write-back covers has index ``<= J(oy)`` and was computed by then; other channels are not touched.
  ``T`` is non-decreasing, so write-backs happen in row order and the pending rows after step ``j``
  are a contiguous range ``[first(j), j]``.
- The ring needs ``rows = max_j (j - first(j) + 1)`` slots: row ``j`` goes to slot ``j % rows`` while
  rows ``first(j) .. j-1`` (fewer than ``rows``, distinct slots) are pending and row ``j - rows`` has
  been written back, so no pending row is overwritten.

Counts. Stride 1 with ``pad_left + pad_right = kw - 1`` (SAME, symmetric): ``OW = W``, so
``R(oy) = oy`` and ``T(oy) = min(oy + pt, OH - 1)``; row ``oy`` is pending after step ``j`` exactly when
``j - pt <= oy <= j``: ``rows = pt + 1``. Stride 2 (``OW <= ceil(W / 2)``): ``R(oy) <= (oy + 1) // 2``,
so a row is released about twice as fast as new input rows are needed and only ``pt // 2 + 1`` rows
stay pending. `row_ring_rows` computes the exact count for any shape by running the schedule;
tests/test_row_ring.py checks ``pt // stride + 1`` for H = W in 7..224 with SAME, symmetric and no
padding, and replays the schedule pixel by pixel:

    stride 1: k=3 pad 1: 2 rows;  k=5 pad 2: 3 rows;  k=7 pad 3: 4 rows;  pad 0: 1 row
    stride 2: k=3 pad 0 or 1: 1 row;  k=5 pad 1: 1 row, pad 2: 2 rows;  k=7 pad 2 or 3: 2 rows

MobileNetV2's 28 x 28 stride-1 3x3 stage thus needs 2 x 28 = 56 B instead of a 784 B plane.
"""

from __future__ import annotations


def row_ring_release(oy: int, in_h: int, in_w: int, out_h: int, out_w: int, stride: int,
                     pad_top: int) -> int:
    """``T(oy)``: the step after which output row ``oy`` may be written over the input."""
    last_row = min(((oy + 1) * out_w - 1) // in_w, in_h - 1)
    last_reader = min((last_row + pad_top) // stride, out_h - 1)
    return max(oy, last_reader)


def row_ring_rows(in_h: int, in_w: int, out_h: int, out_w: int, stride: int, pad_top: int) -> int:
    """Output rows the ring of a row-buffered in-place depthwise conv must hold (module comment)."""
    if out_h <= 0 or out_w <= 0 or in_h <= 0 or in_w <= 0:
        return 0
    rows, first = 0, 0
    for step in range(out_h):
        while row_ring_release(first, in_h, in_w, out_h, out_w, stride, pad_top) < step:
            first += 1
        rows = max(rows, step - first + 1)
    return rows


def row_ring_bytes(in_h: int, in_w: int, out_h: int, out_w: int, stride: int, pad_top: int,
                   element_bytes: int = 1) -> int:
    """Bytes of the ring: ``row_ring_rows`` output rows of one channel."""
    return row_ring_rows(in_h, in_w, out_h, out_w, stride, pad_top) * out_w * element_bytes
