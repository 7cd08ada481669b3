"""CIFAR-10 and CIFAR-100 in their "python version" layout (the files inside cifar-10-python.tar.gz).

CIFAR-10: ``data_batch_1`` .. ``data_batch_5`` (train), ``test_batch``, ``batches.meta``
(``label_names``). CIFAR-100: ``train``, ``test``, ``meta`` (``fine_label_names``); the fine labels
are used. Each batch is a pickled dict with ``data`` (uint8 [N, 3072], the red plane then green then
blue, 32x32 each) and ``labels`` / ``fine_labels``. The files were pickled by Python 2, so they are read
with ``encoding="bytes"``.

Pickle can run code, so these files are read with an unpickler that only rebuilds plain containers
and numpy arrays; anything else is refused as a corrupt file.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .dataset import ArrayDataset

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds dicts, lists, strings and numpy arrays, and nothing else."""

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_cifar_pickle(path: str | Path) -> dict[str, object]:
    """One CIFAR pickle as a dict with str keys; a truncated or foreign file raises `DatasetError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        loaded = _ArraysOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # pickle raises many types (EOFError, UnpicklingError, ValueError, ...)
        raise DatasetError(f"{path}: corrupt or truncated CIFAR pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(loaded, dict):
        raise DatasetError(f"{path}: expected a pickled dict, found {type(loaded).__name__}")
    return {_text(key): value for key, value in loaded.items()}


def _batch_arrays(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = read_cifar_pickle(path)
    if "data" not in batch or label_key not in batch:
        raise DatasetError(f"{path}: missing 'data' or '{label_key}' in the CIFAR batch")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{path}: 'data' should be uint8 [N, 3072], found {data.dtype} {list(data.shape)}")
    if labels.shape != (data.shape[0],):
        raise DatasetError(f"{path}: {data.shape[0]} images but {labels.size} labels")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def cifar_variant(folder: Path) -> int | None:
    """10 or 100 when ``folder`` holds the CIFAR-10 / CIFAR-100 python files, else None."""
    if (folder / "batches.meta").is_file() or (folder / "data_batch_1").is_file():
        return 10
    if (folder / "meta").is_file() and ((folder / "train").is_file() or (folder / "test").is_file()):
        return 100
    return None


def load_cifar_folder(folder: str | Path, split: str) -> ArrayDataset:
    """The ``split`` ("train" or "test") of a CIFAR-10 or CIFAR-100 python folder."""
    folder = Path(folder)
    if split not in ("train", "test"):
        raise DatasetError(f"CIFAR has splits 'train' and 'test', not {split!r}")
    variant = cifar_variant(folder)
    if variant is None:
        raise DatasetError(f"{folder}: no CIFAR-10 (data_batch_1, batches.meta) or CIFAR-100 (train, meta) files")
    if variant == 10:
        meta_path, names_key, label_key = folder / "batches.meta", "label_names", "labels"
        if split == "train":
            batch_paths = sorted(folder.glob("data_batch_*"), key=lambda p: p.name)
        else:
            batch_paths = [folder / "test_batch"]
    else:
        meta_path, names_key, label_key = folder / "meta", "fine_label_names", "fine_labels"
        batch_paths = [folder / split]
    missing = [p for p in batch_paths if not p.is_file()]
    if not batch_paths or missing:
        raise DatasetError(f"{folder}: missing CIFAR-{variant} file {missing[0].name if missing else 'data_batch_1'}")
    parts = [_batch_arrays(path, label_key) for path in batch_paths]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if meta_path.is_file():
        meta = read_cifar_pickle(meta_path)
        class_names = [_text(name) for name in meta.get(names_key, [])]
    else:
        class_names = []
    if len(class_names) < variant:
        class_names = [str(k) for k in range(variant)]
    return ArrayDataset(
        images=np.ascontiguousarray(images),
        labels=labels,
        class_names=class_names,
        source=str(folder),
        hflip_ok=True,
    )
