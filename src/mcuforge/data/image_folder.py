"""An image folder per class (the torchvision ``ImageFolder`` layout).

    root/<class name>/<any name>.<png|jpg|jpeg|bmp|gif|webp|ppm|pgm|tif|tiff>

Classes are the sub-folder names in sorted order. When ``root`` has ``train/`` and ``test/`` (or
``val/``) sub-folders, each split is read from its own folder; otherwise every tenth image of each
class (in sorted file order, starting with the tenth) is the test split and the rest is train.

Images are decoded with Pillow. When every image is gray (modes 1, L, I, F, LA) the set has one
channel, else every image is converted to RGB. All images are resized (bilinear, with Pillow's
antialiasing) to ``image_size`` when given, else to the most common size in the folder. An image that
Pillow cannot open or decode is an error that names the file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .dataset import ArrayDataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
_GRAY_MODES = {"1", "L", "I", "F", "LA", "I;16"}
_TEST_EVERY = 10


def _class_folders(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name
    )


def is_image_folder(root: Path) -> bool:
    """Whether ``root`` looks like class folders of images (directly or under train/)."""
    base = root / "train" if (root / "train").is_dir() else root
    return any(_image_files(folder) for folder in _class_folders(base))


def _split_files(root: Path, split: str) -> tuple[list[str], list[tuple[Path, int]]]:
    """The class names and the (file, label) pairs of one split."""
    if split not in ("train", "test", "val"):
        raise DatasetError(f"image folders have splits 'train', 'test' and 'val', not {split!r}")
    if (root / "train").is_dir():
        split_root = root / split
        if not split_root.is_dir() and split == "test":
            split_root = root / "val"
        if not split_root.is_dir():
            raise DatasetError(f"{root}: has train/ but no {split}/ folder")
        class_names = [p.name for p in _class_folders(root / "train")]
        pairs = []
        for folder in _class_folders(split_root):
            if folder.name not in class_names:
                raise DatasetError(f"{folder}: class {folder.name!r} is not among the train/ classes")
            pairs += [(path, class_names.index(folder.name)) for path in _image_files(folder)]
        return class_names, pairs
    if split == "val":
        raise DatasetError(f"{root}: no val/ folder (a single folder splits into 'train' and 'test' only)")
    folders = _class_folders(root)
    class_names = [p.name for p in folders]
    pairs = []
    for label, folder in enumerate(folders):
        for position, path in enumerate(_image_files(folder)):
            in_test = position % _TEST_EVERY == _TEST_EVERY - 1
            if in_test == (split == "test"):
                pairs.append((path, label))
    return class_names, pairs


def _open_image(path: Path, decode: bool):
    """The image at ``path``; ``decode`` reads all pixels (else only the header is parsed)."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        if decode:
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"{path}: unreadable image ({exc})") from exc
    return image


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) from the image's header."""
    image = _open_image(path, decode=False)
    with image:
        return image.mode, image.size


def _to_pixels(image, gray: bool, width: int, height: int) -> np.ndarray:
    """The image as uint8 [height, width, 1 or 3]: scaled to 8 bits, converted and resized."""
    from PIL import Image

    if image.mode in ("I", "I;16", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "F" and values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values * (255.0 / top), 0, 255).astype(np.uint8))
    converted = image.convert("L" if gray else "RGB")
    if converted.size != (width, height):
        converted = converted.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(converted, dtype=np.uint8).reshape(height, width, -1)


def load_image_folder(
    root: str | Path, split: str, image_size: tuple[int, int] | None = None
) -> ArrayDataset:
    """The ``split`` of a class-per-folder image tree as an `ArrayDataset`.

    ``image_size`` is (height, width); all images are resized to it (default: the most common size).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    class_names, pairs = _split_files(root, split)
    if not pairs:
        raise DatasetError(f"{root}: no images for the {split} split")
    headers = [_header(path) for path, _ in pairs]
    gray = all(mode in _GRAY_MODES for mode, _ in headers)
    if image_size is None:
        width, height = Counter(size for _, size in headers).most_common(1)[0][0]
        image_size = (height, width)
    height, width = image_size
    array = np.empty((len(pairs), height, width, 1 if gray else 3), dtype=np.uint8)
    for index, (path, _) in enumerate(pairs):
        with _open_image(path, decode=True) as image:
            try:
                array[index] = _to_pixels(image, gray, width, height)
            except (OSError, ValueError) as exc:
                raise DatasetError(f"{path}: cannot convert image ({exc})") from exc
    return ArrayDataset(
        images=array,
        labels=np.array([label for _, label in pairs], dtype=np.int64),
        class_names=class_names,
        source=str(root),
        hflip_ok=True,
    )
