"""Detection images to square model input, with augmentation that keeps the boxes right.

Everything is one placement: the image is scaled by ``f`` and pasted at ``(ox, oy)`` on an S x S
grey canvas (`detect.letterbox.LETTERBOX_FILL`, the deployed letterbox's grey); a box
``[x0, y0, x1, y1]`` becomes ``[x0 f + ox, y0 f + oy, x1 f + ox, y1 f + oy]``, clipped to the
canvas.

- **letterbox** (evaluation and deployment): `detect.letterbox.letterbox_image` (``f = S /
  max(W, H)``, the image centred), the one the deployed detector's images go through;
  `letterbox_placement` gives its `Placement` for the ground-truth boxes.
- **random scale / crop** (training): ``f`` is the letterbox scale times a factor drawn from
  ``[1 - scale_jitter, 1 + scale_jitter]`` and the offset is uniform over every position that keeps
  the canvas covered where the image is larger (a crop) and the image inside where it is smaller
  (a zoom-out). A box keeps at least ``min_visible`` of its area on the canvas or is dropped.
- **horizontal flip**: ``x -> W - x`` (before the placement);
- **colour jitter**: brightness, contrast and saturation factors from ``[1 - s, 1 + s]``.

Pillow resizes (bilinear); the randomness comes only from the ``numpy.random.Generator`` passed in,
so an example is a function of its seed (the training loop derives it from seed, epoch and step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..detect.letterbox import LETTERBOX_FILL, Letterbox, letterbox_image
from .detection import DetectionSample
from .transforms import normalize


@dataclass(frozen=True)
class Placement:
    """How an image sits on the canvas: scale per axis and offset, in canvas pixels."""

    scale_x: float
    scale_y: float
    offset_x: int
    offset_y: int


def place(image: np.ndarray, size: int, scale: float, offset: tuple[int, int]) -> tuple[np.ndarray, Placement]:
    """``image`` (uint8 [H, W, 3]) scaled by ``scale`` and pasted at ``offset`` on a size x size canvas."""
    from PIL import Image

    height, width = image.shape[:2]
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (size, size), (LETTERBOX_FILL,) * 3)
    canvas.paste(resized, (int(offset[0]), int(offset[1])))
    return np.asarray(canvas, dtype=np.uint8), Placement(new_w / width, new_h / height, int(offset[0]), int(offset[1]))


def place_boxes(boxes: np.ndarray, placement: Placement, size: int) -> np.ndarray:
    """Boxes in image pixels -> canvas pixels, clipped to the canvas (rows kept in order)."""
    scale = np.array([placement.scale_x, placement.scale_y] * 2, dtype=np.float32)
    offset = np.array([placement.offset_x, placement.offset_y] * 2, dtype=np.float32)
    return np.clip(boxes.reshape(-1, 4) * scale + offset, 0, size)


def letterbox_placement(letterbox: Letterbox) -> Placement:
    """The `Placement` of a `detect.letterbox.Letterbox`."""
    height, width = letterbox.image_size
    return Placement(letterbox.resized[1] / width, letterbox.resized[0] / height, letterbox.pad[1],
                     letterbox.pad[0])


def eval_example(sample: DetectionSample, size: int) -> tuple[np.ndarray, Letterbox]:
    """(letterboxed canvas uint8 [S, S, 3], its `Letterbox`) of a sample, as deployed."""
    return letterbox_image(sample.image, (size, size))


def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image mirrored left-right and its boxes with it."""
    width = image.shape[1]
    flipped = boxes.reshape(-1, 4).copy()
    flipped[:, [0, 2]] = width - boxes.reshape(-1, 4)[:, [2, 0]]
    return np.ascontiguousarray(image[:, ::-1]), flipped


def colour_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 0.3) -> np.ndarray:
    """Brightness, contrast and saturation each scaled by a factor in [1 - strength, 1 + strength]."""
    brightness, contrast, saturation = rng.uniform(1 - strength, 1 + strength, size=3)
    x = image.astype(np.float32) * brightness
    x = (x - x.mean()) * contrast + x.mean()
    gray = (x @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    x = gray + (x - gray) * saturation
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class AugmentSettings:
    """Training augmentation: ``scale_jitter`` of the random scale/crop, ``min_visible`` part of a
    box's area that must stay on the canvas, flip (where the data allow it), colour strength."""

    scale_jitter: float = 0.35
    min_visible: float = 0.4
    flip: bool = True
    colour: float = 0.3


def _random_offset(rng: np.random.Generator, canvas: int, extent: int) -> int:
    low, high = sorted((0, canvas - extent))
    return int(rng.integers(low, high + 1))


def train_example(sample: DetectionSample, size: int, rng: np.random.Generator,
                  settings: AugmentSettings | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(canvas uint8 [S, S, 3], boxes [N, 4] in canvas pixels, labels [N]) of one augmented
    training example; difficult objects are kept (they are real objects), boxes cut below
    ``min_visible`` are dropped. With ``settings`` None: the plain letterbox."""
    image, boxes = sample.image, sample.boxes.reshape(-1, 4)
    if settings is None:
        canvas, box = eval_example(sample, size)
        return canvas, place_boxes(boxes, letterbox_placement(box), size), sample.labels.copy()
    if settings.flip and rng.random() < 0.5:
        image, boxes = hflip(image, boxes)
    if settings.colour > 0:
        image = colour_jitter(image, rng, settings.colour)
    height, width = image.shape[:2]
    scale = size / max(width, height) * rng.uniform(1 - settings.scale_jitter, 1 + settings.scale_jitter)
    offset = (_random_offset(rng, size, round(width * scale)), _random_offset(rng, size, round(height * scale)))
    canvas, placement = place(image, size, scale, offset)
    scale_xy = np.array([placement.scale_x, placement.scale_y] * 2, dtype=np.float32)
    unclipped = boxes * scale_xy + np.array([placement.offset_x, placement.offset_y] * 2, dtype=np.float32)
    placed = np.clip(unclipped, 0, size)
    area = lambda b: np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)  # noqa: E731
    keep = (area(placed) >= settings.min_visible * area(unclipped)) & (placed[:, 2] - placed[:, 0] >= 2) \
        & (placed[:, 3] - placed[:, 1] >= 2)
    return canvas, placed[keep], sample.labels[keep]


def canvases_to_input(canvases: list[np.ndarray]) -> torch.Tensor:
    """uint8 [S, S, 3] canvases -> float NCHW model input in [-1, 1] (`transforms.normalize`)."""
    x = torch.from_numpy(np.stack(canvases)).permute(0, 3, 1, 2).to(torch.float32) / 255.0
    return normalize(x).contiguous()
