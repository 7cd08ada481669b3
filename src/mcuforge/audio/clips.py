"""Fitting a clip to a model's window, the way the generated C does it (``mcuforge_listen``): frame
``k`` reads samples ``hop * k .. hop * k + window - 1``, zeros past the end of the clip, and exactly
the model's number of frames is computed, so a longer clip is cut and a shorter one padded at the end."""

from __future__ import annotations

import numpy as np

from ..errors import McuforgeError


def clip_samples(frames: int, window_samples: int, hop_samples: int) -> int:
    """Samples that ``frames`` frames span (15,840 for micro_speech's 49)."""
    return window_samples + (frames - 1) * hop_samples


def fit_clip(pcm: np.ndarray, frames: int, window_samples: int = 480, hop_samples: int = 320) -> np.ndarray:
    """int16 [..., n] → int16 [..., clip_samples(frames)]: cut, or padded with zeros at the end."""
    if frames < 1:
        raise McuforgeError(f"a model window of {frames} frames: it must be at least 1")
    pcm = np.asarray(pcm)
    length = clip_samples(frames, window_samples, hop_samples)
    fitted = np.zeros(pcm.shape[:-1] + (length,), dtype=np.int16)
    keep = min(length, pcm.shape[-1])
    fitted[..., :keep] = pcm[..., :keep]
    return fitted
