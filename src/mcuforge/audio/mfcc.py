"""An MFCC front end in integer arithmetic (the MLPerf Tiny KWS convention: 30 ms windows every 20 ms
at 16 kHz, 40 mel bands from 20 Hz to 4 kHz, 10 MFCC, so 49 × 10 for one second), defined so that the
generated C (`mcuforge.audio.emit`) equals this numpy bit for bit.

The pipeline, integer throughout (the same kernels as micro_speech, `signal_ops`):

1. Hann window (micro_speech's Q12 table), FFT auto-scale, the int16 KISS real FFT of 512 points;
2. energy ``re^2 + im^2`` (uint32) of the bins under the mel bands;
3. 40 triangular HTK-mel filters (``mel = 1127 ln(1 + f / 700)``), weights rounded to Q12 once when
   the tables are built (they are data in the C), summed in uint64;
4. square root, shifted back by the auto-scale (so a band is a magnitude in input units), then
   ``FilterbankLog`` with output scale 64: int16 ``64 ln(magnitude)``;
5. DCT-II (orthonormal) of the 40 log bands to 10 coefficients, Q12 int16 matrix, int64 sums;
6. int8: ``clip((sum + 2^16) >> 17)``: one step is ``OUTPUT_SCALE`` = 0.5 in ln(magnitude) units,
   zero point 0.

No state is carried between frames (unlike micro_speech's noise estimate).
"""

from __future__ import annotations

import numpy as np

from . import signal_ops
# WINDOW and WINDOW_SHIFT are also this module's own constants for the C emitter (audio/emit.py).
from .micro_speech import (FFT_LENGTH, HOP_SAMPLES, SAMPLE_RATE, WINDOW, WINDOW_SAMPLES,  # noqa: F401
                           WINDOW_SHIFT, _check_pcm, filterbank_magnitudes, frame_count)

FRONTEND_NAME = "mfcc"
NUM_MEL_BANDS = 40
NUM_CHANNELS = 10  # MFCC per frame
LOWER_HZ, UPPER_HZ = 20.0, 4000.0
WEIGHT_BITS = 12
DCT_BITS = 12
LOG_OUTPUT_SCALE = 64
OUTPUT_SHIFT = DCT_BITS + 5
OUTPUT_SCALE = 2.0 ** (OUTPUT_SHIFT - DCT_BITS) / LOG_OUTPUT_SCALE
"""One int8 step in units of ln(band magnitude) (0.5)."""
OUTPUT_ZERO_POINT = 0

__all__ = ["FRONTEND_NAME", "NUM_CHANNELS", "SAMPLE_RATE", "features", "features_batch",
           "frame_count", "HOP_SAMPLES", "WINDOW_SAMPLES"]


def _mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(hz / 700.0)


def mel_weights() -> np.ndarray:
    """uint64 [257, 40]: Q12 triangular mel weights of the FFT bins (0 outside each band)."""
    bins = FFT_LENGTH // 2 + 1
    bin_hz = np.arange(bins) * SAMPLE_RATE / FFT_LENGTH
    edges = np.linspace(_mel(np.array(LOWER_HZ)), _mel(np.array(UPPER_HZ)), NUM_MEL_BANDS + 2)
    mel = _mel(bin_hz)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (mel[:, None] - lower) / (centre - lower)
    falling = (upper - mel[:, None]) / (upper - centre)
    triangle = np.clip(np.minimum(rising, falling), 0.0, None)
    return np.round(triangle * (1 << WEIGHT_BITS)).astype(np.uint64)


def dct_matrix() -> np.ndarray:
    """int64 [40, 10]: the orthonormal DCT-II of 40 bands to 10 coefficients, Q12."""
    n = np.arange(NUM_MEL_BANDS)[:, None]
    k = np.arange(NUM_CHANNELS)[None, :]
    basis = np.cos(np.pi / NUM_MEL_BANDS * (n + 0.5) * k) * np.sqrt(2.0 / NUM_MEL_BANDS)
    basis[:, 0] /= np.sqrt(2.0)
    return np.round(basis * (1 << DCT_BITS)).astype(np.int64)


MEL_WEIGHTS = mel_weights()
DCT_MATRIX = dct_matrix()
USED_BINS = np.flatnonzero(MEL_WEIGHTS.any(axis=1))
ENERGY_START, ENERGY_END = int(USED_BINS[0]), int(USED_BINS[-1]) + 1


def process_windows(windows: np.ndarray) -> np.ndarray:
    """int16 [..., 480] windows → int8 [..., 10] MFCC."""
    magnitudes = filterbank_magnitudes(windows, ENERGY_START, ENERGY_END, MEL_WEIGHTS)
    logs = signal_ops.filterbank_log(magnitudes, LOG_OUTPUT_SCALE, 0)
    sums = logs.astype(np.int64) @ DCT_MATRIX
    rounded = (sums + (1 << (OUTPUT_SHIFT - 1))) >> OUTPUT_SHIFT
    return np.clip(rounded, -128, 127).astype(np.int8)


def features_batch(pcm: np.ndarray) -> np.ndarray:
    """int16 [B, n] clips → int8 [B, frames, 10] (frames = 1 + (n - 480) // 320)."""
    pcm = _check_pcm(pcm, 2)
    frames = frame_count(pcm.shape[1])
    starts = np.arange(frames) * HOP_SAMPLES
    windows = pcm[:, starts[:, None] + np.arange(WINDOW_SAMPLES)[None, :]]
    return process_windows(windows)


def features(pcm: np.ndarray) -> np.ndarray:
    """int16 [n] clip → int8 [frames, 10] MFCC (49 × 10 for 1 s)."""
    return features_batch(_check_pcm(pcm, 1)[None])[0]
