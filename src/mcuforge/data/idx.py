"""IDX files (MNIST, Fashion-MNIST), plain or gzipped.

The IDX layout (LeCun's MNIST page): two zero bytes, one type byte (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), one byte with the number of dimensions, then each dimension as
a big-endian uint32, then the values in row-major order, big-endian. A file whose length disagrees
with its header is reported as truncated (or as having trailing bytes), naming the file.

A folder in the MNIST layout holds ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` and
``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte``, each optionally ending in ``.gz``; the
``-idx3-ubyte`` part may also be written ``.idx3-ubyte``.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .dataset import ArrayDataset

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_DTYPE_CODES = {np.dtype(dtype).newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}

_SPLIT_PREFIXES = {"train": "train", "test": "t10k"}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip data (by its magic number, not its name)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({exc})") from exc


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in one IDX file (plain or gzipped), in native byte order."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise DatasetError(f"{path}: unknown IDX value type 0x{type_code:02x}")
    header_bytes = 4 + 4 * ndim
    if len(data) < header_bytes:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected = header_bytes + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise DatasetError(
            f"{path}: truncated IDX file ({len(data):,} bytes, header {list(shape)} needs {expected:,})"
        )
    if len(data) > expected:
        raise DatasetError(f"{path}: {len(data) - expected:,} unexpected bytes after the IDX data")
    array = np.frombuffer(data, dtype=dtype, offset=header_bytes)
    return array.reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | Path, array: np.ndarray, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (gzipped when ``compress``); used by tests and export tools."""
    array = np.asarray(array)
    code = _DTYPE_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DatasetError(f"IDX cannot hold values of type {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(_IDX_DTYPES[code], copy=False).tobytes()
    if compress:
        payload = gzip.compress(payload)
    Path(path).write_bytes(payload)


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """The file for ``stem`` (e.g. ``train-images-idx3-ubyte``) in any of its usual spellings."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def is_idx_folder(folder: Path) -> bool:
    """Whether ``folder`` holds MNIST-layout IDX files."""
    return find_idx_file(folder, "train-images-idx3-ubyte") is not None or (
        find_idx_file(folder, "t10k-images-idx3-ubyte") is not None
    )


def load_idx_folder(
    folder: str | Path, split: str, class_names: list[str] | None = None, hflip_ok: bool = True
) -> ArrayDataset:
    """The ``split`` ("train" or "test") of an MNIST-layout folder as an `ArrayDataset`."""
    folder = Path(folder)
    if split not in _SPLIT_PREFIXES:
        raise DatasetError(f"IDX data sets have splits 'train' and 'test', not {split!r}")
    prefix = _SPLIT_PREFIXES[split]
    images_path = find_idx_file(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = find_idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    for path, what in ((images_path, "images"), (labels_path, "labels")):
        if path is None:
            raise DatasetError(f"{folder}: no {prefix}-{what}-idx*-ubyte[.gz] file for the {split} split")
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim not in (3, 4) or images.dtype != np.uint8:
        raise DatasetError(f"{images_path}: expected uint8 images [N, H, W], got {images.dtype} {list(images.shape)}")
    if labels.ndim != 1:
        raise DatasetError(f"{labels_path}: expected a 1-D label vector, got shape {list(labels.shape)}")
    if labels.shape[0] != images.shape[0]:
        raise DatasetError(
            f"{labels_path}: {labels.shape[0]:,} labels for {images.shape[0]:,} images in {images_path.name}"
        )
    if images.ndim == 3:
        images = images[..., None]
    if class_names is None:
        count = int(labels.max()) + 1 if len(labels) else 0
        class_names = [str(k) for k in range(count)]
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise DatasetError(f"{labels_path}: labels outside 0..{len(class_names) - 1}")
    return ArrayDataset(
        images=np.ascontiguousarray(images),
        labels=labels.astype(np.int64),
        class_names=class_names,
        source=str(images_path),
        hflip_ok=hflip_ok,
    )
