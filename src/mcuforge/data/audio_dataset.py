"""Spoken clips as a data set of front-end features, with augmentation on the PCM.

`AudioFeatureDataset` is an `ArrayDataset` whose samples are the int8 features of an audio front end
(`mcuforge.audio`: ``micro-speech`` 49 x 40, ``mfcc`` 49 x 10) of 1 s int16 clips, stored as uint8
``feature + 128`` [N, frames, bins, 1] (height = time, width = frequency). Training input is
``x = feature / 128`` (``input_encoding`` "int8-features", `data.transforms`), so the int8 model's
input quantisation is scale 1/128, zero point 0 and the front end's int8 output *is* the model's
int8 input, with no requantisation between them on the device.

The features of the un-augmented clips are computed once, at load time (`features_of`), and serve
evaluation, calibration and training without augmentation. With augmentation,
`training_batch(indices, seed)` augments the batch's raw clips (`audio_augment`) and runs the front
end on them again, so every epoch sees new sounds through the very front end the device runs, then
masks bands and spans of the features when the augmentation asks for it (SpecAugment,
`audio_augment.mask_features`; off by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from ..audio import frontend_by_name
from .audio_augment import AudioAugment, augment_clips, mask_features
from .audio_clips import CLIP_SAMPLES, fit_to_window
from .dataset import ArrayDataset

FEATURE_OFFSET = 128  # uint8 sample = int8 feature + 128
INPUT_ENCODING = "int8-features"
_CHUNK = 256  # clips per front-end call at load time


def features_of(pcm: np.ndarray, frontend: str, progress: bool = False) -> np.ndarray:
    """uint8 [N, frames, bins, 1] (feature + 128) of int16 clips [N, samples] through ``frontend``."""
    module = frontend_by_name(frontend)
    chunks = []
    starts = range(0, len(pcm), _CHUNK)
    for first in tqdm(starts, desc=f"{frontend} features", unit="chunk", disable=not progress or len(starts) < 2,
                      leave=False):
        int8 = module.features_batch(np.ascontiguousarray(pcm[first:first + _CHUNK]))
        chunks.append((int8.astype(np.int16) + FEATURE_OFFSET).astype(np.uint8))
    return np.concatenate(chunks, axis=0)[..., None]


def features_to_int8(images: np.ndarray) -> np.ndarray:
    """The int8 features back from stored uint8 samples (any shape)."""
    return (np.asarray(images).astype(np.int16) - FEATURE_OFFSET).astype(np.int8)


@dataclass(eq=False)
class AudioFeatureDataset(ArrayDataset):
    """Features of 1 s clips (module doc). ``clips`` holds each clip's raw int16 PCM at 16 kHz (its
    own length, before fitting to the window); ``augment`` None trains on the stored features."""

    clips: tuple[np.ndarray, ...] = ()
    frontend: str = "micro-speech"
    augment: AudioAugment | None = None
    noise: tuple[np.ndarray, ...] = field(default=(), repr=False)

    def training_batch(self, indices: np.ndarray | torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented clips through the front end (module doc), uint8 [B, 1, frames, bins]."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.augment is None:
            return self.batch(indices)
        pcm = augment_clips([self.clips[i] for i in indices], np.random.default_rng(seed), self.augment,
                            self.noise)
        images = mask_features(features_of(pcm, self.frontend), np.random.default_rng([seed, 1]), self.augment)
        return (torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
                torch.from_numpy(self.labels[indices]))

    def window_pcm(self, indices: np.ndarray | None = None) -> np.ndarray:
        """int16 [N, 16000]: the clips as the front end hears them without augmentation."""
        chosen = range(len(self)) if indices is None else indices
        return np.stack([fit_to_window(self.clips[i], CLIP_SAMPLES) for i in chosen])

    def subset(self, indices: np.ndarray) -> "AudioFeatureDataset":
        """A new data set with only the clips at ``indices``."""
        indices = np.asarray(indices, dtype=np.int64)
        return AudioFeatureDataset(
            images=self.images[indices], labels=self.labels[indices], class_names=list(self.class_names),
            source=self.source, hflip_ok=False, metadata=dict(self.metadata),
            clips=tuple(self.clips[i] for i in indices), frontend=self.frontend, augment=self.augment,
            noise=self.noise)


def audio_dataset(clips: list[np.ndarray], labels: list[int], class_names: list[str], source: str,
                  frontend: str, augment: AudioAugment | None, noise: tuple[np.ndarray, ...] = (),
                  metadata: dict | None = None, progress: bool = True) -> AudioFeatureDataset:
    """An `AudioFeatureDataset` of raw 16 kHz clips, their features computed once."""
    window = np.stack([fit_to_window(clip, CLIP_SAMPLES) for clip in clips]) if clips else \
        np.zeros((0, CLIP_SAMPLES), dtype=np.int16)
    images = features_of(window, frontend, progress) if clips else np.zeros((0, 1, 1, 1), np.uint8)
    info = {"input_encoding": INPUT_ENCODING, "frontend": frontend,
            "features": f"{frontend} int8 {images.shape[1]}x{images.shape[2]}, stored as feature + 128",
            **(metadata or {})}
    return AudioFeatureDataset(images=images, labels=np.asarray(labels, dtype=np.int64),
                               class_names=list(class_names), source=source, hflip_ok=False, metadata=info,
                               clips=tuple(clips), frontend=frontend, augment=augment, noise=noise)
