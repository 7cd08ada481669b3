"""Spoken clips as the keyword-spotting models see them: int16 PCM at 16 kHz, exactly one window long.

One rule, used by every audio data set (FSDD, Speech Commands) and by `mcuforge listen`, so that a
clip is prepared the same way for training, evaluation and deployment:

  1. read the WAV (`mcuforge.audio.wav.read_wav`: 16-bit mono PCM, typed one-line errors otherwise);
  2. resample to 16 kHz when the file has another rate, with ``scipy.signal.resample_poly`` (a
     polyphase FIR with a Kaiser window, up/down by the reduced ratio of the two rates), rounded
     half to even and saturated to int16;
  3. fit to the window (``CLIP_SAMPLES`` = 16,000 samples, 1 s) by the one clip rule of
     `mcuforge.audio.clips` (which the generated C follows too): a shorter clip is **centred** —
     ``(window - n) // 2`` samples before it, the rest after — and a longer one is cut to its centred
     window (the same offset rule), so a trimmed recording such as FSDD's sits in the middle of the
     second the front end hears; the padding is zeros. (Padding with quiet noise, at the recording's
     noise floor or 40 dB under the clip, was tried on FSDD and did not change the held-out
     accuracy; FSDD's clips are trimmed to the word, so their own floor cannot be measured.)

The noise bank for augmentation is every 16 kHz noise recording of the reference folder
(``models/tflite_micro/noise_1000ms.wav`` and ``silence_1000ms.wav``: a room's background).
"""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from ..audio.clips import CLIP_WINDOW, centred_start, fit_to_window, place_in_window, to_int16
from ..audio.wav import read_wav
from ..reference import reference_dir

SAMPLE_RATE = 16_000
CLIP_SAMPLES = CLIP_WINDOW
__all__ = ["CLIP_SAMPLES", "SAMPLE_RATE", "NOISE_FILES", "centred_start", "fit_to_window", "noise_bank",
           "place_in_window", "read_clip", "read_pcm_16k", "resample_pcm", "to_int16"]
NOISE_FILES = ("models/tflite_micro/noise_1000ms.wav", "models/tflite_micro/silence_1000ms.wav")


def resample_pcm(pcm: np.ndarray, rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """int16 PCM at ``rate`` -> int16 PCM at ``target_rate`` (`resample_poly`; a copy if equal)."""
    pcm = np.asarray(pcm, dtype=np.int16)
    if rate == target_rate:
        return pcm.copy()
    common = gcd(int(rate), int(target_rate))
    return to_int16(resample_poly(pcm.astype(np.float64), target_rate // common, rate // common))


def read_clip(path: str | Path, samples: int = CLIP_SAMPLES, expected_rate: int | None = None) -> np.ndarray:
    """A WAV file as one int16 [samples] clip at 16 kHz (module doc). ``expected_rate``: refuse a
    file of another rate (one line naming the file) instead of resampling it."""
    pcm, rate = read_wav(path, expected_rate=expected_rate)
    return fit_to_window(resample_pcm(pcm, rate), samples)


def read_pcm_16k(path: str | Path) -> np.ndarray:
    """A WAV file as int16 PCM at 16 kHz, its own length (resampled when needed)."""
    pcm, rate = read_wav(path)
    return resample_pcm(pcm, rate)


def noise_bank(extra: list[Path] | None = None) -> tuple[np.ndarray, ...]:
    """The background-noise recordings (int16, 16 kHz) mixed in by augmentation: the reference
    folder's (those present) and ``extra`` (e.g. a Speech Commands ``_background_noise_`` folder)."""
    paths = [reference_dir() / name for name in NOISE_FILES] + list(extra or [])
    return tuple(read_pcm_16k(path) for path in paths if Path(path).is_file())
