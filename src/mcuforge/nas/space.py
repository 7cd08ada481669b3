"""MCUNet's search space: every sample is a DSL spec string.

A *space* is fixed by a width multiplier and an input resolution (TinyNAS stage 1 chooses one). Inside
it, an *architecture* (`ArchConfig`, once-for-all's ``ks / e / d`` lists) chooses per block a kernel
size from {3, 5, 7} and an expansion ratio from {3, 4, 6}, and per stage a depth from {2, 3, 4}.

The macro layout is MCUNet's (ProxylessNAS / once-for-all MobileNetV2 style): a 3x3 stride-2 stem, one
fixed ``ir_k3_e1`` block, five searchable stages (base widths 24, 40, 80, 96, 192; strides 2, 2, 2, 1,
2; up to 4 blocks each, the first with the stage's stride), one searchable single-block stage (320),
global pooling and the classifier. Widths are ``make_divisible(base * width, 8)``; at width 0.5 this is
exactly mcunet-in3's layout (16, 8, 16, 24, 40, 48, 96, 160). Five stride-2 layers mean resolutions must
be multiples of 16.

    >>> space = SearchSpace(width=0.5, resolution=48, in_channels=1, num_classes=10)
    >>> space.spec(space.largest()).to_string()[:44]
    'res48 in1 cls10 | cn_k3_s2_c16 | ir_k3_e1_c8'
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..errors import McuforgeError
from ..models.dsl import NetSpec, make_divisible, parse_spec

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)

# (base channels at width 1.0, stride) of the searchable stages; the last one has depth 1.
STAGES = ((24, 2), (40, 2), (80, 2), (96, 1), (192, 2))
LAST_STAGE = (320, 1)
STEM_CHANNELS = 32
FIRST_BLOCK_CHANNELS = 16
RESOLUTION_DIVISOR = 16

DEFAULT_WIDTHS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def default_resolutions(image_side: int) -> tuple[int, ...]:
    """Input resolutions suited to a data set whose images are ``image_side`` pixels wide: up to about
    twice the native size for small images (upsampling adds no information, only cost), MCUNet's
    96-224 for ImageNet-size images."""
    if image_side <= 32:
        return (32, 48, 64)
    if image_side <= 96:
        return tuple(range(48, 2 * image_side + 1, 16))[:10]
    return tuple(range(96, 225, 16))


@dataclass(frozen=True)
class ArchConfig:
    """One architecture in a space: a kernel and an expansion for every block slot (``max_depth`` per
    stage, then one for the last stage) and a depth per searchable stage. Slots beyond a stage's depth
    are kept (they are inherited by mutation and crossover) but not used."""

    kernels: tuple[int, ...]
    expands: tuple[int, ...]
    depths: tuple[int, ...]

    def key(self) -> str:
        """A short canonical text (only active slots), for caches and reports."""
        return "ks" + "".join(map(str, self.active(self.kernels))) + "-e" + \
            "".join(map(str, self.active(self.expands))) + "-d" + "".join(map(str, self.depths))

    def active(self, values: tuple[int, ...], max_depth: int = max(DEPTHS)) -> tuple[int, ...]:
        """The entries of a per-slot list that belong to active blocks."""
        picked = []
        for stage, depth in enumerate(self.depths):
            picked.extend(values[stage * max_depth: stage * max_depth + depth])
        picked.append(values[len(self.depths) * max_depth])
        return tuple(picked)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"kernels": list(self.kernels), "expands": list(self.expands), "depths": list(self.depths)}

    @classmethod
    def from_dict(cls, values: dict) -> "ArchConfig":
        """Inverse of `to_dict`."""
        return cls(tuple(values["kernels"]), tuple(values["expands"]), tuple(values["depths"]))


@dataclass(frozen=True)
class SearchSpace:
    """The space of one (width, resolution) pair for a data set's input channels and classes."""

    width: float
    resolution: int
    in_channels: int = 3
    num_classes: int = 1000
    kernels: tuple[int, ...] = KERNELS
    expands: tuple[int, ...] = EXPANDS
    depths: tuple[int, ...] = DEPTHS
    stages: tuple[tuple[int, int], ...] = field(default=STAGES)

    def __post_init__(self) -> None:
        if not 0 < self.width <= 4:
            raise McuforgeError(f"width multiplier must be in (0, 4], got {self.width}")
        if self.resolution < RESOLUTION_DIVISOR or self.resolution % RESOLUTION_DIVISOR:
            raise McuforgeError(f"resolution {self.resolution}: this search space needs a multiple of "
                                f"{RESOLUTION_DIVISOR} (five stride-2 layers)")

    @property
    def name(self) -> str:
        """E.g. ``w0.5-r48``."""
        return f"w{self.width:g}-r{self.resolution}"

    @property
    def max_depth(self) -> int:
        """Block slots per searchable stage."""
        return max(self.depths)

    @property
    def num_slots(self) -> int:
        """Length of `ArchConfig.kernels` / ``expands``."""
        return len(self.stages) * self.max_depth + 1

    def channels(self, base: int) -> int:
        """A base width scaled by the width multiplier."""
        return make_divisible(base * self.width, 8)

    def stage_channels(self) -> tuple[int, ...]:
        """Output channels of the searchable stages and of the last stage."""
        return tuple(self.channels(base) for base, _ in self.stages) + (self.channels(LAST_STAGE[0]),)

    def sample(self, rng: random.Random) -> ArchConfig:
        """A uniformly random architecture."""
        n = self.num_slots
        return ArchConfig(tuple(rng.choice(self.kernels) for _ in range(n)),
                          tuple(rng.choice(self.expands) for _ in range(n)),
                          tuple(rng.choice(self.depths) for _ in self.stages))

    def largest(self) -> ArchConfig:
        """Every choice at its maximum."""
        n = self.num_slots
        return ArchConfig((max(self.kernels),) * n, (max(self.expands),) * n, (max(self.depths),) * len(self.stages))

    def smallest(self) -> ArchConfig:
        """Every choice at its minimum."""
        n = self.num_slots
        return ArchConfig((min(self.kernels),) * n, (min(self.expands),) * n, (min(self.depths),) * len(self.stages))

    def check(self, arch: ArchConfig) -> None:
        """Raise `McuforgeError` unless ``arch`` belongs to this space."""
        if len(arch.kernels) != self.num_slots or len(arch.expands) != self.num_slots \
                or len(arch.depths) != len(self.stages):
            raise McuforgeError(f"architecture {arch.key()} has the wrong number of slots for {self.name}")
        if not set(arch.kernels) <= set(self.kernels) or not set(arch.expands) <= set(self.expands) \
                or not set(arch.depths) <= set(self.depths):
            raise McuforgeError(f"architecture {arch.key()} uses a choice outside {self.name}")

    def spec_string(self, arch: ArchConfig) -> str:
        """The DSL text of ``arch`` in this space."""
        blocks = []
        channels = self.stage_channels()
        for stage, ((_, stride), depth) in enumerate(zip(self.stages, arch.depths)):
            for index in range(depth):
                slot = stage * self.max_depth + index
                s = f"_s{stride}" if index == 0 and stride != 1 else ""
                blocks.append(f"ir_k{arch.kernels[slot]}{s}_e{arch.expands[slot]}_c{channels[stage]}")
        last = self.num_slots - 1
        blocks.append(f"ir_k{arch.kernels[last]}_e{arch.expands[last]}_c{channels[-1]}")
        header = f"res{self.resolution} in{self.in_channels} cls{self.num_classes}"
        stem = f"cn_k3_s2_c{self.channels(STEM_CHANNELS)}"
        first = f"ir_k3_e1_c{self.channels(FIRST_BLOCK_CHANNELS)}"
        return f"{header} | {stem} | {first} {' '.join(blocks)} | pool fc_c{self.num_classes}"

    def spec(self, arch: ArchConfig) -> NetSpec:
        """The `NetSpec` of ``arch`` in this space."""
        return parse_spec(self.spec_string(arch), name=f"tinynas-{self.name}")

    def to_dict(self) -> dict:
        """JSON-ready form (the default choice sets and stages are implied)."""
        return {"width": self.width, "resolution": self.resolution, "in_channels": self.in_channels,
                "num_classes": self.num_classes}

    @classmethod
    def from_dict(cls, values: dict) -> "SearchSpace":
        """Inverse of `to_dict`."""
        return cls(float(values["width"]), int(values["resolution"]), int(values["in_channels"]),
                   int(values["num_classes"]))
