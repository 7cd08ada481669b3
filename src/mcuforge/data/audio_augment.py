"""Keyword-spotting augmentation on the PCM, before the front end (so the model trains on exactly
the features the device computes from such a sound).

Per clip, in this order, every draw from one ``numpy.random.Generator`` (the training loop seeds it
from (seed, epoch, step), so a batch is a function of its position in the run):

  1. **speed**: a factor ``s`` uniform in ``speed``; the clip is resampled by the rational ratio
     closest to ``1 / s`` with denominator ≤ 32 (``scipy.signal.resample_poly``), so it plays
     ``s`` times faster and its pitch moves with it, as a faster speaker's would;
  2. **time shift**: the clip is placed at its centred offset (`audio_clips.fit_to_window`) moved by a whole number of samples uniform in ±``shift_ms``, kept inside
     the window when it fits;
  3. **volume**: a gain uniform in ``volume``;
  4. **background noise**, with probability ``noise_probability``: a random stretch of a random
     recording of the noise bank (wrapped around), scaled so that the clip's power over the
     clip's own samples divided by the noise's is the SNR, uniform in ``snr_db`` (dB), added over
     the whole window; then rounding and saturation to int16.

Then, when asked (off by default, see the fields), on the batch's front-end features (`mask_features`, SpecAugment: Park et al. 2019, its time
and frequency masking without time warping), from a second generator seeded by the same seed:
``freq_masks`` bands of 0..``freq_mask_bins`` adjacent channels and ``time_masks`` spans of
0..``time_mask_frames`` adjacent frames (widths and positions uniform) are set to the clip's mean
feature, so the network cannot lean on any one band or moment of one speaker's voice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np
from scipy.signal import resample_poly

from .audio_clips import CLIP_SAMPLES, SAMPLE_RATE, centred_start, place_in_window, to_int16


@dataclass(frozen=True)
class AudioAugment:
    """The ranges of the augmentation (module doc); ``AudioAugment.none()`` changes nothing."""

    speed: tuple[float, float] = (0.8, 1.2)
    shift_ms: float = 100.0
    volume: tuple[float, float] = (0.6, 1.4)
    noise_probability: float = 0.5
    snr_db: tuple[float, float] = (10.0, 40.0)
    # SpecAugment, off by default: 2 bands of <= 6 bins and 2 spans of <= 6 frames, with the other
    # defaults and 30 epochs, gave yweweler float 71.8 %, int8 68.6 % (without: 72.8 %, 73.4 %); the
    # 0.5-wide DS-CNN then underfits (train 73 %, not 97 %).
    freq_masks: int = 0
    freq_mask_bins: int = 6
    time_masks: int = 0
    time_mask_frames: int = 6

    @staticmethod
    def none() -> "AudioAugment":
        """No speed change, shift, gain, noise or masking."""
        return AudioAugment((1.0, 1.0), 0.0, (1.0, 1.0), 0.0, freq_masks=0, time_masks=0)

    def to_dict(self) -> dict:
        """A JSON-friendly dict (for run records)."""
        return asdict(self)


def _speed_ratio(speed: float) -> tuple[int, int]:
    """(up, down) of the resampling that plays a clip ``speed`` times faster."""
    ratio = Fraction(1.0 / speed).limit_denominator(32)
    return ratio.numerator, ratio.denominator


def _place(clip: np.ndarray, shift: int, samples: int) -> np.ndarray:
    """``clip`` (float) at its centred offset moved by ``shift``, inside a window of ``samples``."""
    n = len(clip)
    start = centred_start(n, samples) + shift
    start = min(max(start, 0), samples - n) if n <= samples else min(max(start, samples - n), 0)
    return place_in_window(clip, start, samples)


def augment_clips(clips: Sequence[np.ndarray], rng: np.random.Generator, augment: AudioAugment,
                  noise: Sequence[np.ndarray] = (), samples: int = CLIP_SAMPLES) -> np.ndarray:
    """int16 [len(clips), samples]: each int16 clip (16 kHz, any length) augmented (module doc)."""
    out = np.empty((len(clips), samples), dtype=np.int16)
    shift_max = int(round(augment.shift_ms * SAMPLE_RATE / 1000))
    for index, clip in enumerate(clips):
        signal = np.asarray(clip, dtype=np.float64)
        speed = rng.uniform(*augment.speed)
        up, down = _speed_ratio(speed)
        if up != down and len(signal):
            signal = resample_poly(signal, up, down)
        shift = int(rng.integers(-shift_max, shift_max + 1)) if shift_max else 0
        gain = rng.uniform(*augment.volume)
        signal = signal * gain
        window = _place(signal, shift, samples)
        use_noise = rng.random() < augment.noise_probability
        snr_db = rng.uniform(*augment.snr_db)
        if use_noise and noise and len(signal):
            recording = np.asarray(noise[int(rng.integers(len(noise)))], dtype=np.float64)
            offset = int(rng.integers(len(recording)))
            stretch = np.resize(np.roll(recording, -offset), samples)
            noise_power = float(np.mean(stretch ** 2))
            if noise_power > 0:
                signal_power = float(np.mean(signal ** 2))
                window += stretch * np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
        out[index] = to_int16(window)
    return out


def _mask_axis(images: np.ndarray, rng: np.random.Generator, count: int, widest: int, axis: int,
               fill: np.ndarray) -> None:
    """``count`` masks of 0..``widest`` adjacent rows (axis 1) or columns (axis 2), in place."""
    size = images.shape[axis]
    for index in range(len(images)):
        for _ in range(count):
            width = int(rng.integers(0, min(widest, size) + 1))
            start = int(rng.integers(0, size - width + 1))
            if axis == 1:
                images[index, start:start + width] = fill[index]
            else:
                images[index, :, start:start + width] = fill[index]


def mask_features(images: np.ndarray, rng: np.random.Generator, augment: AudioAugment) -> np.ndarray:
    """uint8 features [N, frames, bins, 1] with SpecAugment's frequency and time masks (module doc),
    each set to its clip's mean feature; a copy."""
    images = np.array(images, copy=True)
    if not len(images) or (augment.freq_masks == 0 and augment.time_masks == 0):
        return images
    fill = np.rint(images.reshape(len(images), -1).mean(axis=1)).astype(images.dtype)
    _mask_axis(images, rng, augment.freq_masks, augment.freq_mask_bins, 2, fill)
    _mask_axis(images, rng, augment.time_masks, augment.time_mask_frames, 1, fill)
    return images
