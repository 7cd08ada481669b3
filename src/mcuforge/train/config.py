"""Training settings and results, as plain frozen dataclasses (saved inside every checkpoint)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import McuforgeError

OPTIMIZERS = ("sgd", "adamw")

# Defaults per optimizer: (learning rate at batch size 128, weight decay).
_OPTIMIZER_DEFAULTS = {"sgd": (0.1, 5e-5), "adamw": (3e-3, 0.05)}

# Fields that may differ between a run and its resumption without changing the result.
RESUME_FREE_FIELDS = frozenset({"progress", "threads", "stop_after_steps", "checkpoint_every_steps", "eval_batch_size"})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's result.

    ``resolution`` and ``in_channels`` describe the model's input (the data are resized and their
    channels adapted to it). ``lr`` and ``weight_decay`` default per optimizer (SGD: 0.1 scaled by
    batch_size / 128 and 5e-5; AdamW: 3e-3 scaled the same and 0.05). The learning rate warms up
    linearly over ``warmup_epochs`` and then follows a cosine down to zero at the last step.
    ``stop_after_steps`` ends the run abruptly after that many optimizer steps in this process (as if
    it were killed; nothing is saved), for tests. ``checkpoint_every_steps`` adds mid-epoch
    checkpoints to the one written at the end of every epoch. ``augment`` switches all augmentation
    on or off; ``random_crop`` and ``hflip`` (None: where the data set allows it) each part of it.
    The random crop is off by default: on 10-epoch runs it costs accuracy (Fashion-MNIST,
    MobileNetV2-w0.35 r32: 89.4 % with crop + flip, 91.0 % flip only, 91.2 % with no augmentation);
    turn it on for longer runs on natural images (CIFAR). ``input_encoding`` is how samples become
    model input (`data.transforms`): "pixels" for images, "int8-features" for an audio front end's
    features, whose augmentation is the data set's own (on the PCM, `ArrayDataset.training_batch`).
    """

    resolution: int | tuple[int, int]
    in_channels: int
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    augment: bool = True
    random_crop: bool = False
    hflip: bool | None = None
    seed: int = 0
    channels_last: bool = True
    threads: int | None = None
    checkpoint_every_steps: int | None = None
    stop_after_steps: int | None = None
    eval_batch_size: int = 500
    progress: bool = True
    input_encoding: str = "pixels"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise McuforgeError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise McuforgeError("epochs and batch size must be at least 1")
        if self.in_channels not in (1, 3):
            raise McuforgeError(f"models with {self.in_channels} input channels are not supported (1 or 3)")
        if not 0 <= self.label_smoothing < 1:
            raise McuforgeError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.input_encoding not in ("pixels", "int8-features"):
            raise McuforgeError(f"unknown input encoding {self.input_encoding!r} (pixels, int8-features)")
        if isinstance(self.resolution, list):
            object.__setattr__(self, "resolution", tuple(self.resolution))

    @property
    def learning_rate(self) -> float:
        """The peak learning rate actually used."""
        if self.lr is not None:
            return self.lr
        return _OPTIMIZER_DEFAULTS[self.optimizer][0] * self.batch_size / 128

    @property
    def decay(self) -> float:
        """The weight decay actually used."""
        return self.weight_decay if self.weight_decay is not None else _OPTIMIZER_DEFAULTS[self.optimizer][1]

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and torch.save-friendly dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """The config saved by `to_dict` (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def resume_mismatches(saved: dict[str, Any], current: TrainConfig) -> list[str]:
    """The settings that differ between a checkpoint's config and the current one (and matter)."""
    now = current.to_dict()
    differing = []
    for key, value in now.items():
        if key in RESUME_FREE_FIELDS or key not in saved:
            continue
        old = saved[key]
        if isinstance(old, list):
            old = tuple(old)
        if old != value:
            differing.append(f"{key}: checkpoint {old!r}, now {value!r}")
    return differing


@dataclass(frozen=True)
class EpochStats:
    """Figures of one finished epoch."""

    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    seconds: float
    learning_rate: float


@dataclass(frozen=True)
class TrainResult:
    """What `train` returns: per-epoch figures and where the last checkpoint is."""

    history: tuple[EpochStats, ...]
    checkpoint_path: str | None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> EpochStats:
        """The last epoch's figures."""
        return self.history[-1]

    @property
    def test_accuracy(self) -> float | None:
        """The last epoch's test accuracy (None when no test set was given)."""
        return self.final.test_accuracy if self.history else None
