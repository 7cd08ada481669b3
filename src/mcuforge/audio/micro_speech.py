"""The micro_speech feature pipeline of TensorFlow Lite Micro, bit for bit with its preprocessor model
(``audio_preprocessor_int8.tflite``: SignalWindow → SignalFftAutoScale → SignalRfft → SignalEnergy →
SignalFilterBank → SignalFilterBankSquareRoot → SignalFilterBankSpectralSubtraction → SignalPCAN →
SignalFilterBankLog → int8 scaling), in numpy, vectorised over a batch of clips.

Framing: 30 ms windows (480 samples at 16 kHz) every 20 ms (320 samples), so a clip of ``n``
samples gives ``1 + (n - 480) // 320`` frames (49 for 1 s). The only state carried from frame to
frame is the spectral subtraction's noise estimate (40 uint32, zero at the start of each clip); PCAN
reads it. `features` is one clip, `features_batch` many clips at once (the loop runs over frames,
never over clips), `MicroSpeechState` the streaming form (one 480-sample window per call), which is
what the generated C does (`mcuforge.audio.emit`).

The parameters below are those the preprocessor model's custom options carry (flexbuffers; a test
reads them from the model and requires them equal), the tables are in `micro_speech_tables`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import McuforgeError
from . import micro_speech_tables as tables
from . import signal_ops
from .kiss_fft import rfft_int16

FRONTEND_NAME = "micro-speech"
SAMPLE_RATE = 16000
WINDOW_SAMPLES = 480
HOP_SAMPLES = 320
NUM_CHANNELS = 40

# The preprocessor model's custom options (flexbuffers), op by op.
WINDOW_SHIFT = 12  # SignalWindow.shift
FFT_LENGTH = 512  # SignalRfft.fft_length
ENERGY_START, ENERGY_END = 5, 241  # SignalEnergy.start_index, end_index
SMOOTHING_BITS = 10  # SignalFilterBankSpectralSubtraction ...
SPECTRAL_SUBTRACTION_BITS = 14
SMOOTHING, ONE_MINUS_SMOOTHING = 409, 15975
ALTERNATE_SMOOTHING, ALTERNATE_ONE_MINUS_SMOOTHING = 983, 15401
MIN_SIGNAL_REMAINING = 819
CLAMPING = False
PCAN_SNR_SHIFT = 6  # SignalPCAN.snr_shift
LOG_OUTPUT_SCALE, LOG_INPUT_CORRECTION_BITS = 64, 3  # SignalFilterBankLog
# The builtin ops after the log: int8 = clip((log * 256 + 333) / 666 - 128), division truncating.
INT8_MULTIPLIER, INT8_OFFSET, INT8_DIVISOR, INT8_ZERO = 256, 333, 666, -128

OUTPUT_SCALE = 666 / 256 / LOG_OUTPUT_SCALE
"""What one int8 step is in natural-log units of the PCAN output (the features' dequantisation)."""
OUTPUT_ZERO_POINT = INT8_ZERO

WINDOW = np.array(tables.WINDOW, dtype=np.int16)
PCAN_GAIN_LUT = np.array(tables.PCAN_GAIN_LUT, dtype=np.int16)
FILTERBANK_MATRIX = signal_ops.filterbank_matrix(
    tables.FILTER_WEIGHTS, tables.FILTER_UNWEIGHTS, tables.CHANNEL_FREQUENCY_STARTS,
    tables.CHANNEL_WEIGHT_STARTS, tables.CHANNEL_WIDTHS, FFT_LENGTH // 2 + 1, NUM_CHANNELS)
_EVEN = np.arange(NUM_CHANNELS) % 2 == 0
SMOOTHING_PER_CHANNEL = np.where(_EVEN, SMOOTHING, ALTERNATE_SMOOTHING).astype(np.uint64)
ONE_MINUS_SMOOTHING_PER_CHANNEL = np.where(_EVEN, ONE_MINUS_SMOOTHING,
                                           ALTERNATE_ONE_MINUS_SMOOTHING).astype(np.uint64)


def frame_count(num_samples: int) -> int:
    """Frames in a clip of ``num_samples`` (0 when shorter than one window)."""
    return 0 if num_samples < WINDOW_SAMPLES else 1 + (num_samples - WINDOW_SAMPLES) // HOP_SAMPLES


def filterbank_magnitudes(windows: np.ndarray, energy_start: int, energy_end: int,
                          filterbank_weights: np.ndarray) -> np.ndarray:
    """The steps both front ends share: int16 [..., 480] windows → window, FFT auto-scale, int16
    RFFT, energy of bins ``energy_start``..``energy_end``, filter bank (``filterbank_weights``),
    square root with the auto-scale undone → uint32 [..., channels] magnitudes."""
    windowed = signal_ops.apply_window(windows, WINDOW, WINDOW_SHIFT)
    scaled, scale_bits = signal_ops.fft_auto_scale(windowed)
    padded = np.zeros(windows.shape[:-1] + (FFT_LENGTH,), dtype=np.int16)
    padded[..., :WINDOW_SAMPLES] = scaled
    spectrum = rfft_int16(padded, FFT_LENGTH)
    energy = signal_ops.spectrum_to_energy(spectrum, energy_start, energy_end, FFT_LENGTH // 2 + 1)
    return signal_ops.filterbank_sqrt(signal_ops.filterbank(energy, filterbank_weights), scale_bits)


def process_windows(windows: np.ndarray, noise_estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame for each of a batch: int16 [..., 480] windows and uint32 [..., 40] noise estimates
    → (int8 [..., 40] features, the updated noise estimates)."""
    magnitudes = filterbank_magnitudes(windows, ENERGY_START, ENERGY_END, FILTERBANK_MATRIX)
    subtracted, noise_estimate = signal_ops.spectral_subtraction(
        magnitudes, noise_estimate, SMOOTHING_PER_CHANNEL, ONE_MINUS_SMOOTHING_PER_CHANNEL,
        SMOOTHING_BITS, SPECTRAL_SUBTRACTION_BITS, MIN_SIGNAL_REMAINING, CLAMPING)
    gained = signal_ops.pcan(subtracted, noise_estimate, PCAN_GAIN_LUT, PCAN_SNR_SHIFT)
    logs = signal_ops.filterbank_log(gained, LOG_OUTPUT_SCALE, LOG_INPUT_CORRECTION_BITS)
    scaled_int = (logs.astype(np.int32) * INT8_MULTIPLIER + INT8_OFFSET) // INT8_DIVISOR + INT8_ZERO
    return np.clip(scaled_int, -128, 127).astype(np.int8), noise_estimate


@dataclass
class MicroSpeechState:
    """The streaming front end: call `process_frame` with each 30 ms window (480 int16 samples,
    successive windows 320 samples apart); the noise estimate carries over between calls."""

    noise_estimate: np.ndarray = field(
        default_factory=lambda: np.zeros(NUM_CHANNELS, dtype=np.uint32))

    def process_frame(self, samples: np.ndarray) -> np.ndarray:
        """int16 [480] → int8 [40] features; updates the state."""
        samples = np.asarray(samples)
        if samples.shape != (WINDOW_SAMPLES,):
            raise McuforgeError(
                f"micro-speech front end: a frame is {WINDOW_SAMPLES} samples, got shape {samples.shape}")
        out, self.noise_estimate = process_windows(samples.astype(np.int16), self.noise_estimate)
        return out


def _check_pcm(pcm: np.ndarray, ndim: int) -> np.ndarray:
    pcm = np.asarray(pcm)
    if pcm.ndim != ndim or pcm.dtype != np.int16:
        raise McuforgeError(f"micro-speech front end: expects int16 PCM of {ndim} dimension(s), "
                            f"got {pcm.dtype} of shape {pcm.shape}")
    if pcm.shape[-1] < WINDOW_SAMPLES:
        raise McuforgeError(f"micro-speech front end: a clip needs at least {WINDOW_SAMPLES} samples "
                            f"(30 ms at 16 kHz), got {pcm.shape[-1]}")
    return pcm


def features_batch(pcm: np.ndarray) -> np.ndarray:
    """int16 [B, n] clips → int8 [B, frames, 40], each clip starting from a zero noise estimate."""
    pcm = _check_pcm(pcm, 2)
    frames = frame_count(pcm.shape[1])
    noise_estimate = np.zeros((pcm.shape[0], NUM_CHANNELS), dtype=np.uint32)
    out = np.zeros((pcm.shape[0], frames, NUM_CHANNELS), dtype=np.int8)
    for frame in range(frames):
        start = frame * HOP_SAMPLES
        out[:, frame], noise_estimate = process_windows(pcm[:, start:start + WINDOW_SAMPLES],
                                                        noise_estimate)
    return out


def features(pcm: np.ndarray) -> np.ndarray:
    """int16 [n] clip → int8 [frames, 40] (``frames = 1 + (n - 480) // 320``: 49 for 1 s)."""
    return features_batch(_check_pcm(pcm, 1)[None])[0]
