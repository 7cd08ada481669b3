"""CIFAR-10/100 python batches: layout, pixel order, and errors for truncated or foreign pickles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mcuforge.data.cifar import load_cifar_folder, read_cifar_pickle
from mcuforge.data.registry import load_dataset
from mcuforge.errors import DatasetError


def _dump(path, obj):
    with open(path, "wb") as stream:
        pickle.dump(obj, stream, protocol=2)


def _cifar10(folder, per_batch=6):
    rng = np.random.default_rng(1)
    batches = []
    for name in ["data_batch_1", "data_batch_2", "test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, size=per_batch).tolist())
        _dump(folder / name, {b"batch_label": b"x", b"data": data, b"labels": labels})
        batches.append((data, labels))
    _dump(folder / "batches.meta", {b"label_names": [f"class{k}".encode() for k in range(10)]})
    return batches


def test_cifar10_train_concatenates_batches_and_orders_planes(tmp_path):
    batches = _cifar10(tmp_path)
    dataset = load_cifar_folder(tmp_path, "train")
    assert dataset.images.shape == (12, 32, 32, 3)
    assert dataset.class_names[3] == "class3"
    first = batches[0][0][0]
    # red plane first: pixel (row 0, col 1) of channel G is byte 1024 + 1
    assert dataset.images[0, 0, 1, 1] == first[1024 + 1]
    assert dataset.images[0, 2, 5, 2] == first[2048 + 2 * 32 + 5]
    assert dataset.labels.tolist() == batches[0][1] + batches[1][1]
    assert len(load_dataset(tmp_path, "test")) == 6


def test_cifar100_uses_fine_labels(tmp_path):
    data = np.zeros((4, 3072), np.uint8)
    _dump(tmp_path / "train", {b"data": data, b"fine_labels": [0, 99, 5, 7], b"coarse_labels": [0, 1, 2, 3]})
    _dump(tmp_path / "test", {b"data": data[:2], b"fine_labels": [1, 2], b"coarse_labels": [0, 0]})
    _dump(tmp_path / "meta", {b"fine_label_names": [f"f{k}".encode() for k in range(100)]})
    dataset = load_dataset(tmp_path, "train")
    assert dataset.num_classes == 100 and dataset.labels.tolist() == [0, 99, 5, 7]


def test_truncated_pickle_names_the_file(tmp_path):
    _cifar10(tmp_path)
    path = tmp_path / "data_batch_2"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DatasetError, match="data_batch_2.*corrupt or truncated"):
        load_cifar_folder(tmp_path, "train")


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    _dump(tmp_path / "test_batch", {b"data": Evil()})
    with pytest.raises(DatasetError, match="refusing to load .*print"):
        read_cifar_pickle(tmp_path / "test_batch")


def test_wrong_data_shape(tmp_path):
    _cifar10(tmp_path)
    _dump(tmp_path / "test_batch", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DatasetError, match=r"test_batch: 'data' should be uint8 \[N, 3072\]"):
        load_cifar_folder(tmp_path, "test")
