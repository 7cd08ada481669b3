"""Speech Commands: WAV reading (formats, resampling, padding), log-mel features, splits, bad files."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from mcuforge.data.registry import dataset_kind, load_dataset
from mcuforge.data.speech_commands import (
    FRAMES, MEL_BANDS, SAMPLE_RATE, log_mel_features, mel_filterbank, read_wav,
)
from mcuforge.errors import DatasetError


def _write_wav(path, samples, rate=SAMPLE_RATE, width=2, channels=1):
    scaled = np.clip(samples, -1, 1)
    if width == 1:
        raw = np.round(scaled * 127 + 128).astype(np.uint8).tobytes()
    else:
        raw = np.round(scaled * (2 ** (8 * width - 1) - 1)).astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(raw)


def _tone(frequency, seconds=1.0, rate=SAMPLE_RATE):
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * frequency * t)


def test_read_wav_pads_and_converts(tmp_path):
    _write_wav(tmp_path / "short.wav", _tone(440, 0.5))
    clip = read_wav(tmp_path / "short.wav")
    assert clip.shape == (SAMPLE_RATE,) and np.all(clip[8000:] == 0)
    assert abs(np.abs(clip[:8000]).max() - 0.5) < 1e-3
    _write_wav(tmp_path / "u8.wav", _tone(440), width=1)
    assert abs(np.abs(read_wav(tmp_path / "u8.wav")).max() - 0.5) < 0.02


def test_read_wav_resamples_and_mixes_channels(tmp_path):
    stereo = np.repeat(_tone(300, rate=8000)[:, None], 2, axis=1).reshape(-1)
    _write_wav(tmp_path / "s.wav", stereo, rate=8000, channels=2)
    clip = read_wav(tmp_path / "s.wav")
    np.testing.assert_allclose(clip[:15000], _tone(300)[:15000], atol=0.02)


def test_tone_lands_in_the_right_mel_band():
    features = log_mel_features(np.stack([_tone(1000), _tone(3000)]).astype(np.float32))
    assert features.shape == (2, FRAMES, MEL_BANDS)
    centres = np.argmax(mel_filterbank(), axis=0)  # FFT bin where each band peaks
    bin_1k, bin_3k = round(1000 * 512 / SAMPLE_RATE), round(3000 * 512 / SAMPLE_RATE)
    loudest = features.mean(axis=1).argmax(axis=1)
    assert abs(centres[loudest[0]] - bin_1k) <= 2 and abs(centres[loudest[1]] - bin_3k) <= 3
    assert features.max() == 255


def _speech_folder(root, lists=True):
    for label, (word, frequency) in enumerate([("no", 500), ("yes", 2000)]):
        (root / word).mkdir(parents=True)
        for speaker in range(5):
            _write_wav(root / word / f"spk{speaker}_nohash_0.wav", _tone(frequency + 50 * speaker))
    (root / "_background_noise_").mkdir()
    _write_wav(root / "_background_noise_" / "noise.wav", np.zeros(1600))
    if lists:
        (root / "validation_list.txt").write_text("no/spk1_nohash_0.wav\n")
        (root / "testing_list.txt").write_text("no/spk2_nohash_0.wav\nyes/spk2_nohash_0.wav\n")


def test_folder_with_split_lists(tmp_path):
    _speech_folder(tmp_path)
    assert dataset_kind(tmp_path) == "speech-commands"
    train, val, test = (load_dataset(tmp_path, split) for split in ("train", "val", "test"))
    assert train.class_names == ["no", "yes"]
    assert (len(train), len(val), len(test)) == (7, 1, 2)
    assert train.images.shape[1:] == (FRAMES, MEL_BANDS, 1) and not train.hflip_ok


def test_hash_split_keeps_a_speaker_in_one_split(tmp_path):
    _speech_folder(tmp_path, lists=False)
    counts = {}
    for split in ("train", "val", "test"):
        try:
            counts[split] = load_dataset(tmp_path, split).labels.tolist()
        except DatasetError:  # an empty split
            counts[split] = []
    assert sum(len(labels) for labels in counts.values()) == 10
    for labels in counts.values():  # each speaker said both words, and both clips go to one split
        assert labels.count(0) == labels.count(1)


def test_bad_wav_names_the_file(tmp_path):
    _speech_folder(tmp_path)
    (tmp_path / "yes" / "spk4_nohash_0.wav").write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(DatasetError, match=r"yes/spk4_nohash_0\.wav: unreadable WAV"):
        load_dataset(tmp_path, "train")


def test_truncated_wav_names_the_file(tmp_path):
    _speech_folder(tmp_path)
    path = tmp_path / "no" / "spk0_nohash_0.wav"
    path.write_bytes(path.read_bytes()[:20000])
    with pytest.raises(DatasetError, match=r"no/spk0_nohash_0\.wav"):
        load_dataset(tmp_path, "train")
