"""Fine-tuning a detector's tail on cached backbone features: the way to train on a busy CPU.

With the first ``k`` blocks frozen (ImageNet weights, batch norm in eval mode), their output for a
given input never changes, so it is computed once: ``views`` versions of every training image
(view 0 the plain letterbox, the others `data.box_augment.train_example`'s random scale/crop, flip
and colour, each seeded from (seed, image, view)) go through the frozen blocks, and training then
runs only the blocks after them and the head on those features — a step costs a small fraction of
a full forward and backward pass. The augmentation is fixed to those views instead of drawn anew
every step; that is the trade.

`FeatureViews` is the training "data set" the loop draws batches from (its fingerprint covers
the features, so a resume with other data is refused); `TailNet` is the trained module: the whole
model, run from block ``k`` on. The evaluation still runs the whole model on the real validation
images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data.box_augment import AugmentSettings, canvases_to_input, train_example
from ..data.detection import DetectionDataset
from .loop import derived_seed


@dataclass(eq=False)
class FeatureViews:
    """Frozen-block outputs [V, C, H, W] of the training views, and each view's boxes and labels
    (in input pixels)."""

    features: torch.Tensor
    targets: list[tuple[torch.Tensor, torch.Tensor]]
    source: str
    hflip_ok: bool = False  # the views already hold their flips

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def fingerprint(self) -> str:
        """A short hash of the features' shape and a sample of values, and every box."""
        digest = hashlib.sha1(repr(tuple(self.features.shape)).encode())
        digest.update(self.features[:: max(1, len(self) // 16)].numpy().tobytes())
        for boxes, labels in self.targets:
            digest.update(boxes.numpy().tobytes())
            digest.update(labels.numpy().tobytes())
        return digest.hexdigest()[:16]


class TailNet(nn.Module):
    """``model`` run from block ``first`` on (its input: the output of block ``first - 1``)."""

    def __init__(self, model: nn.Module, first: int):
        super().__init__()
        self.model = model
        self.first = first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Blocks ``first`` .. last of the model."""
        for block in list(self.model.blocks)[self.first:]:
            x = block(x)
        return x


@torch.no_grad()
def cache_views(model: nn.Module, dataset: DetectionDataset, blocks: int, size: int, views: int, seed: int,
                augment: AugmentSettings = AugmentSettings(), batch: int = 16,
                progress: bool = True) -> FeatureViews:
    """The outputs of ``model``'s first ``blocks`` blocks (in eval mode) for ``views`` views of every
    sample of ``dataset`` at ``size`` x ``size`` (module doc)."""
    settings = augment if dataset.hflip_ok else AugmentSettings(augment.scale_jitter, augment.min_visible,
                                                                False, augment.colour)
    jobs = [(i, v) for i in range(len(dataset)) for v in range(views)]
    frozen = list(model.blocks)[:blocks]
    modes = [block.training for block in frozen]
    for block in frozen:
        block.eval()
    features, targets = [], []
    try:
        for first in tqdm(range(0, len(jobs), batch), desc="caching frozen-block features", unit="batch",
                          disable=not progress, leave=False):
            canvases = []
            for index, view in jobs[first:first + batch]:
                rng = np.random.default_rng(derived_seed(seed, index, view, 0xCAC4E))
                canvas, boxes, labels = train_example(dataset.samples[index], size, rng,
                                                      settings if view else None)
                canvases.append(canvas)
                targets.append((torch.from_numpy(np.asarray(boxes, np.float32).reshape(-1, 4)),
                                torch.from_numpy(np.asarray(labels, np.int64))))
            x = canvases_to_input(canvases)
            for block in frozen:
                x = block(x)
            features.append(x.contiguous())
    finally:
        for block, mode in zip(frozen, modes):
            block.train(mode)
    return FeatureViews(torch.cat(features), targets, f"{dataset.source} ({views} views, blocks 0..{blocks - 1})")
