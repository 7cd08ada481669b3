"""The one in-memory data set type every loader returns.

Every format (IDX, CIFAR batches, image folders, Speech Commands features) is decoded once, at load
time, into a uint8 array of shape [N, H, W, C] plus int64 labels. Keeping the whole set in memory as
uint8 is small for the sets this tool targets (Fashion-MNIST is 47 MB) and makes batches cheap: a
batch is one fancy-index into the array, with no per-sample Python work. Values are the pixel (or
feature) intensities 0..255; `mcuforge.data.transforms` turns them into model input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DatasetError


@dataclass(eq=False)
class ArrayDataset(Dataset):
    """Images (or feature maps) as uint8 [N, H, W, C] with labels in 0..num_classes-1.

    ``source`` names where the data came from (for messages); ``hflip_ok`` says whether a horizontal
    flip keeps the label (true for clothes and objects, false for digits and spectrograms).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    source: str
    hflip_ok: bool = True
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise DatasetError(
                f"{self.source}: images must be uint8 [N, H, W, C], got {self.images.dtype} "
                f"{list(self.images.shape)}"
            )
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (self.images.shape[0],):
            raise DatasetError(
                f"{self.source}: {self.images.shape[0]} images but {self.labels.shape[0]} labels"
            )
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise DatasetError(
                f"{self.source}: labels must lie in 0..{len(self.class_names) - 1}, "
                f"found {int(self.labels.min())}..{int(self.labels.max())}"
            )

    @property
    def num_classes(self) -> int:
        """How many classes the labels range over."""
        return len(self.class_names)

    @property
    def channels(self) -> int:
        """Channels per sample: 1 (gray, spectrogram) or 3 (RGB)."""
        return int(self.images.shape[3])

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of every sample."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """One sample as a uint8 [C, H, W] tensor and its label."""
        image = torch.from_numpy(np.ascontiguousarray(self.images[index].transpose(2, 0, 1)))
        return image, int(self.labels[index])

    def batch(self, indices: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Many samples at once: uint8 [B, C, H, W] and int64 [B] labels."""
        indices = np.asarray(indices, dtype=np.int64)
        images = torch.from_numpy(np.ascontiguousarray(self.images[indices].transpose(0, 3, 1, 2)))
        return images, torch.from_numpy(self.labels[indices])

    def training_batch(self, indices: np.ndarray | torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch, like `batch`; data sets that augment their raw data before turning it
        into samples (audio: the PCM before the front end) override it, drawing from ``seed``."""
        return self.batch(indices)

    def fingerprint(self) -> str:
        """A short hash of the shape, all labels and a sample of images (to spot a changed data set)."""
        digest = hashlib.sha1(repr(self.images.shape).encode())
        digest.update(self.labels.tobytes())
        digest.update(np.ascontiguousarray(self.images[:: max(1, len(self) // 64)]).tobytes())
        return digest.hexdigest()[:16]

    def subset(self, indices: np.ndarray) -> "ArrayDataset":
        """A new data set with only the samples at ``indices`` (e.g. a quick smoke-test slice)."""
        indices = np.asarray(indices, dtype=np.int64)
        return ArrayDataset(
            images=self.images[indices],
            labels=self.labels[indices],
            class_names=list(self.class_names),
            source=self.source,
            hflip_ok=self.hflip_ok,
            metadata=dict(self.metadata),
        )
