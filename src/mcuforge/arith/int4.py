"""Signed 4-bit weights packed two per byte, low nibble first (TFLite's layout and the generated C's)."""

from __future__ import annotations

import numpy as np


def unpack_int4(packed: bytes, count: int) -> np.ndarray:
    """``count`` signed 4-bit values packed two per byte, low nibble first (TFLite's layout),
    as int8."""
    raw = np.frombuffer(packed, dtype=np.uint8)
    low = (raw & 0x0F).astype(np.int8)
    high = (raw >> 4).astype(np.int8)
    values = np.stack([low, high], axis=1).reshape(-1)[:count]
    return np.where(values > 7, values - 16, values).astype(np.int8)


def pack_int4(values: np.ndarray) -> bytes:
    """Signed 4-bit values (held as int8 in [-8, 7]) packed two per byte, low nibble first."""
    flat = np.asarray(values, dtype=np.int8).reshape(-1)
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise ValueError("int4 values must lie in [-8, 7]")
    nibbles = (flat.astype(np.uint8) & 0x0F)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes()
