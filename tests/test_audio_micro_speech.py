"""The micro_speech front end in numpy equals TFLite Micro's preprocessor model (the tflite-micro pip
interpreter, one call per 20 ms hop) on every frame of the six shared WAVs, state included; its
parameters are the model's own."""

from __future__ import annotations

import numpy as np
import pytest
from audio_support import PREPROCESSOR, WAVS, oracle_features, preprocessor_parameters
from conftest import require_reference_file

from mcuforge.audio import frontend_by_name, micro_speech
from mcuforge.audio import micro_speech_tables as tables
from mcuforge.audio.kiss_fft import rfft_int16
from mcuforge.audio.wav import read_wav
from mcuforge.errors import McuforgeError


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    return {name: read_wav(require_reference_file(f"models/tflite_micro/{name}"), 16000)[0]
            for name in WAVS}


@pytest.fixture(scope="module")
def oracle(clips) -> dict[str, np.ndarray]:
    model = require_reference_file(PREPROCESSOR)
    return {name: oracle_features(model, pcm) for name, pcm in clips.items()}


@pytest.mark.parametrize("name", WAVS)
def test_every_frame_equals_the_oracle(name, clips, oracle):
    ours = micro_speech.features(clips[name])
    assert ours.shape == oracle[name].shape == (micro_speech.frame_count(len(clips[name])), 40)
    assert np.array_equal(ours, oracle[name]), f"{int(np.sum(ours != oracle[name]))} values differ"


def test_batch_equals_one_clip_at_a_time(clips, oracle):
    names = [name for name in WAVS if len(clips[name]) == 16000]
    batch = micro_speech.features_batch(np.stack([clips[name] for name in names]))
    assert batch.shape == (len(names), 49, 40)
    for row, name in zip(batch, names):
        assert np.array_equal(row, oracle[name])


def test_streaming_state_carries_the_noise_estimate(clips, oracle):
    state = micro_speech.MicroSpeechState()
    pcm = clips["noise_1000ms.wav"]
    frames = [state.process_frame(pcm[start:start + 480]) for start in range(0, 16000 - 480 + 1, 320)]
    assert np.array_equal(np.array(frames), oracle["noise_1000ms.wav"])
    assert state.noise_estimate.any()
    # Fresh state on the last window alone differs: the state matters.
    fresh = micro_speech.MicroSpeechState().process_frame(pcm[-480:])
    assert not np.array_equal(fresh, frames[-1])


def test_parameters_are_the_models_own():
    options, constants = preprocessor_parameters(require_reference_file(PREPROCESSOR))
    assert options["SignalWindow"]["shift"] == micro_speech.WINDOW_SHIFT
    assert options["SignalRfft"]["fft_length"] == micro_speech.FFT_LENGTH
    energy = options["SignalEnergy"]
    assert (energy["start_index"], energy["end_index"]) == (micro_speech.ENERGY_START,
                                                            micro_speech.ENERGY_END)
    subtraction = options["SignalFilterBankSpectralSubtraction"]
    assert subtraction == {
        "alternate_one_minus_smoothing": micro_speech.ALTERNATE_ONE_MINUS_SMOOTHING,
        "alternate_smoothing": micro_speech.ALTERNATE_SMOOTHING, "clamping": micro_speech.CLAMPING,
        "min_signal_remaining": micro_speech.MIN_SIGNAL_REMAINING,
        "num_channels": micro_speech.NUM_CHANNELS,
        "one_minus_smoothing": micro_speech.ONE_MINUS_SMOOTHING,
        "smoothing": micro_speech.SMOOTHING, "smoothing_bits": micro_speech.SMOOTHING_BITS,
        "spectral_subtraction_bits": micro_speech.SPECTRAL_SUBTRACTION_BITS}
    assert options["SignalPCAN"]["snr_shift"] == micro_speech.PCAN_SNR_SHIFT
    assert options["SignalFilterBankLog"] == {"input_correction_bits": micro_speech.LOG_INPUT_CORRECTION_BITS,
                                              "output_scale": micro_speech.LOG_OUTPUT_SCALE}
    assert options["SignalFilterBank"]["num_channels"] == micro_speech.NUM_CHANNELS
    assert constants["Const"].tolist() == list(tables.WINDOW)
    assert constants["signal_filter_bank/Const"].tolist() == list(tables.FILTER_WEIGHTS)
    assert constants["signal_filter_bank/Const_1"].tolist() == list(tables.FILTER_UNWEIGHTS)
    assert constants["signal_filter_bank/Const_2"].tolist() == list(tables.CHANNEL_FREQUENCY_STARTS)
    assert constants["signal_filter_bank/Const_3"].tolist() == list(tables.CHANNEL_WEIGHT_STARTS)
    assert constants["signal_filter_bank/Const_4"].tolist() == list(tables.CHANNEL_WIDTHS)
    assert constants["signal_pcan/Const"].tolist() == list(tables.PCAN_GAIN_LUT)
    assert [int(constants[name][0]) for name in ("Const1", "Cast_3", "Const_1", "Const_2")] == [
        micro_speech.INT8_MULTIPLIER, micro_speech.INT8_OFFSET, micro_speech.INT8_DIVISOR,
        micro_speech.INT8_ZERO]


def test_rfft_is_close_to_the_float_fft():
    """The fixed-point FFT is kissfft's (scaled by 1/n): within a few LSB of the exact transform."""
    rng = np.random.default_rng(0)
    samples = rng.integers(-8000, 8000, size=(3, 512)).astype(np.int16)
    ours = rfft_int16(samples, 512)
    exact = np.fft.rfft(samples.astype(np.float64), axis=-1) / 512
    assert np.max(np.abs(ours[..., 0] - exact.real)) <= 4
    assert np.max(np.abs(ours[..., 1] - exact.imag)) <= 4


def test_frontend_by_name():
    assert frontend_by_name("micro-speech") is micro_speech
    with pytest.raises(McuforgeError, match="unknown audio front end 'mel'"):
        frontend_by_name("mel")


def test_short_or_wrongly_typed_clips_are_refused():
    with pytest.raises(McuforgeError, match="at least 480 samples"):
        micro_speech.features(np.zeros(100, dtype=np.int16))
    with pytest.raises(McuforgeError, match="int16"):
        micro_speech.features(np.zeros(16000, dtype=np.float32))
