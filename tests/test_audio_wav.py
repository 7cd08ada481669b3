"""read_wav: mono 16-bit PCM only; every other file is one typed error naming the file and the problem."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from mcuforge.audio.wav import read_wav
from mcuforge.errors import AudioFileError


def _write(path, samples: bytes, channels=1, width=2, rate=16000):
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(samples)
    return path


def test_reads_mono_16_bit(tmp_path):
    samples = np.arange(-50, 50, dtype=np.int16)
    pcm, rate = read_wav(_write(tmp_path / "a.wav", samples.tobytes()), expected_rate=16000)
    assert rate == 16000 and pcm.dtype == np.int16 and np.array_equal(pcm, samples)


@pytest.mark.parametrize("case, message", [
    ("stereo", "2 channels"), ("8bit", "8-bit samples"), ("rate", "sample rate 8000 Hz, expected 16000"),
    ("truncated", "truncated"), ("text", "not a PCM WAV file"), ("missing", "no such file")])
def test_bad_files_are_one_typed_error(tmp_path, case, message):
    path = tmp_path / f"{case}.wav"
    if case == "stereo":
        _write(path, np.zeros(200, dtype=np.int16).tobytes(), channels=2)
    elif case == "8bit":
        _write(path, bytes(100), width=1)
    elif case == "rate":
        _write(path, np.zeros(100, dtype=np.int16).tobytes(), rate=8000)
    elif case == "truncated":
        _write(path, np.zeros(1000, dtype=np.int16).tobytes())
        path.write_bytes(path.read_bytes()[:1000])
    elif case == "text":
        path.write_text("hello, not audio\n")
    with pytest.raises(AudioFileError) as raised:
        read_wav(path, expected_rate=16000)
    text = str(raised.value)
    assert message in text and str(path) in text and "\n" not in text
