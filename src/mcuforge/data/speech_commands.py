"""Keyword spotting data in the Speech Commands layout, through the same front end as the device.

Layout: ``root/<keyword>/<speaker>_nohash_<n>.wav``, one ~1 s clip per file. Every sub-folder whose
name does not start with ``_`` is a class, in sorted order; the WAVs of ``_background_noise_`` join
the noise bank of the augmentation. The split comes from ``validation_list.txt`` /
``testing_list.txt`` when present (paths relative to ``root``), else from the data set's own rule:
SHA-1 of the file name up to ``_nohash_``, so one speaker never straddles splits, 10 % validation,
10 % test.

Clips are read, resampled to 16 kHz and centred in the 1 s window as every audio data set is
(`audio_clips`: 16-bit mono WAVs; anything else is a one-line error naming the file), the train
split is augmented on the PCM (`audio_augment`), and samples are the int8 features of the chosen
front end (`audio_dataset`: ``micro-speech`` 49 x 40 or ``mfcc`` 49 x 10), so training sees what the
device computes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..errors import DatasetError
from .audio_augment import AudioAugment
from .audio_clips import noise_bank, read_pcm_16k
from .audio_dataset import AudioFeatureDataset, audio_dataset

_VALIDATION_PERCENT = 10.0
_TEST_PERCENT = 10.0
_MAX_WAVS_PER_CLASS = 2**27 - 1
_SPLIT_LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}
_NOISE_FOLDER = "_background_noise_"


def _hash_split(path: Path) -> str:
    """The split the Speech Commands README's ``which_set`` assigns to a file."""
    speaker = re.sub(r"_nohash_.*$", "", path.name)
    digest = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    percent = (digest % (_MAX_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_WAVS_PER_CLASS)
    if percent < _VALIDATION_PERCENT:
        return "val"
    if percent < _VALIDATION_PERCENT + _TEST_PERCENT:
        return "test"
    return "train"


def is_speech_commands_folder(root: Path) -> bool:
    """Whether ``root`` holds keyword folders of .wav files."""
    return any(
        folder.is_dir() and not folder.name.startswith("_") and any(folder.glob("*.wav"))
        for folder in root.iterdir()
    )


def _split_of_files(root: Path, files: list[Path]) -> dict[Path, str]:
    listed: dict[str, str] = {}
    if all((root / name).is_file() for name in _SPLIT_LISTS.values()):
        for split, name in _SPLIT_LISTS.items():
            for line in (root / name).read_text().splitlines():
                if line.strip():
                    listed[line.strip()] = split
        return {path: listed.get(path.relative_to(root).as_posix(), "train") for path in files}
    return {path: _hash_split(path) for path in files}


def load_speech_commands(root: str | Path, split: str, frontend: str = "micro-speech",
                         augment: AudioAugment | None = AudioAugment(),
                         progress: bool = True) -> AudioFeatureDataset:
    """The ``split`` ("train", "val" or "test") of a Speech Commands folder as ``frontend`` features
    (module doc); ``augment`` applies to the train split only."""
    root = Path(root)
    if split not in ("train", "val", "test"):
        raise DatasetError(f"Speech Commands has splits 'train', 'val' and 'test', not {split!r}")
    folders = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))), key=lambda p: p.name
    )
    class_names = [folder.name for folder in folders]
    files = [(path, label) for label, folder in enumerate(folders) for path in sorted(folder.glob("*.wav"))]
    splits = _split_of_files(root, [path for path, _ in files])
    chosen = [(path, label) for path, label in files if splits[path] == split]
    if not chosen:
        raise DatasetError(f"{root}: no .wav files in the {split} split")
    use_augment = augment if split == "train" else None
    noise = noise_bank(sorted((root / _NOISE_FOLDER).glob("*.wav"))) if use_augment else ()
    return audio_dataset([read_pcm_16k(path) for path, _ in chosen], [label for _, label in chosen],
                         class_names, str(root), frontend, use_augment, noise,
                         {"files": [path.relative_to(root).as_posix() for path, _ in chosen]}, progress)
