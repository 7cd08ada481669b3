"""The weight-sharing supernet of one search space (TinyNAS stage 2, once-for-all style).

Layout as `space.SearchSpace`: a fixed stem and first block, five stages of ``max_depth`` elastic
inverted-residual blocks, one elastic last block, global pooling and the classifier. Elastic depth:
a stage of depth d runs its first d blocks. API as once-for-all::

    net = SuperNet(space)
    net.set_active_subnet(ks=[...], e=[...], d=[...])   # or net.set_arch(arch)
    net.get_active_arch()          # ArchConfig
    net.get_active_spec()          # NetSpec (a DSL spec; `space.spec_string` of the arch)
    net.get_active_subnet()        # standalone `spec_torch.SpecNet` with the active weights copied

``get_active_subnet`` gives exactly the supernet's outputs with that subnet active (a test checks it),
so a searched network is fine-tuned, quantised and compiled like any zoo model. ``config`` holds the
space; ``SuperNet(SearchSpace.from_dict(net.config["space"]))`` rebuilds the module.
"""

from __future__ import annotations

import random

import torch
from torch import nn

from ..models.dsl import BlockSpec, NetSpec
from ..models.spec_torch import Classifier, ConvBNAct, GlobalPool, InvertedResidual, SpecNet, build_torch
from .elastic import DynamicInvertedResidual
from .space import FIRST_BLOCK_CHANNELS, STEM_CHANNELS, ArchConfig, SearchSpace


class SuperNet(nn.Module):
    """Elastic kernel / expansion / depth network over ``space`` (see module doc)."""

    def __init__(self, space: SearchSpace):
        super().__init__()
        self.space = space
        stem_c, first_c = space.channels(STEM_CHANNELS), space.channels(FIRST_BLOCK_CHANNELS)
        self.stem = ConvBNAct(space.in_channels, stem_c, 3, 2, "relu6")
        self.first = InvertedResidual(stem_c, BlockSpec("ir", first_c, kernel=3, expand=1.0))
        stages = []
        channels = first_c
        widths = space.stage_channels()
        for (_, stride), out_c in zip(space.stages, widths):
            blocks = []
            for index in range(space.max_depth):
                blocks.append(DynamicInvertedResidual(channels, out_c, stride if index == 0 else 1,
                                                      space.kernels, space.expands))
                channels = out_c
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.last = DynamicInvertedResidual(channels, widths[-1], 1, space.kernels, space.expands)
        self.pool = GlobalPool()
        self.classifier = Classifier(widths[-1], BlockSpec("fc", space.num_classes, act="none"))
        self.active_depths = [space.max_depth] * len(space.stages)

    @property
    def config(self) -> dict:
        """What rebuilds this module: ``{"name": "SuperNet", "space": space.to_dict()}``."""
        return {"name": "SuperNet", "space": self.space.to_dict()}

    def _slots(self) -> list[DynamicInvertedResidual]:
        return [block for stage in self.stages for block in stage] + [self.last]

    def set_active_subnet(self, ks=None, e=None, d=None) -> None:
        """Set kernel sizes (per slot), expansion ratios (per slot) and depths (per stage); an int sets
        every entry, None keeps the current choice (once-for-all's signature)."""
        slots = self._slots()

        def per(value, count):
            return [value] * count if isinstance(value, int) else list(value)

        kernels = per(ks, len(slots)) if ks is not None else [b.active_kernel for b in slots]
        expands = per(e, len(slots)) if e is not None else [b.active_expand for b in slots]
        if len(kernels) != len(slots) or len(expands) != len(slots):
            raise ValueError(f"need {len(slots)} kernel sizes and expansion ratios")
        for block, kernel, expand in zip(slots, kernels, expands):
            block.set_active(kernel, expand)
        if d is not None:
            depths = per(d, len(self.stages))
            if len(depths) != len(self.stages) or any(x not in self.space.depths for x in depths):
                raise ValueError(f"depths {depths} not in {self.space.depths} for {len(self.stages)} stages")
            self.active_depths = depths

    def set_arch(self, arch: ArchConfig) -> None:
        """Activate the subnet ``arch``."""
        self.space.check(arch)
        self.set_active_subnet(list(arch.kernels), list(arch.expands), list(arch.depths))

    def get_active_arch(self) -> ArchConfig:
        """The active subnet as an `ArchConfig`."""
        slots = self._slots()
        return ArchConfig(tuple(b.active_kernel for b in slots), tuple(b.active_expand for b in slots),
                          tuple(self.active_depths))

    def set_max_net(self) -> None:
        """Activate the largest subnet."""
        self.set_arch(self.space.largest())

    def set_min_net(self) -> None:
        """Activate the smallest subnet."""
        self.set_arch(self.space.smallest())

    def sample_active_subnet(self, rng: random.Random) -> ArchConfig:
        """Activate a uniformly random subnet and return it."""
        arch = self.space.sample(rng)
        self.set_arch(arch)
        return arch

    def active_blocks(self) -> list[DynamicInvertedResidual]:
        """The elastic blocks the active subnet runs, in order."""
        blocks = [b for stage, depth in zip(self.stages, self.active_depths) for b in list(stage)[:depth]]
        return blocks + [self.last]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the active subnet."""
        x = self.first(self.stem(x))
        for block in self.active_blocks():
            x = block(x)
        return self.classifier(self.pool(x))

    def get_active_spec(self) -> NetSpec:
        """The DSL spec of the active subnet."""
        return self.space.spec(self.get_active_arch())

    @torch.no_grad()
    def get_active_subnet(self) -> SpecNet:
        """A standalone `SpecNet` of the active subnet with its weights (kernel transforms applied)."""
        net = build_torch(self.get_active_spec())
        modules = list(net.blocks)
        modules[0].load_state_dict(self.stem.state_dict())
        modules[1].load_state_dict(self.first.state_dict())
        for target, source in zip(modules[2:-2], self.active_blocks()):
            _copy_block(source, target)
        modules[-1].load_state_dict(self.classifier.state_dict())
        net.train(self.training)
        return net


def _copy_pointwise(source, target: ConvBNAct, in_channels: int) -> None:
    target.conv.weight.copy_(source.active_weight(in_channels))
    target.bn.load_state_dict(source.bn.export(source.active_out).state_dict())


def _copy_block(source: DynamicInvertedResidual, target: InvertedResidual) -> None:
    mid = source.mid_channels
    if target.expand is None or target.dw.conv.weight.shape[0] != mid:
        raise ValueError("subnet block does not match the supernet block")
    _copy_pointwise(source.expand, target.expand, source.in_channels)
    target.dw.conv.weight.copy_(source.dw.active_weight(mid))
    target.dw.bn.load_state_dict(source.dw.bn.export(mid).state_dict())
    _copy_pointwise(source.project, target.project, mid)
