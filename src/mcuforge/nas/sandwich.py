"""Supernet training with the sandwich rule (BigNAS / once-for-all), DDP-ready.

Every step runs four subnets on the same batch and accumulates their gradients before one optimizer
step: the largest (trained on the labels, with label smoothing), the smallest and ``num_random``
random ones (trained by in-place distillation on the largest one's soft predictions when ``distill``
is on, else on the labels). The random subnets of a step are drawn from a generator seeded by (seed,
epoch, step), so every process of a distributed run trains the same subnets, and a resumed run
replays the same ones.

Distributed: under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` > 1 in the environment) the
process group is initialised from the environment with the gloo backend (CPU), the model is wrapped in
`DistributedDataParallel` (``find_unused_parameters``: a subnet leaves blocks unused), and each process
reads its share of every epoch through a `DistributedSampler`; the per-process batch is
``batch_size / world_size`` so the global batch and the learning-rate schedule do not change with N.
Each of the four backward passes all-reduces the accumulated gradients, which averages every pass's
contribution across processes. Only rank 0 writes checkpoints and prints progress.

With ``time_limit_s`` (a search under ``--time-budget``) training stops when that many seconds are
spent, wherever it is, and the learning-rate cosine follows the clock when the clock is ahead of the
steps (`_Clock`), so the deadline holds on a busy machine too.

The epochs and steps, mid-epoch checkpoints and SIGINT/SIGTERM handling are the training loop's
(`train.epochs.run_epochs`, shared with `train.loop.train`): this module gives it the sandwich step,
the deadline and the checkpoint. Checkpoints (``supernet.pt`` in the run folder, atomic) hold the
weights, optimizer and scheduler, the position (epoch, step, the epoch's running sums), the history
and the config; ``resume`` continues from the exact step.
"""

from __future__ import annotations

import math
import os
import random
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from ..data.dataset import ArrayDataset
from ..data.transforms import train_batch
from ..errors import McuforgeError
from ..train.checkpoint import atomic_torch_save
from ..train.epochs import LoopCallbacks, LoopPosition, TrainingStopped, fresh_sums, run_epochs
from ..train.loop import cosine_factor, derived_seed
from ..train.progress import ProgressBar
from .space import SearchSpace
from .supernet import SuperNet

CHECKPOINT_NAME = "supernet.pt"
FORMAT = "mcuforge-supernet-checkpoint"


