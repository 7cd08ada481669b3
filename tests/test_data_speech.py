"""Speech Commands folders on the shared audio path: 16-bit mono WAVs, resampling, the centred 1 s
window, front-end features, splits, bad files."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from mcuforge.audio import micro_speech
from mcuforge.data.audio_clips import fit_to_window
from mcuforge.data.audio_dataset import features_to_int8
from mcuforge.data.registry import dataset_kind, load_dataset
from mcuforge.errors import AudioFileError, DatasetError

RATE = 16_000


def write_wav(path, samples, rate=RATE, width=2, channels=1):
    """A PCM WAV of float samples in [-1, 1] (``channels`` interleaved copies)."""
    scaled = np.repeat(np.clip(samples, -1, 1)[:, None], channels, axis=1).reshape(-1)
    raw = np.round(scaled * (2 ** (8 * width - 1) - 1)).astype(f"<i{width}").tobytes() if width > 1 \
        else np.round(scaled * 127 + 128).astype(np.uint8).tobytes()
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(raw)


def tone(frequency, seconds=1.0, rate=RATE):
    """A sine at half scale."""
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * frequency * t)


def _speech_folder(root, lists=True):
    for word, frequency in [("no", 500), ("yes", 2000)]:
        (root / word).mkdir(parents=True)
        for speaker in range(5):
            write_wav(root / word / f"spk{speaker}_nohash_0.wav", tone(frequency + 50 * speaker, 0.5))
    (root / "_background_noise_").mkdir()
    write_wav(root / "_background_noise_" / "noise.wav", np.zeros(1600))
    if lists:
        (root / "validation_list.txt").write_text("no/spk1_nohash_0.wav\n")
        (root / "testing_list.txt").write_text("no/spk2_nohash_0.wav\nyes/spk2_nohash_0.wav\n")


def test_folder_with_split_lists_gives_front_end_features(tmp_path):
    _speech_folder(tmp_path)
    assert dataset_kind(tmp_path) == "speech-commands"
    train, val, test = (load_dataset(tmp_path, split, progress=False) for split in ("train", "val", "test"))
    assert train.class_names == ["no", "yes"]
    assert (len(train), len(val), len(test)) == (7, 1, 2)
    assert train.images.shape[1:] == (49, 40, 1) and not train.hflip_ok
    assert train.metadata["input_encoding"] == "int8-features" and test.augment is None
    # the stored samples are the micro_speech features of the centred 1 s clip, + 128
    half = np.round(np.clip(tone(600, 0.5), -1, 1) * 32767).astype(np.int16)  # no/spk2: 500 + 2 * 50 Hz
    clip = fit_to_window(half)
    np.testing.assert_array_equal(clip[4000:12000], half)
    np.testing.assert_array_equal(features_to_int8(test.images[0, ..., 0]), micro_speech.features(clip))


def test_hash_split_keeps_a_speaker_in_one_split(tmp_path):
    _speech_folder(tmp_path, lists=False)
    counts = {}
    for split in ("train", "val", "test"):
        try:
            counts[split] = load_dataset(tmp_path, split, progress=False).labels.tolist()
        except DatasetError:  # an empty split
            counts[split] = []
    assert sum(len(labels) for labels in counts.values()) == 10
    for labels in counts.values():  # each speaker said both words, and both clips go to one split
        assert labels.count(0) == labels.count(1)


def test_other_rates_are_resampled(tmp_path):
    _speech_folder(tmp_path)
    write_wav(tmp_path / "yes" / "spk4_nohash_0.wav", tone(2000, 0.5, rate=8000), rate=8000)
    train = load_dataset(tmp_path, "train", progress=False)
    index = train.metadata["files"].index("yes/spk4_nohash_0.wav")
    assert len(train.clips[index]) == 8000  # 0.5 s at 16 kHz


@pytest.mark.parametrize("problem, match", [
    ("garbage", r"yes/spk4_nohash_0\.wav: not a PCM WAV"),
    ("stereo", r"yes/spk4_nohash_0\.wav: 2 channels"),
    ("8-bit", r"yes/spk4_nohash_0\.wav: 8-bit samples"),
    ("truncated", r"yes/spk4_nohash_0\.wav: truncated"),
])
def test_bad_wav_names_the_file(tmp_path, problem, match):
    _speech_folder(tmp_path)
    path = tmp_path / "yes" / "spk4_nohash_0.wav"
    if problem == "garbage":
        path.write_bytes(b"RIFF\x00\x00garbage")
    elif problem == "stereo":
        write_wav(path, tone(300), channels=2)
    elif problem == "8-bit":
        write_wav(path, tone(300), width=1)
    else:
        path.write_bytes(path.read_bytes()[:10000])
    with pytest.raises(AudioFileError, match=match):
        load_dataset(tmp_path, "train", progress=False)
