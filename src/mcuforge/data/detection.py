"""The in-memory type of a detection data set: images of any size, each with its boxes.

Unlike `ArrayDataset` (one fixed-size array), detection images keep their own sizes and aspect
ratios until a batch is made (`data.box_augment` letterboxes them to the model's square input), so
the set is a list of uint8 [H, W, 3] arrays. Boxes are float ``[x0, y0, x1, y1]`` in the pixels of
the stored image (continuous coordinates: a box covering the whole W x H image is ``[0, 0, W, H]``,
its width ``x1 - x0``, as COCO counts it); loaders that shrink large images on load scale the boxes
with them, which changes no IoU. ``difficult`` marks Pascal VOC's difficult objects (ignored by
the metrics: neither a hit nor a miss).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..detect.metrics import GroundTruth
from ..errors import DatasetError


@dataclass(frozen=True)
class DetectionSample:
    """One image and its objects: ``boxes`` float32 [N, 4], ``labels`` int64 [N], ``difficult``
    bool [N]; ``name`` is the image's file name."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the stored image."""
        return int(self.image.shape[0]), int(self.image.shape[1])


@dataclass(frozen=True, eq=False)
class DetectionDataset:
    """Samples with class names; ``source`` names where they came from (for messages)."""

    samples: tuple[DetectionSample, ...]
    class_names: tuple[str, ...]
    source: str
    hflip_ok: bool = True

    def __post_init__(self) -> None:
        for sample in self.samples:
            if sample.image.dtype != np.uint8 or sample.image.ndim != 3 or sample.image.shape[2] != 3:
                raise DatasetError(f"{self.source}: {sample.name}: images must be uint8 [H, W, 3]")
            if len(sample.labels) and (sample.labels.min() < 0 or sample.labels.max() >= len(self.class_names)):
                raise DatasetError(f"{self.source}: {sample.name}: a label outside 0..{len(self.class_names) - 1}")

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def num_classes(self) -> int:
        """How many classes the labels range over."""
        return len(self.class_names)

    @property
    def channels(self) -> int:
        """Always 3 (RGB)."""
        return 3

    @property
    def object_count(self) -> int:
        """Objects over all samples (difficult ones included)."""
        return sum(len(sample.labels) for sample in self.samples)

    def fingerprint(self) -> str:
        """A short hash of names, sizes and boxes (to spot a changed data set on resume)."""
        digest = hashlib.sha1()
        for sample in self.samples:
            digest.update(f"{sample.name}{sample.image.shape}".encode())
            digest.update(np.ascontiguousarray(sample.boxes, dtype=np.float32).tobytes())
            digest.update(np.ascontiguousarray(sample.labels).tobytes())
        return digest.hexdigest()[:16]

    def subset(self, indices) -> "DetectionDataset":
        """A data set of the samples at ``indices``."""
        return DetectionDataset(tuple(self.samples[int(i)] for i in indices), self.class_names,
                                self.source, self.hflip_ok)

    def ground_truths(self) -> list[GroundTruth]:
        """Every sample's boxes, labels and difficult flags (image pixels), for `detect.metrics`."""
        return [GroundTruth(s.boxes.astype(np.float64), s.labels, s.difficult) for s in self.samples]

    def box_sizes(self) -> np.ndarray:
        """[N, 2] (width, height) of every non-difficult box, as fractions of its image's size."""
        sizes = []
        for sample in self.samples:
            height, width = sample.size
            keep = ~sample.difficult
            boxes = sample.boxes[keep]
            sizes.append(np.stack([(boxes[:, 2] - boxes[:, 0]) / width,
                                   (boxes[:, 3] - boxes[:, 1]) / height], axis=1))
        return np.concatenate(sizes) if sizes else np.zeros((0, 2))
