"""The generated C of the audio front ends (host gcc build) equals the numpy front ends bit for bit;
for micro_speech that is also TFLite Micro's preprocessor model (the six shared WAVs, every frame)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from audio_support import PREPROCESSOR, WAVS, oracle_features
from conftest import require_reference_file

from mcuforge.audio import frontend_by_name, micro_speech
from mcuforge.audio.emit import build_host_frontend
from mcuforge.audio.wav import read_wav

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


def edge_clips() -> dict[str, np.ndarray]:
    """Extreme clips: full-scale noise, all -32768 (TFLM's running maximum wraps), zeros, a loud sine."""
    rng = np.random.default_rng(1)
    return {
        "full-scale noise": rng.integers(-32768, 32768, size=8000).astype(np.int16),
        "all -32768": np.full(1000, -32768, dtype=np.int16),
        "zeros": np.zeros(1200, dtype=np.int16),
        "sine 440 Hz": (20000 * np.sin(np.arange(4000) * 2 * np.pi * 440 / 16000)).astype(np.int16),
    }


@pytest.fixture(scope="module", params=["micro-speech", "mfcc"])
def frontend(request, tmp_path_factory):
    name = request.param
    return name, build_host_frontend(name, tmp_path_factory.mktemp(name))


def _run(binary, mode: str, pcm: np.ndarray, width: int) -> np.ndarray:
    pcm_path, out_path = binary.parent / "pcm.bin", binary.parent / "features.bin"
    pcm_path.write_bytes(pcm.astype("<i2").tobytes())
    subprocess.run([str(binary), mode, str(pcm_path), str(out_path)], check=True, timeout=60)
    return np.frombuffer(out_path.read_bytes(), dtype=np.int8).reshape(-1, width)


def test_c_equals_numpy(frontend):
    name, binary = frontend
    module = frontend_by_name(name)
    clips = {wav: read_wav(require_reference_file(f"models/tflite_micro/{wav}"), 16000)[0] for wav in WAVS}
    clips.update(edge_clips())
    for label, pcm in clips.items():
        ours = module.features(pcm)
        c = _run(binary, "clip", pcm, module.NUM_CHANNELS)
        assert c.shape == ours.shape and np.array_equal(c, ours), f"{name}, {label}"


def test_micro_speech_c_equals_the_oracle(tmp_path):
    binary = build_host_frontend("micro-speech", tmp_path)
    model = require_reference_file(PREPROCESSOR)
    for wav in WAVS:
        pcm = read_wav(require_reference_file(f"models/tflite_micro/{wav}"), 16000)[0]
        assert np.array_equal(_run(binary, "clip", pcm, 40), oracle_features(model, pcm)), wav


def test_streaming_is_the_clip_behind_ten_ms_of_silence(frontend):
    """``mf_frontend_process`` keeps the last 160 samples: hop k's window is samples
    320k - 160 .. 320k + 320 of the stream (zeros before it), the state carried throughout."""
    name, binary = frontend
    module = frontend_by_name(name)
    pcm = read_wav(require_reference_file("models/tflite_micro/yes_1000ms.wav"), 16000)[0]
    streamed = _run(binary, "stream", pcm, module.NUM_CHANNELS)
    padded = np.concatenate([np.zeros(160, dtype=np.int16), pcm])
    assert streamed.shape == (50, module.NUM_CHANNELS)
    assert np.array_equal(streamed, module.features(padded))


def test_state_bytes_in_the_header():
    from mcuforge.audio.emit import render_frontend

    header = render_frontend("micro-speech")["mf_frontend.h"]
    assert f"uint32_t noise_estimate[{micro_speech.NUM_CHANNELS}]" in header
    assert "mf_frontend_process(mf_frontend_state_t *state, const int16_t *hop_samples" in header


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_frontend_memory_is_measured_from_the_object():
    from mcuforge.audio.measure import frontend_memory

    ms, mfcc = frontend_memory("micro-speech", "cortex-m4"), frontend_memory("mfcc", "cortex-m4")
    assert ms.state_bytes == 4 * 40 + 2 * 160 and mfcc.state_bytes == 2 * 160
    fft_buffers = 2 * 512 + 2 * 2 * 256 + 2 * 2 * 257 + 4 * 257
    assert ms.scratch_bytes >= fft_buffers and mfcc.scratch_bytes >= fft_buffers
    assert 4000 < ms.flash_bytes < 16000 and ms.sram_bytes == ms.scratch_bytes + ms.state_bytes


@pytest.mark.slow
def test_no_undefined_behaviour_on_extreme_input(tmp_path):
    """AddressSanitizer and UBSan builds (any report aborts) on full-scale noise, a full-scale square
    wave and constant -32768, clip and stream, outputs still equal to numpy."""
    from mcuforge.codegen.targets import HOST_SANITIZE_FLAGS

    rng = np.random.default_rng(3)
    clips = [rng.integers(-32768, 32768, size=4000).astype(np.int16),
             (np.sign(np.sin(np.arange(4000) * 0.3)) * 32767).astype(np.int16),
             np.full(1000, -32768, dtype=np.int16)]
    for name in ("micro-speech", "mfcc"):
        binary = build_host_frontend(name, tmp_path / name, HOST_SANITIZE_FLAGS)
        module = frontend_by_name(name)
        for pcm in clips:
            assert np.array_equal(_run(binary, "clip", pcm, module.NUM_CHANNELS), module.features(pcm))
            _run(binary, "stream", pcm, module.NUM_CHANNELS)
