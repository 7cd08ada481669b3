"""Image folders: classes from folder names, gray vs RGB, resizing, splits, unreadable images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mcuforge.data.image_folder import load_image_folder
from mcuforge.data.registry import dataset_kind, load_dataset
from mcuforge.errors import DatasetError


def _make(root, classes=("cat", "dog"), per_class=10, mode="RGB", size=(12, 10)):
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for k in range(per_class):
            value = 20 * index + k
            Image.new(mode, size, color=value if mode == "L" else (value, 0, 255 - value)).save(folder / f"{k:02d}.png")


def test_rgb_folder_split_every_tenth(tmp_path):
    _make(tmp_path)
    assert dataset_kind(tmp_path) == "image-folder"
    train = load_dataset(tmp_path, "train")
    test = load_dataset(tmp_path, "test")
    assert train.class_names == ["cat", "dog"]
    assert train.images.shape == (18, 10, 12, 3) and test.images.shape == (2, 10, 12, 3)
    assert test.labels.tolist() == [0, 1]
    assert test.images[1, 0, 0].tolist() == [29, 0, 226]  # dog/09.png


def test_gray_folder_is_one_channel_and_resized(tmp_path):
    _make(tmp_path, mode="L")
    dataset = load_image_folder(tmp_path, "train", image_size=(6, 6))
    assert dataset.images.shape == (18, 6, 6, 1)
    assert dataset.images[0, 3, 3, 0] == 0


def test_train_and_test_subfolders(tmp_path):
    _make(tmp_path / "train", per_class=3)
    _make(tmp_path / "test", per_class=2)
    assert len(load_dataset(tmp_path, "train")) == 6
    assert len(load_dataset(tmp_path, "test")) == 4


def test_unreadable_image_names_the_file(tmp_path):
    _make(tmp_path)
    (tmp_path / "dog" / "05.png").write_bytes(b"not a png at all")
    with pytest.raises(DatasetError, match=r"dog/05\.png: unreadable image"):
        load_dataset(tmp_path, "train")


def test_truncated_image_names_the_file(tmp_path):
    _make(tmp_path, size=(64, 64))
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(tmp_path / "cat" / "03.png")
    data = (tmp_path / "cat" / "03.png").read_bytes()
    (tmp_path / "cat" / "03.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"cat/03\.png"):
        load_dataset(tmp_path, "train")


def test_unknown_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not a known data set layout"):
        load_dataset(tmp_path, "train")
    with pytest.raises(DatasetError, match="no such data set folder"):
        load_dataset(tmp_path / "missing", "train")
