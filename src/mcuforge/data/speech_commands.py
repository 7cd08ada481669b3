"""Keyword spotting data in the Speech Commands layout, turned into log-mel "images".

Layout: ``root/<keyword>/<speaker>_nohash_<n>.wav``, one ~1 s clip per file. Every sub-folder whose
name does not start with ``_`` is a class (``_background_noise_`` is skipped), in sorted order. The
split comes from ``validation_list.txt`` / ``testing_list.txt`` when present (paths relative to
``root``), else from the data set's own rule: SHA-1 of the file name up to ``_nohash_``, so one speaker
never straddles splits, 10 % validation, 10 % test.

WAV files are read with the standard-library ``wave`` module (PCM, 8/16/24/32-bit, any channel count;
channels are averaged). Clips are resampled linearly to 16 kHz when needed and padded with zeros or
cut to exactly 1 s (16,000 samples).

Features (one [49, 40, 1] uint8 map per clip; height = time, width = frequency), computed in numpy:
  1. frames of 30 ms (480 samples) every 20 ms (320 samples): 1 + (16000 - 480) // 320 = 49 frames;
  2. a periodic Hann window, a 512-point FFT, the power spectrum |X|^2 (257 bins);
  3. 40 triangular mel filters (HTK mel scale, 20 Hz to 7,600 Hz, as TFLite Micro's micro_speech);
  4. decibels relative to the loudest mel energy of the clip, floored at -80 dB (librosa's
     ``power_to_db(ref=np.max, top_db=80)``), then mapped linearly from [-80, 0] dB to 0..255.
Horizontal flips do not keep the meaning of a spectrogram, so ``hflip_ok`` is false.
"""

from __future__ import annotations

import hashlib
import re
import wave
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .dataset import ArrayDataset

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE
FRAME_SAMPLES = 480
HOP_SAMPLES = 320
FFT_SIZE = 512
MEL_BANDS = 40
MEL_LOW_HZ = 20.0
MEL_HIGH_HZ = 7_600.0
TOP_DB = 80.0
FRAMES = 1 + (CLIP_SAMPLES - FRAME_SAMPLES) // HOP_SAMPLES

_VALIDATION_PERCENT = 10.0
_TEST_PERCENT = 10.0
_MAX_WAVS_PER_CLASS = 2**27 - 1
_FILES_PER_CHUNK = 512  # clips decoded at once: bounds memory on the 105k-clip full set
_SPLIT_LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}


def read_wav(path: str | Path) -> np.ndarray:
    """A mono float32 signal in [-1, 1] at 16 kHz, padded or cut to one second."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as reader:
            channels, width, rate, count = (
                reader.getnchannels(),
                reader.getsampwidth(),
                reader.getframerate(),
                reader.getnframes(),
            )
            raw = reader.readframes(count)
    except (wave.Error, EOFError, OSError) as exc:
        raise DatasetError(f"{path}: unreadable WAV file ({exc})") from exc
    if width not in (1, 2, 3, 4) or channels < 1 or rate <= 0:
        raise DatasetError(f"{path}: unsupported WAV format ({width * 8}-bit, {channels} channels, {rate} Hz)")
    if len(raw) < count * width * channels:
        raise DatasetError(f"{path}: truncated WAV data ({len(raw):,} of {count * width * channels:,} bytes)")
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        values = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        samples = (np.where(values >= 1 << 23, values - (1 << 24), values) / float(1 << 23)).astype(np.float32)
    else:
        dtype = np.dtype("<i2") if width == 2 else np.dtype("<i4")
        samples = np.frombuffer(raw, dtype=dtype).astype(np.float32) / float(1 << (8 * width - 1))
    signal = samples.reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE and len(signal):
        duration = len(signal) / rate
        times = np.arange(int(round(duration * SAMPLE_RATE))) / SAMPLE_RATE
        signal = np.interp(times, np.arange(len(signal)) / rate, signal).astype(np.float32)
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    clip[: min(len(signal), CLIP_SAMPLES)] = signal[:CLIP_SAMPLES]
    return clip


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank() -> np.ndarray:
    """The [FFT_SIZE // 2 + 1, MEL_BANDS] matrix of triangular mel filters (HTK scale)."""
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(MEL_LOW_HZ), _hz_to_mel(MEL_HIGH_HZ), MEL_BANDS + 2))
    bin_hz = np.arange(FFT_SIZE // 2 + 1) * SAMPLE_RATE / FFT_SIZE
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bin_hz[None, :]) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None).T.astype(np.float32)


