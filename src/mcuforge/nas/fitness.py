"""Fitness of a subnet: held-out accuracy after batch-norm recalibration (once-for-all).

The supernet's BN running statistics are a blend over all the subnets trained, so they fit no single
subnet. Before a subnet is scored, it is extracted (`SuperNet.get_active_subnet`), its BN statistics
are reset and re-estimated as exact averages (``momentum=None``) over ``recalibration_samples``
training images (no augmentation), and its accuracy is measured on a held-out split carved from the
*training* set (the test set is never used for search decisions). Images are prepared once and kept
as tensors, so scoring a candidate costs two short forward sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..data.dataset import ArrayDataset
from ..data.transforms import eval_batch
from ..train.loop import derived_seed
from .space import ArchConfig
from .supernet import SuperNet


def split_holdout(dataset: ArrayDataset, holdout: int, seed: int) -> tuple[ArrayDataset, ArrayDataset]:
    """(training part, held-out part) of ``dataset``: a seeded permutation's last ``holdout`` samples
    are held out."""
    holdout = min(holdout, len(dataset) // 5)
    order = np.random.default_rng(derived_seed(seed, 0x401D)).permutation(len(dataset))
    return dataset.subset(order[:-holdout]), dataset.subset(order[-holdout:])


def _prepared(dataset: ArrayDataset, resolution: int, in_channels: int, batch: int = 500) -> torch.Tensor:
    parts = []
    for first in range(0, len(dataset), batch):
        images, _ = dataset.batch(np.arange(first, min(first + batch, len(dataset))))
        parts.append(eval_batch(images, resolution, in_channels))
    return torch.cat(parts)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: torch.Tensor, batch_size: int = 250) -> None:
    """Reset every BatchNorm's statistics and re-estimate them as exact averages over ``images``."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    was_training = model.training
    model.train()
    for first in range(0, len(images), batch_size):
        model(images[first:first + batch_size])
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.train(was_training)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` in eval mode."""
    model.eval()
    correct = 0
    for first in range(0, len(images), batch_size):
        logits = model(images[first:first + batch_size])
        correct += int((logits.argmax(1) == labels[first:first + batch_size]).sum())
    return correct / max(1, len(images))


@dataclass
class SubnetScorer:
    """Scores architectures of a trained supernet: held-out accuracy after BN recalibration."""

    supernet: SuperNet
    recalibration_images: torch.Tensor
    holdout_images: torch.Tensor
    holdout_labels: torch.Tensor

    @classmethod
    def from_data(cls, supernet: SuperNet, train_part: ArrayDataset, holdout: ArrayDataset,
                  recalibration_samples: int = 2000, seed: int = 0) -> "SubnetScorer":
        """Prepare the recalibration images (a seeded sample of ``train_part``) and the held-out set."""
        space = supernet.space
        rng = np.random.default_rng(derived_seed(seed, 0xBC))
        picked = rng.choice(len(train_part), size=min(recalibration_samples, len(train_part)), replace=False)
        recal = _prepared(train_part.subset(np.sort(picked)), space.resolution, space.in_channels)
        held = _prepared(holdout, space.resolution, space.in_channels)
        return cls(supernet, recal, held, torch.from_numpy(holdout.labels))

    def subnet(self, arch: ArchConfig) -> nn.Module:
        """The standalone subnet of ``arch`` with recalibrated BN statistics."""
        self.supernet.set_arch(arch)
        model = self.supernet.get_active_subnet()
        recalibrate_bn(model, self.recalibration_images)
        return model

    def __call__(self, arch: ArchConfig) -> float:
        """Held-out accuracy of ``arch`` (the search's fitness)."""
        return accuracy(self.subnet(arch), self.holdout_images, self.holdout_labels)
