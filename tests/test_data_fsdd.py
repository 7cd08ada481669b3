"""FSDD: file names, the split by speaker, resampling to 16 kHz, the centred window, and the PCM
augmentation (seeded, each part doing what it says)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mcuforge.data.audio_augment import AudioAugment, augment_clips
from mcuforge.data.audio_clips import fit_to_window, read_clip, resample_pcm
from mcuforge.data.fsdd import default_test_speaker, fsdd_files, fsdd_speakers, load_fsdd
from mcuforge.data.registry import dataset_kind, is_audio_dataset
from mcuforge.errors import DatasetError

from conftest import require_reference_file


@pytest.fixture(scope="module")
def recordings():
    return require_reference_file("data/fsdd/recordings")


@pytest.fixture()
def small_fsdd(tmp_path, recordings):
    """Two digits x two clips of every speaker (20 files) in a folder of their own."""
    for path, digit, speaker in fsdd_files(recordings):
        index = int(path.stem.split("_")[2])
        if digit in (3, 7) and index < 2:
            shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_reference_fsdd_has_five_speakers_of_500_clips(recordings):
    files = fsdd_files(recordings)
    speakers = fsdd_speakers(recordings)
    assert speakers == ["george", "jackson", "lucas", "nicolas", "yweweler"]
    assert default_test_speaker(speakers) == "yweweler"
    assert all(sum(s == name for _, _, s in files) == 500 for name in speakers)
    assert is_audio_dataset("fsdd") and is_audio_dataset("fsdd:george")


def test_split_by_speaker_never_mixes_speakers(small_fsdd):
    assert dataset_kind(small_fsdd) == "fsdd"
    train = load_fsdd(small_fsdd, "train", test_speaker="lucas", progress=False)
    test = load_fsdd(small_fsdd, "test", test_speaker="lucas", progress=False)
    assert (len(train), len(test)) == (16, 4)
    assert test.metadata["speakers"] == ["lucas"] and "lucas" not in train.metadata["speakers"]
    assert all("lucas" in name for name in test.metadata["files"])
    assert sorted(set(test.labels.tolist())) == [3, 7] and test.class_names[3] == "3"
    assert train.images.shape[1:] == (49, 40, 1) and test.augment is None and train.augment is not None
    with pytest.raises(DatasetError, match="no speaker 'theo'"):
        load_fsdd(small_fsdd, "test", test_speaker="theo", progress=False)


def test_clips_are_resampled_and_centred(recordings):
    path = recordings / "0_george_0.wav"
    clip = read_clip(path)
    assert clip.shape == (16000,) and clip.dtype == np.int16
    from mcuforge.audio.wav import read_wav
    pcm, rate = read_wav(path)
    assert rate == 8000
    at_16k = resample_pcm(pcm, rate)
    assert len(at_16k) == 2 * len(pcm)
    start = (16000 - len(at_16k)) // 2
    np.testing.assert_array_equal(clip[start:start + len(at_16k)], at_16k)
    assert not clip[:start].any() and not clip[start + len(at_16k):].any()
    long = np.arange(20000, dtype=np.int16)
    np.testing.assert_array_equal(fit_to_window(long), long[2000:18000])


def _clips():
    rng = np.random.default_rng(1)
    return [np.round(rng.normal(0, 3000, size)).astype(np.int16) for size in (6000, 9000, 17000)]


def test_augmentation_is_seeded_and_off_means_identity():
    clips = _clips()
    noise = (np.round(np.random.default_rng(2).normal(0, 500, 16000)).astype(np.int16),)
    first = augment_clips(clips, np.random.default_rng(7), AudioAugment(), noise)
    again = augment_clips(clips, np.random.default_rng(7), AudioAugment(), noise)
    other = augment_clips(clips, np.random.default_rng(8), AudioAugment(), noise)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    plain = augment_clips(clips, np.random.default_rng(7), AudioAugment.none(), noise)
    np.testing.assert_array_equal(plain, np.stack([fit_to_window(c) for c in clips]))


def test_each_augmentation_does_what_it_says():
    clip = [np.concatenate([np.zeros(160), np.full(3840, 1000)]).astype(np.int16)]
    rng = np.random.default_rng
    none = AudioAugment.none()
    loud = augment_clips(clip, rng(0), AudioAugment((1, 1), 0, (2, 2), 0), ())
    assert loud.max() == 2000
    shifted = augment_clips(clip, rng(0), AudioAugment((1, 1), 100, (1, 1), 0), ())
    start = int(np.flatnonzero(shifted[0] > 500)[0]) - 160
    assert start != 6000 and abs(start - 6000) <= 1600 and np.count_nonzero(shifted[0] > 500) == 3840
    fast = augment_clips(clip, rng(0), AudioAugment((1.25, 1.25), 0, (1, 1), 0), ())
    assert abs(np.count_nonzero(np.abs(fast[0]) > 500) - 3072) < 40  # 3840 / 1.25 samples long
    noise = (np.round(np.random.default_rng(3).normal(0, 1000, 16000)).astype(np.int16),)
    noisy = augment_clips(clip, rng(0), AudioAugment((1, 1), 0, (1, 1), 1.0, (10, 10)), noise)
    added = noisy[0].astype(np.float64) - augment_clips(clip, rng(0), none, noise)[0]
    power = np.mean(np.asarray(clip[0], dtype=np.float64) ** 2)
    snr = 10 * np.log10(power / np.mean(added ** 2))
    assert abs(snr - 10) < 0.2


def test_mfcc_front_end_gives_49_by_10_features(small_fsdd):
    test = load_fsdd(small_fsdd, "test", frontend="mfcc", progress=False)
    assert test.images.shape[1:] == (49, 10, 1) and test.frontend == "mfcc"


def test_spec_augment_masks_bands_and_spans_with_the_clip_mean():
    from mcuforge.data.audio_augment import mask_features

    images = np.random.default_rng(3).integers(0, 256, size=(4, 49, 40, 1)).astype(np.uint8)
    augment = AudioAugment(freq_masks=1, freq_mask_bins=40, time_masks=0)
    masked = mask_features(images, np.random.default_rng(5), augment)
    assert masked.shape == images.shape and masked.dtype == np.uint8
    again = mask_features(images, np.random.default_rng(5), augment)
    assert np.array_equal(masked, again)
    means = np.rint(images.reshape(4, -1).mean(axis=1)).astype(np.uint8)
    for clip, original, mean in zip(masked, images, means):
        changed = np.flatnonzero((clip != original).any(axis=(0, 2)))  # frequency bins touched
        assert np.all(clip[:, changed] == mean)  # whole bands, every frame, set to the clip's mean
        if len(changed):
            assert np.array_equal(changed, np.arange(changed[0], changed[-1] + 1))  # adjacent bins
    assert (masked != images).any()
    spans = mask_features(images, np.random.default_rng(5), AudioAugment(freq_masks=0, time_masks=2,
                                                                          time_mask_frames=5))
    frames = (spans != images).any(axis=(2, 3))
    assert frames.any() and frames.sum(axis=1).max() <= 10
    assert np.array_equal(mask_features(images, np.random.default_rng(5), AudioAugment.none()), images)
