"""Reading WAV files: mono 16-bit PCM only (what the front ends take), through the stdlib `wave`
module; anything else is an `AudioFileError` naming the file and the problem."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from ..errors import AudioFileError


def read_wav(path: Path, expected_rate: int | None = None) -> tuple[np.ndarray, int]:
    """The int16 samples [n] and the sample rate of the mono 16-bit PCM WAV at ``path``; with
    ``expected_rate``, a file at another rate is an error too."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as reader:
            channels, width = reader.getnchannels(), reader.getsampwidth()
            rate, frames = reader.getframerate(), reader.getnframes()
            data = reader.readframes(frames)
    except FileNotFoundError:
        raise AudioFileError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as error:
        raise AudioFileError(f"{path}: not a PCM WAV file ({error})") from None
    if channels != 1:
        raise AudioFileError(f"{path}: {channels} channels, the front end takes mono audio")
    if width != 2:
        raise AudioFileError(f"{path}: {8 * width}-bit samples, the front end takes 16-bit PCM")
    if len(data) != frames * width:
        raise AudioFileError(f"{path}: truncated: the header promises {frames} samples, the data "
                             f"holds {len(data) // width}")
    if expected_rate is not None and rate != expected_rate:
        raise AudioFileError(f"{path}: sample rate {rate} Hz, expected {expected_rate} Hz")
    return np.frombuffer(data, dtype="<i2").astype(np.int16), rate
