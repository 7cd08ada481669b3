"""The MFCC front end: 49 × 10 int8 per second, batch = one clip at a time, a real spectrum."""

from __future__ import annotations

import numpy as np

from mcuforge.audio import frontend_by_name, mfcc


def test_shape_batch_and_registry():
    assert frontend_by_name("mfcc") is mfcc
    rng = np.random.default_rng(0)
    clips = rng.integers(-3000, 3000, size=(3, 16000)).astype(np.int16)
    batch = mfcc.features_batch(clips)
    assert batch.shape == (3, 49, 10) and batch.dtype == np.int8
    for row, clip in zip(batch, clips):
        assert np.array_equal(row, mfcc.features(clip))


def test_coefficients_follow_the_sound():
    """Louder white noise raises c0 (the mean log band) by ln(10) / OUTPUT_SCALE steps per 10×;
    a low tone and a high tone differ in c1 (spectral tilt) with opposite signs."""
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, size=16000)
    quiet = mfcc.features((noise * 100).astype(np.int16))
    loud = mfcc.features((noise * 1000).astype(np.int16))
    step = np.median(loud[:, 0].astype(int) - quiet[:, 0].astype(int))
    expected = np.sqrt(40) * np.log(10) / mfcc.OUTPUT_SCALE
    assert abs(step - expected) <= 2
    t = np.arange(16000) / 16000
    low = mfcc.features((8000 * np.sin(2 * np.pi * 200 * t)).astype(np.int16))
    high = mfcc.features((8000 * np.sin(2 * np.pi * 3000 * t)).astype(np.int16))
    assert np.median(low[:, 1]) > 0 > np.median(high[:, 1])


def test_tables():
    weights = mfcc.mel_weights()
    assert weights.shape == (257, 40) and (weights.any(axis=0)).all()
    assert mfcc.DCT_MATRIX.shape == (40, 10)
    assert np.all(mfcc.DCT_MATRIX[:, 0] == round(4096 / np.sqrt(40)))
