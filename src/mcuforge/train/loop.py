"""The training loop: cosine-scheduled SGD/AdamW with label smoothing, exact resume, fixed seeds.

Reproducibility and exact resumption come from deriving every random choice from the run's seed and
its position instead of from a generator that runs on:

  * epoch e's sample order is ``randperm`` under a generator seeded from (seed, e);
  * step s of epoch e seeds the augmentation generator and torch's global generator (dropout,
    anything random inside the model) from (seed, e, s).

So the state of a run between two steps is only: the weights, the optimizer and scheduler states,
(epoch, step) and the epoch's running sums — all in the checkpoint. A run killed at any point and
resumed from its last checkpoint replays the missing steps bit for bit; with the same thread count
and `torch.use_deterministic_algorithms`, the final weights equal an uninterrupted run's exactly.
The epochs and steps themselves, checkpoints and SIGINT/SIGTERM (caught between steps: a checkpoint
of the exact position is written, then `KeyboardInterrupt` is raised) are `train.epochs.run_epochs`,
which the supernet's training shares; this module gives it the plain training step.

Hooks (for quantisation-aware training and callers that watch a run): ``on_epoch_start(epoch,
model)``, ``on_step_end(StepInfo)`` and ``on_epoch_end(EpochStats, model)``; any may be None.

What a step's loss is and how a model is scored is the run's `TrainTask`: classification
(`CLASSIFICATION`, cross-entropy and top-1 accuracy) unless another is given, e.g. detection
(`train.detect.detection_task`: the YOLO loss, mAP@0.5 in ``test_accuracy``). Resume, seeds,
schedules and checkpoints are the same for every task.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.dataset import ArrayDataset
from ..data.transforms import eval_batch, train_batch
from ..errors import McuforgeError
from .checkpoint import checkpoint_path, load_checkpoint, restore_rng_states, save_checkpoint
from .config import EpochStats, TrainConfig, TrainResult, resume_mismatches
from .epochs import LoopCallbacks, LoopPosition, TrainingStopped, run_epochs
from .progress import ProgressBar

__all__ = ["CLASSIFICATION", "StepInfo", "TrainHooks", "TrainTask", "TrainingStopped", "classification_loss",
           "cosine_factor", "derived_seed", "epoch_order", "evaluate", "make_optimizer", "make_scheduler", "train"]


@dataclass(frozen=True)
class StepInfo:
    """What ``on_step_end`` is told after every optimizer step."""

    epoch: int
    step_in_epoch: int
    global_step: int
    loss: float
    learning_rate: float


@dataclass
class TrainHooks:
    """Optional callbacks into the loop (see the module doc)."""

    on_epoch_start: Callable[[int, nn.Module], None] | None = None
    on_step_end: Callable[[StepInfo], None] | None = None
    on_epoch_end: Callable[[EpochStats, nn.Module], None] | None = None


@dataclass(frozen=True)
class TrainTask:
    """What a training run optimises and reports.

    ``loss(model, dataset, indices, config, generator, hflip)`` builds the batch of ``indices``
    (augmented with ``generator``), runs the model and returns (loss tensor, correct predictions,
    batch size); ``evaluate(model, dataset, config)`` returns (mean loss, score) on a held-out set;
    ``metric`` names the score in the epoch lines; ``train_metric`` says whether the training
    side has one (its correct / seen)."""

    loss: Callable[..., tuple[torch.Tensor, int, int]]
    evaluate: Callable[[nn.Module, Any, TrainConfig], tuple[float, float]]
    metric: str = "acc"
    train_metric: bool = True


def derived_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (numpy's SeedSequence mixing)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint64)[0] >> 1)


def epoch_order(seed: int, epoch: int, size: int) -> torch.Tensor:
    """The sample order of ``epoch``: a permutation that only depends on (seed, epoch)."""
    generator = torch.Generator().manual_seed(derived_seed(seed, epoch, 0x5A3D))
    return torch.randperm(size, generator=generator)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov momentum) or AdamW; no weight decay on biases and norm weights (1-D tensors)."""
    decayed = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    plain = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decayed, "weight_decay": config.decay}, {"params": plain, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.learning_rate, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.learning_rate)