def log_mel_features(signals: np.ndarray) -> np.ndarray:
    """uint8 [N, FRAMES, MEL_BANDS] log-mel maps of float signals [N, CLIP_SAMPLES] (see module doc)."""
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME_SAMPLES) / FRAME_SAMPLES)).astype(np.float32)
    filters = mel_filterbank()
    starts = np.arange(FRAMES) * HOP_SAMPLES
    frame_index = starts[:, None] + np.arange(FRAME_SAMPLES)[None, :]
    out = np.empty((len(signals), FRAMES, MEL_BANDS), dtype=np.uint8)
    for first in range(0, len(signals), 256):
        frames = signals[first : first + 256][:, frame_index] * window
        power = np.abs(np.fft.rfft(frames, n=FFT_SIZE, axis=-1)) ** 2
        mel = np.maximum(power.astype(np.float32) @ filters, 1e-10)
        decibels = 10.0 * np.log10(mel)
        decibels -= decibels.max(axis=(1, 2), keepdims=True)
        decibels = np.maximum(decibels, -TOP_DB)
        out[first : first + 256] = np.round((decibels + TOP_DB) * (255.0 / TOP_DB)).astype(np.uint8)
    return out


def _hash_split(path: Path) -> str:
    """The split the Speech Commands README's ``which_set`` assigns to a file."""
    speaker = re.sub(r"_nohash_.*$", "", path.name)
    digest = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    percent = (digest % (_MAX_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_WAVS_PER_CLASS)
    if percent < _VALIDATION_PERCENT:
        return "val"
    if percent < _VALIDATION_PERCENT + _TEST_PERCENT:
        return "test"
    return "train"


def is_speech_commands_folder(root: Path) -> bool:
    """Whether ``root`` holds keyword folders of .wav files."""
    return any(
        folder.is_dir() and not folder.name.startswith("_") and any(folder.glob("*.wav"))
        for folder in root.iterdir()
    )


def _split_of_files(root: Path, files: list[Path]) -> dict[Path, str]:
    listed: dict[str, str] = {}
    if all((root / name).is_file() for name in _SPLIT_LISTS.values()):
        for split, name in _SPLIT_LISTS.items():
            for line in (root / name).read_text().splitlines():
                if line.strip():
                    listed[line.strip()] = split
        return {path: listed.get(path.relative_to(root).as_posix(), "train") for path in files}
    return {path: _hash_split(path) for path in files}


def load_speech_commands(root: str | Path, split: str) -> ArrayDataset:
    """The ``split`` ("train", "val" or "test") of a Speech Commands folder as log-mel maps."""
    root = Path(root)
    if split not in ("train", "val", "test"):
        raise DatasetError(f"Speech Commands has splits 'train', 'val' and 'test', not {split!r}")
    folders = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))), key=lambda p: p.name
    )
    class_names = [folder.name for folder in folders]
    files = [(path, label) for label, folder in enumerate(folders) for path in sorted(folder.glob("*.wav"))]
    splits = _split_of_files(root, [path for path, _ in files])
    chosen = [(path, label) for path, label in files if splits[path] == split]
    if not chosen:
        raise DatasetError(f"{root}: no .wav files in the {split} split")
    features = np.empty((len(chosen), FRAMES, MEL_BANDS), dtype=np.uint8)
    for first in range(0, len(chosen), _FILES_PER_CHUNK):
        chunk = chosen[first : first + _FILES_PER_CHUNK]
        features[first : first + len(chunk)] = log_mel_features(np.stack([read_wav(path) for path, _ in chunk]))
    return ArrayDataset(
        images=features[..., None],
        labels=np.array([label for _, label in chosen], dtype=np.int64),
        class_names=class_names,
        source=str(root),
        hflip_ok=False,
        metadata={"features": f"log-mel {FRAMES}x{MEL_BANDS}, dB re clip max, {TOP_DB:g} dB range"},
    )