@dataclass(frozen=True)
class SupernetTrainConfig:
    """Settings of a supernet training run (global batch; SGD with Nesterov momentum, cosine LR)."""

    epochs: int = 5
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-5
    momentum: float = 0.9
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    num_random: int = 2
    distill: bool = True
    augment: bool = True
    train_samples: int | None = None
    seed: int = 0
    threads: int | None = None
    checkpoint_every_steps: int | None = 50
    stop_after_steps: int | None = None
    time_limit_s: float | None = None
    progress: bool = True

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "SupernetTrainConfig":
        """Inverse of `to_dict` (unknown keys ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# Fields that may change between a run and its resumption.
_RESUME_FREE = {"threads", "checkpoint_every_steps", "stop_after_steps", "time_limit_s", "progress"}


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly single-process) run."""

    rank: int
    world_size: int

    @property
    def distributed(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints and prints."""
        return self.rank == 0


def init_distributed() -> DistContext:
    """Join the torchrun process group (gloo) when ``WORLD_SIZE`` > 1, else a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(0, 1)
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return DistContext(dist.get_rank(), dist.get_world_size())


def supernet_checkpoint_path(run_dir: str | Path) -> Path:
    """Where the supernet checkpoint of a run folder is."""
    return Path(run_dir) / CHECKPOINT_NAME


def load_supernet(path: str | Path) -> tuple[SuperNet, dict]:
    """The supernet (weights loaded) and the whole checkpoint state from ``path``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise McuforgeError(f"{path}: cannot read supernet checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise McuforgeError(f"{path}: not an mcuforge supernet checkpoint")
    net = SuperNet(SearchSpace.from_dict(state["space"]))
    net.load_state_dict(state["model"])
    return net, state


def train_subset(dataset: ArrayDataset, samples: int | None, seed: int) -> ArrayDataset:
    """The first ``samples`` of a seeded permutation of ``dataset`` (all of it when None)."""
    if samples is None or samples >= len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(derived_seed(seed, 0x5B5E)))
    return dataset.subset(order[:samples].numpy())


def _sandwich_losses(model, supernet: SuperNet, x, labels, archs, config: SupernetTrainConfig) -> tuple[float, int]:
    """Forward/backward the subnets of one step; (largest subnet's loss, its correct predictions)."""
    teacher = None
    first_loss, correct = 0.0, 0
    for index, arch in enumerate(archs):
        supernet.set_arch(arch)
        logits = model(x)
        if index == 0 or not config.distill:
            loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
        else:
            loss = torch.sum(-F.softmax(teacher, dim=1) * F.log_softmax(logits, dim=1), dim=1).mean()
        if index == 0:
            teacher = logits.detach()
            first_loss, correct = float(loss.item()), int((teacher.argmax(1) == labels).sum())
            if not math.isfinite(first_loss):
                raise McuforgeError(f"supernet training diverged (loss {first_loss}); lower the learning rate")
        loss.backward()
    return first_loss, correct


class _Clock:
    """Seconds spent training (earlier sessions of a resumed run included) against an optional time
    limit. The learning-rate schedule follows whichever is further along, the steps or the time:
    without a limit, or when the steps finish first, it is the usual per-step schedule; when time is
    short, the cosine reaches zero as the limit does, so a run cut by its deadline still ends with a
    decayed learning rate. Under DDP the processes share the largest elapsed time (one all-reduce per
    step), so they follow the same schedule and stop at the same step."""

    def __init__(self, limit_s: float | None, spent_s: float, distributed: bool):
        self.limit_s, self.spent_s, self.distributed = limit_s, spent_s, distributed
        self.started = time.perf_counter()
        self.elapsed_s = spent_s

    def tick(self) -> None:
        """Update the elapsed time (agreed on by every process)."""
        elapsed = self.spent_s + time.perf_counter() - self.started
        if self.distributed and self.limit_s is not None:
            shared = torch.tensor([elapsed], dtype=torch.float64)
            dist.all_reduce(shared, op=dist.ReduceOp.MAX)
            elapsed = float(shared.item())
        self.elapsed_s = elapsed

    @property
    def expired(self) -> bool:
        """Whether the time limit is reached."""
        return self.limit_s is not None and self.elapsed_s >= self.limit_s

    def progress_step(self, step: int, total: int) -> int:
        """The schedule position: ``step``, or further along when time runs short."""
        if self.limit_s is None:
            return step
        fraction = 1.0 if self.limit_s <= 0 else min(1.0, self.elapsed_s / self.limit_s)
        return max(step, int(total * fraction))


def _optimizer(supernet: SuperNet, config: SupernetTrainConfig, steps_per_epoch: int, clock: _Clock):
    """SGD with Nesterov momentum (no weight decay on 1-D tensors) and a per-step warm-up + cosine
    (time-aware, `_Clock`)."""
    decayed = [p for p in supernet.parameters() if p.ndim > 1]
    plain = [p for p in supernet.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": decayed, "weight_decay": config.weight_decay},
                                 {"params": plain, "weight_decay": 0.0}],
                                lr=config.lr, momentum=config.momentum, nesterov=True)
    total = config.epochs * steps_per_epoch
    warmup = max(1, round(config.warmup_epochs * steps_per_epoch)) if config.warmup_epochs > 0 else 0
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: cosine_factor(clock.progress_step(s, total), total, warmup))
    return optimizer, scheduler


def _restore(path: Path, config: SupernetTrainConfig, supernet: SuperNet, optimizer, scheduler
             ) -> tuple[LoopPosition, list[dict], float]:
    """Load a checkpoint into the run; (position, history, seconds spent) to continue from."""
    _, state = load_supernet(path)
    saved = {k: v for k, v in state["train_config"].items() if k not in _RESUME_FREE}
    now = {k: v for k, v in config.to_dict().items() if k not in _RESUME_FREE}
    if saved != now:
        raise McuforgeError(f"{path}: training settings differ from the checkpoint's")
    supernet.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    position = LoopPosition(state["epoch"], state["step"], dict(state.get("epoch_sums") or fresh_sums()))
    return position, list(state["history"]), float(state.get("seconds_spent", 0.0))


