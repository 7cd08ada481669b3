"""From uint8 samples to model input: resize, channels, normalisation, augmentation — per batch.

Every step works on a whole batch [B, C, H, W] at once (no per-sample Python work):

  1. ``x / 255``, then bilinear resize to the model's resolution (``align_corners=False``;
     antialiased when shrinking);
  2. channels: gray -> 3 channels repeats the plane; RGB -> 1 channel is the luma
     0.299 R + 0.587 G + 0.114 B; other mismatches are an error;
  3. training only (the standard small-image augmentation): a random crop with zero padding of
     1/8 of the side (every sample shifted by its own whole-pixel offset in [-pad, pad]; can be
     switched off), then a horizontal flip with probability 1/2 where the data set allows it (not
     for digits or spectrograms);
  4. ``(x - 0.5) / 0.5``, so inputs lie in [-1, 1]. With the int8 input scale 1/127.5 and zero point
     0 the quantised input is ``pixel - 128`` (up to the resize), which keeps a deployed model's
     input path trivial.

Spectrogram data sets (``input_encoding`` "int8-features", `data.audio_dataset`) skip all of it:
their uint8 samples are ``feature + 128`` and the model input is ``x = (sample - 128) / 128``, the
int8 feature over 128, with no resize and no crop or flip (their augmentation happens on the PCM).

The randomness comes only from the ``torch.Generator`` passed in, so a batch is a function of the
generator's seed; the training loop seeds it from (seed, epoch, step) to make runs reproducible and
resumable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import DatasetError

NORMALIZE_MEAN = 0.5
NORMALIZE_STD = 0.5
_LUMA = (0.299, 0.587, 0.114)
INPUT_ENCODINGS = ("pixels", "int8-features")
FEATURE_SCALE = 1.0 / 128  # "int8-features": x = feature * FEATURE_SCALE (zero point 0)
FEATURE_RANGE = (-128 * FEATURE_SCALE, 127 * FEATURE_SCALE)  # the real range of int8 features


def check_encoding(encoding: str) -> None:
    """Raise `DatasetError` for an unknown input encoding."""
    if encoding not in INPUT_ENCODINGS:
        raise DatasetError(f"unknown input encoding {encoding!r} (one of {', '.join(INPUT_ENCODINGS)})")


def features_input(images: torch.Tensor, resolution: int | tuple[int, int], in_channels: int) -> torch.Tensor:
    """uint8 [B, 1, frames, bins] feature samples -> float model input ``(sample - 128) / 128``."""
    height, width = _as_pair(resolution)
    if tuple(images.shape[1:]) != (in_channels, height, width):
        raise DatasetError(f"features of shape {list(images.shape[1:])} (channels, frames, bins) do not "
                           f"fit a model input of {[in_channels, height, width]}")
    return (images.to(torch.float32) - 128.0) * FEATURE_SCALE


def _as_pair(resolution: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(resolution, int):
        return resolution, resolution
    return int(resolution[0]), int(resolution[1])


def resize_and_convert(
    images: torch.Tensor, resolution: int | tuple[int, int], in_channels: int
) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float [B, in_channels, h, w] in [0, 1] (steps 1 and 2)."""
    height, width = _as_pair(resolution)
    x = images.to(torch.float32) / 255.0
    if x.shape[-2:] != (height, width):
        shrinking = x.shape[-2] > height or x.shape[-1] > width
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking)
    channels = x.shape[1]
    if channels == in_channels:
        return x
    if channels == 1:
        return x.expand(-1, in_channels, -1, -1).contiguous()
    if channels == 3 and in_channels == 1:
        weights = torch.tensor(_LUMA, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    raise DatasetError(f"cannot turn {channels}-channel data into {in_channels}-channel model input")


def normalize(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] (step 4)."""
    return (x - NORMALIZE_MEAN) / NORMALIZE_STD


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, hflip: bool, crop: bool = True) -> torch.Tensor:
    """Per-sample random crop with zero padding of 1/8 of the side, and an optional random flip.

    The generator is drawn from the same way whatever ``hflip`` and ``crop`` say, so switching one
    off does not change the other's choices.
    """
    batch, _, height, width = x.shape
    pad_y, pad_x = max(1, height // 8), max(1, width // 8)
    padded = F.pad(x, (pad_x, pad_x, pad_y, pad_y))
    offset_y = torch.randint(0, 2 * pad_y + 1, (batch,), generator=generator)
    offset_x = torch.randint(0, 2 * pad_x + 1, (batch,), generator=generator)
    if not crop:
        offset_y, offset_x = torch.full_like(offset_y, pad_y), torch.full_like(offset_x, pad_x)
    rows = offset_y[:, None] + torch.arange(height)[None, :]
    cols = offset_x[:, None] + torch.arange(width)[None, :]
    flips = torch.rand(batch, generator=generator) < 0.5
    if hflip:
        cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch_index = torch.arange(batch)[:, None, None]
    # padded[b, :, rows[b, i], cols[b, j]] for every b, i, j: [B, H, W, C] -> [B, C, H, W]
    cropped = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]]
    return cropped.permute(0, 3, 1, 2).contiguous()


def eval_batch(images: torch.Tensor, resolution: int | tuple[int, int], in_channels: int,
               encoding: str = "pixels") -> torch.Tensor:
    """Model input for evaluation and export: resize, channels, normalise (pixels), or the features
    over 128 (int8-features)."""
    check_encoding(encoding)
    if encoding == "int8-features":
        return features_input(images, resolution, in_channels)
    return normalize(resize_and_convert(images, resolution, in_channels))


def train_batch(
    images: torch.Tensor,
    resolution: int | tuple[int, int],
    in_channels: int,
    generator: torch.Generator,
    augment: bool = True,
    hflip: bool = True,
    crop: bool = True,
    encoding: str = "pixels",
) -> torch.Tensor:
    """Model input for training: resize, channels, crop and flip (when ``augment``), normalise; for
    int8 features as `eval_batch` (they were augmented as sound)."""
    check_encoding(encoding)
    if encoding == "int8-features":
        return features_input(images, resolution, in_channels)
    x = resize_and_convert(images, resolution, in_channels)
    if augment:
        x = random_crop_flip(x, generator, hflip, crop)
    return normalize(x)
