"""The Free Spoken Digit Dataset (FSDD): real recordings of the digits 0-9, split by speaker.

Layout: ``recordings/{digit}_{speaker}_{index}.wav``, 8 kHz 16-bit mono, trimmed to the spoken
word (0.14 to 1.3 s). The reference folder holds 2,500 recordings: 5 speakers (george, jackson,
lucas, nicolas, yweweler) x 10 digits x 50. Classes are "0".."9" (the digit is the label).

Split by speaker, so the test speaker is never heard in training: the test split is one speaker's
500 clips, the train split the other speakers'. The default test speaker is the 5th in sorted
order (``yweweler``); ``fsdd:NAME`` names another (`load_dataset`). Clips are resampled to 16 kHz and
centred in the 1 s window (`audio_clips`); the training split is augmented on the PCM
(`audio_augment`, unless the caller turns it off) and both splits are turned into features by the
chosen front end (`audio_dataset`).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DatasetError
from ..reference import reference_dir
from .audio_augment import AudioAugment
from .audio_clips import noise_bank, read_pcm_16k
from .audio_dataset import AudioFeatureDataset, audio_dataset

FSDD_CLASSES = [str(digit) for digit in range(10)]
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def fsdd_dir() -> Path:
    """The FSDD recordings folder of the reference data, or a one-line `DatasetError`."""
    folder = reference_dir() / "data" / "fsdd" / "recordings"
    if not folder.is_dir():
        raise DatasetError(f"FSDD not found at {folder} (set MCUFORGE_REFERENCE to the reference folder)")
    return folder


def is_fsdd_folder(folder: Path) -> bool:
    """Whether ``folder`` holds FSDD-named WAV files (``{digit}_{speaker}_{index}.wav``)."""
    return any(_NAME.match(path.name) for path in folder.glob("*.wav"))


def fsdd_files(folder: Path) -> list[tuple[Path, int, str]]:
    """(path, digit, speaker) of every FSDD recording in ``folder``, sorted by file name."""
    found = []
    for path in sorted(folder.glob("*.wav")):
        match = _NAME.match(path.name)
        if match:
            found.append((path, int(match.group(1)), match.group(2)))
    if not found:
        raise DatasetError(f"{folder}: no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav)")
    return found


def fsdd_speakers(folder: Path) -> list[str]:
    """The speakers of ``folder``, sorted."""
    return sorted({speaker for _, _, speaker in fsdd_files(folder)})


def default_test_speaker(speakers: list[str]) -> str:
    """The speaker held out by default: the 5th in sorted order (the last when there are fewer)."""
    return speakers[min(4, len(speakers) - 1)]


def load_fsdd(folder: str | Path | None, split: str, frontend: str = "micro-speech",
              test_speaker: str | None = None, augment: AudioAugment | None = AudioAugment(),
              progress: bool = True) -> AudioFeatureDataset:
    """The ``split`` ("train": every speaker but ``test_speaker``; "test": ``test_speaker`` only) of
    FSDD, as ``frontend`` features (module doc); ``augment`` applies to the train split only."""
    folder = Path(folder) if folder is not None else fsdd_dir()
    if split not in ("train", "test"):
        raise DatasetError(f"FSDD has the splits 'train' and 'test' (by speaker), not {split!r}")
    files = fsdd_files(folder)
    speakers = sorted({speaker for _, _, speaker in files})
    held_out = test_speaker or default_test_speaker(speakers)
    if held_out not in speakers:
        raise DatasetError(f"{folder}: no speaker {held_out!r} (speakers: {', '.join(speakers)})")
    if len(speakers) < 2:
        raise DatasetError(f"{folder}: a split by speaker needs two speakers or more, found {speakers}")
    chosen = [(path, digit) for path, digit, speaker in files if (speaker == held_out) == (split == "test")]
    clips = [read_pcm_16k(path) for path, _ in chosen]
    train_speakers = [name for name in speakers if name != held_out]
    metadata = {"test_speaker": held_out, "train_speakers": train_speakers,
                "speakers": [held_out] if split == "test" else train_speakers,
                "files": [path.name for path, _ in chosen]}
    use_augment = augment if split == "train" else None
    return audio_dataset(clips, [digit for _, digit in chosen], FSDD_CLASSES, str(folder), frontend,
                         use_augment, noise_bank() if use_augment else (), metadata, progress)