def cosine_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """The learning-rate multiplier at ``step``: linear warm-up, then cosine from 1 to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """A per-step LambdaLR with warm-up and cosine decay over the whole run."""
    total = config.epochs * steps_per_epoch
    warmup = min(total, max(1, round(config.warmup_epochs * steps_per_epoch))) if config.warmup_epochs > 0 else 0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_factor(step, total, warmup))


@torch.no_grad()
def evaluate(model: nn.Module, dataset: ArrayDataset, config: TrainConfig) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on ``dataset``, in eval mode."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for first in range(0, len(dataset), config.eval_batch_size):
        images, labels = dataset.batch(np.arange(first, min(first + config.eval_batch_size, len(dataset))))
        x = eval_batch(images, config.resolution, config.in_channels, config.input_encoding)
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = model(x)
        total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += int((logits.argmax(dim=1) == labels).sum())
    model.train(was_training)
    return total_loss / max(1, len(dataset)), correct / max(1, len(dataset))


def classification_loss(model: nn.Module, dataset: ArrayDataset, indices: torch.Tensor, config: TrainConfig,
                        generator: torch.Generator, hflip: bool) -> tuple[torch.Tensor, int, int]:
    """Cross-entropy (label smoothing) of one augmented batch, its correct top-1 predictions, its size.
    With ``config.augment`` the data set augments its own samples first (`training_batch`, e.g. the
    PCM of spoken clips), seeded by the step's seed (``generator``'s)."""
    if config.augment:
        images, labels = dataset.training_batch(indices.numpy(), generator.initial_seed())
    else:
        images, labels = dataset.batch(indices.numpy())
    x = train_batch(images, config.resolution, config.in_channels, generator, config.augment, hflip,
                    config.random_crop, config.input_encoding)
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    logits = model(x)
    loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
    correct = int((logits.detach().argmax(dim=1) == labels).sum())
    return loss, correct, int(labels.shape[0])


CLASSIFICATION = TrainTask(loss=classification_loss, evaluate=evaluate)


@contextmanager
def _deterministic_torch(threads: int | None) -> Iterator[None]:
    """Deterministic kernels and a fixed thread count for the run; restored afterwards."""
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    old_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic, warn_only=old_warn_only)


def train(
    model: nn.Module,
    dataset: ArrayDataset,
    config: TrainConfig,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    eval_dataset: ArrayDataset | None = None,
    hooks: TrainHooks | None = None,
    metadata: dict[str, Any] | None = None,
    task: TrainTask = CLASSIFICATION,
) -> TrainResult:
    """Train ``model`` (NCHW float input, logits out) in place; see the module doc.

    ``checkpoint_dir`` gets ``checkpoint.pt`` after every epoch (and every
    ``config.checkpoint_every_steps`` steps); with ``resume`` the run continues from it, and the
    settings that shape the result must match the checkpoint's. Starting afresh where a checkpoint
    exists is refused (delete it first) so that no earlier run is lost by accident. ``metadata`` is
    stored in the checkpoint (e.g. the model spec) and returned in ``TrainResult.extra``.
    ``task`` says what the loss and the evaluation are (classification by default).
    """
    hooks = hooks or TrainHooks()
    if len(dataset) == 0:
        raise McuforgeError(f"{dataset.source}: the training split is empty")
    hflip = dataset.hflip_ok if config.hflip is None else config.hflip
    steps_per_epoch = math.ceil(len(dataset) / config.batch_size)
    path = checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
    if path is not None and path.exists() and not resume:
        raise McuforgeError(f"{path} exists: resume it (--resume) or remove it to start a new run")
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch)
    history: list[EpochStats] = []
    fingerprint = dataset.fingerprint()
    position = LoopPosition()
    if resume:
        if path is None or not path.exists():
            raise McuforgeError(f"nothing to resume: no checkpoint in {checkpoint_dir}")
        state = load_checkpoint(path)
        differing = resume_mismatches(state["config"], config)
        if differing:
            raise McuforgeError(f"{path}: settings differ from the checkpoint's ({'; '.join(differing)})")
        if state.get("dataset_fingerprint", fingerprint) != fingerprint:
            raise McuforgeError(f"{path}: the training data differ from the checkpoint's ({dataset.source})")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        position = LoopPosition(state["epoch"], state["step_in_epoch"], dict(state["epoch_sums"]))
        history = [EpochStats(**entry) for entry in state["history"]]
        restore_rng_states(state["rng"])
    order = torch.empty(0, dtype=torch.int64)  # the current epoch's sample order

    def start_epoch(epoch: int) -> None:
        nonlocal order
        order = epoch_order(config.seed, epoch, len(dataset))
        model.train()
        if hooks.on_epoch_start is not None:
            hooks.on_epoch_start(epoch, model)

    def step(epoch: int, step_in_epoch: int) -> tuple[float, int, int]:
        result = _train_step(model, optimizer, dataset, order, config, epoch, step_in_epoch, hflip, task)
        scheduler.step()
        return result

    def after_step(epoch: int, step_done: int, loss: float) -> None:
        if hooks.on_step_end is not None:
            hooks.on_step_end(StepInfo(epoch, step_done, epoch * steps_per_epoch + step_done, loss,
                                       optimizer.param_groups[0]["lr"]))

    def end_epoch(at: LoopPosition, seconds: float, stopped: bool) -> EpochStats:
        test_loss, test_accuracy = (task.evaluate(model, eval_dataset, config) if eval_dataset is not None
                                    else (None, None))
        stats = EpochStats(epoch=at.epoch + 1, train_loss=at.sums["loss"] / at.sums["seen"],
                           train_accuracy=at.sums["correct"] / at.sums["seen"], test_loss=test_loss,
                           test_accuracy=test_accuracy, seconds=seconds,
                           learning_rate=optimizer.param_groups[0]["lr"])
        history.append(stats)
        ProgressBar.write(_epoch_line(stats, config.epochs, task), enabled=config.progress)
        return stats

    def save(at: LoopPosition, seconds_in_epoch: float) -> None:
        if path is None:
            return
        save_checkpoint(path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": at.epoch, "step_in_epoch": at.step,
            "global_step": at.epoch * steps_per_epoch + at.step, "sampler_order": order if at.step else None,
            "epoch_sums": {**at.sums, "seconds": at.sums["seconds"] + seconds_in_epoch},
            "history": [asdict(h) for h in history],
            "config": config.to_dict(), "metadata": dict(metadata or {}),
            "dataset_fingerprint": fingerprint,
        })

    def after_epoch(stats: EpochStats) -> None:
        if hooks.on_epoch_end is not None:
            hooks.on_epoch_end(stats, model)

    started = time.perf_counter()
    callbacks = LoopCallbacks(step=step, start_epoch=start_epoch, end_epoch=end_epoch, save=save,
                              after_step=after_step, after_epoch=after_epoch)
    with _deterministic_torch(config.threads):
        run_epochs(config.epochs, steps_per_epoch, position, callbacks, progress=config.progress,
                   checkpoint_every=config.checkpoint_every_steps, stop_after_steps=config.stop_after_steps)
    return TrainResult(
        history=tuple(history),
        checkpoint_path=str(path) if path is not None else None,
        seconds=time.perf_counter() - started,
        extra=dict(metadata or {}),
    )


def _train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, dataset: ArrayDataset, order: torch.Tensor,
    config: TrainConfig, epoch: int, step: int, hflip: bool, task: TrainTask = CLASSIFICATION,
) -> tuple[float, int, int]:
    """One optimizer step on batch ``step`` of ``order``: (loss, correct predictions, batch size)."""
    indices = order[step * config.batch_size : (step + 1) * config.batch_size]
    step_seed = derived_seed(config.seed, epoch, step)
    torch.manual_seed(step_seed)
    generator = torch.Generator().manual_seed(step_seed)
    loss, correct, count = task.loss(model, dataset, indices, config, generator, hflip)
    if not torch.isfinite(loss):
        raise McuforgeError(f"training diverged at epoch {epoch + 1}, step {step + 1} (loss {loss.item()}); "
                            "lower the learning rate")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.item()), correct, count


def _epoch_line(stats: EpochStats, epochs: int, task: TrainTask = CLASSIFICATION) -> str:
    test = "" if stats.test_accuracy is None else \
        f"  test loss {stats.test_loss:.4f}  test {task.metric} {stats.test_accuracy:.2%}"
    train_metric = f"  train {task.metric} {stats.train_accuracy:.2%}" if task.train_metric else ""
    return f"epoch {stats.epoch}/{epochs}  train loss {stats.train_loss:.4f}{train_metric}{test}  {stats.seconds:.1f} s"
