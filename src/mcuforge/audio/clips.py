"""The one clip rule: how a clip of any length becomes the window a keyword-spotting model hears.

Training, evaluation, `mcuforge listen`, the demo and the generated C (``mcuforge_listen`` in
codegen/templates/frontend/mf_listen.c.j2) all do the same:

  * the clip window is ``clip_window`` samples (`CLIP_WINDOW`: 16,000, one second at 16 kHz; a
    model trained by mcuforge records its own in its ``mcuforge.kws`` metadata);
  * a shorter clip is **centred** in it — `centred_start`: ``(clip_window - n) // 2`` samples of zeros
    before it (floor division), the rest after — and a longer one is cut to its centred window (the
    same offset, negative), so a trimmed recording sits in the middle of the second the model hears;
  * the front end's frame ``k`` then reads samples ``hop * k .. hop * k + window - 1`` of that window,
    with zeros past its end, for exactly the model's number of frames (`fit_clip`: 15,840 samples for
    micro_speech's 49 frames of a 16,000-sample window).
"""

from __future__ import annotations

import numpy as np

from ..errors import McuforgeError

CLIP_WINDOW = 16_000  # one second at 16 kHz


def clip_samples(frames: int, window_samples: int, hop_samples: int) -> int:
    """Samples that ``frames`` frames span (15,840 for micro_speech's 49)."""
    return window_samples + (frames - 1) * hop_samples


def to_int16(signal: np.ndarray) -> np.ndarray:
    """Round a float signal (int16 units) half to even and saturate it to int16."""
    return np.clip(np.rint(signal), -32768, 32767).astype(np.int16)


def centred_start(length: int, samples: int = CLIP_WINDOW) -> int:
    """Where a clip of ``length`` samples starts in the window: centred (negative when it is longer)."""
    return (samples - length) // 2


def place_in_window(clip: np.ndarray, start: int, samples: int = CLIP_WINDOW) -> np.ndarray:
    """float [..., samples]: ``clip`` [..., n] from sample ``start`` of the window on (cut where it
    sticks out), zeros around it."""
    clip = np.asarray(clip, dtype=np.float64)
    out = np.zeros(clip.shape[:-1] + (samples,), dtype=np.float64)
    first, last = max(start, 0), min(start + clip.shape[-1], samples)
    if last > first:
        out[..., first:last] = clip[..., first - start:last - start]
    return out


def fit_to_window(pcm: np.ndarray, samples: int = CLIP_WINDOW) -> np.ndarray:
    """int16 ``pcm`` [..., n] centred in (or cut centred to) ``samples`` samples (module doc)."""
    pcm = np.asarray(pcm)
    if pcm.shape[-1] == samples:
        return pcm.astype(np.int16)
    return to_int16(place_in_window(pcm, centred_start(pcm.shape[-1], samples), samples))


def fit_clip(pcm: np.ndarray, frames: int, window_samples: int = 480, hop_samples: int = 320,
             clip_window: int = CLIP_WINDOW) -> np.ndarray:
    """int16 [..., n] → int16 [..., clip_samples(frames)]: the samples the front end's ``frames``
    frames read, as ``mcuforge_listen`` does: centred in ``clip_window`` (`fit_to_window`), then cut
    to the frames' span or padded with zeros after the window (module doc)."""
    if frames < 1:
        raise McuforgeError(f"a model window of {frames} frames: it must be at least 1")
    if clip_window < 1:
        raise McuforgeError(f"a clip window of {clip_window} samples: it must be at least 1")
    window = fit_to_window(pcm, clip_window)
    length = clip_samples(frames, window_samples, hop_samples)
    fitted = np.zeros(window.shape[:-1] + (length,), dtype=np.int16)
    keep = min(length, clip_window)
    fitted[..., :keep] = window[..., :keep]
    return fitted