def train_supernet(supernet: SuperNet, dataset: ArrayDataset, config: SupernetTrainConfig,
                   run_dir: str | Path | None = None, resume: bool = False,
                   on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``supernet`` in place with the sandwich rule (module doc); returns per-epoch figures.

    The epochs and steps are the training loop's (`train.epochs.run_epochs`); this function gives it
    the sandwich step, the time-aware schedule's deadline and the supernet checkpoint."""
    ctx = init_distributed()
    path = supernet_checkpoint_path(run_dir) if run_dir is not None else None
    data = train_subset(dataset, config.train_samples, config.seed)
    local_batch = max(1, config.batch_size // ctx.world_size)
    sampler = DistributedSampler(range(len(data)), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=config.seed, drop_last=True)
    steps_per_epoch = max(1, len(sampler) // local_batch)
    clock = _Clock(config.time_limit_s, 0.0, ctx.distributed)
    optimizer, scheduler = _optimizer(supernet, config, steps_per_epoch, clock)
    position, history = LoopPosition(), []
    if resume and path is not None and path.exists():
        position, history, spent = _restore(path, config, supernet, optimizer, scheduler)
        clock.spent_s = clock.elapsed_s = spent
    elif path is not None and path.exists():
        raise McuforgeError(f"{path} exists: resume it or remove it to start a new supernet")
    model = supernet
    if ctx.distributed:
        # Sliced and transformed depthwise kernels give gradients in another memory layout than DDP's
        # buckets; DDP copies them (correct, a little slower) and would warn at every step.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        model = torch.nn.parallel.DistributedDataParallel(supernet, find_unused_parameters=True)
    indices = torch.empty(0, dtype=torch.int64)  # this process's share of the current epoch, in order

    def start_epoch(epoch: int) -> None:
        nonlocal indices
        sampler.set_epoch(epoch)
        indices = torch.tensor(list(iter(sampler)), dtype=torch.int64)
        supernet.train()

    def sandwich_step(epoch: int, step: int) -> tuple[float, int, int]:
        batch = indices[step * local_batch:(step + 1) * local_batch].numpy()
        images, labels = data.batch(batch)
        step_seed = derived_seed(config.seed, epoch, step)
        generator = torch.Generator().manual_seed(derived_seed(step_seed, ctx.rank))
        x = train_batch(images, supernet.space.resolution, supernet.space.in_channels,
                        generator, config.augment, data.hflip_ok)
        rng = random.Random(step_seed)
        archs = [supernet.space.largest(), supernet.space.smallest()] + \
            [supernet.space.sample(rng) for _ in range(config.num_random)]
        optimizer.zero_grad(set_to_none=True)
        loss, correct = _sandwich_losses(model, supernet, x, labels, archs, config)
        optimizer.step()
        clock.tick()
        scheduler.step()
        return loss, correct, len(batch)

    def end_epoch(at: LoopPosition, seconds: float, stopped_by_deadline: bool) -> dict:
        seen = max(1, at.sums["seen"])
        record = {"epoch": at.epoch + 1, "train_loss_largest": at.sums["loss"] / seen,
                  "train_accuracy_largest": at.sums["correct"] / seen, "seconds": seconds, "steps": at.step,
                  "world_size": ctx.world_size}
        if stopped_by_deadline:  # the time limit ends the training here (an incomplete epoch counts)
            record["stopped_by_time_limit"] = True
        elif ctx.is_main:
            ProgressBar.write(f"supernet epoch {record['epoch']}/{config.epochs}  largest-subnet train loss "
                              f"{record['train_loss_largest']:.4f} acc {record['train_accuracy_largest']:.2%}  "
                              f"{record['seconds']:.0f} s", config.progress)
        history.append(record)
        return record

    def save(at: LoopPosition, seconds_in_epoch: float) -> None:
        if path is not None and ctx.is_main:
            atomic_torch_save({"format": FORMAT, "space": supernet.space.to_dict(), "model": supernet.state_dict(),
                               "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                               "epoch": at.epoch, "step": at.step, "history": history,
                               "epoch_sums": {**at.sums, "seconds": at.sums["seconds"] + seconds_in_epoch},
                               "train_config": config.to_dict(), "world_size": ctx.world_size,
                               "seconds_spent": clock.elapsed_s}, path)

    callbacks = LoopCallbacks(step=sandwich_step, start_epoch=start_epoch, end_epoch=end_epoch, save=save,
                              after_epoch=on_epoch, deadline_passed=lambda: clock.expired)
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        run_epochs(config.epochs, steps_per_epoch, position, callbacks, description="supernet epoch",
                   progress=config.progress and ctx.is_main, checkpoint_every=config.checkpoint_every_steps,
                   stop_after_steps=config.stop_after_steps, save_on_stop=True)
    except TrainingStopped:
        return history
    finally:
        torch.set_num_threads(old_threads)
    supernet.set_max_net()
    return history
