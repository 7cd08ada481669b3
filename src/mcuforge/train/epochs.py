"""The epoch/step loop every training run of mcuforge goes through: the plain training loop
(`train.loop.train`) and the supernet's sandwich-rule training (`nas.sandwich.train_supernet`).

`run_epochs` owns what the two share: the position in the run (epoch, step within it, the epoch's
running loss/accuracy sums, `LoopPosition`), the per-epoch progress bar, mid-epoch checkpoints every
``checkpoint_every`` steps, ``stop_after_steps`` (tests of resumption), SIGINT/SIGTERM caught
between steps (a checkpoint of the exact position, then `KeyboardInterrupt`) and an optional
deadline that ends the run after the current step. What differs is given as callbacks
(`LoopCallbacks`): one whole optimizer step, the start and end of an epoch, and how a checkpoint is
written. The loop itself draws no random numbers and sets no torch state, so the callers' seeds
alone decide the result.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .progress import ProgressBar


class TrainingStopped(Exception):
    """Raised when ``stop_after_steps`` ends a run on purpose (tests of resumption)."""


def fresh_sums() -> dict[str, float]:
    """The running sums of an epoch that has not started: loss (summed per sample), correct
    predictions, samples seen, seconds spent in earlier sessions of a resumed run."""
    return {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}


@dataclass
class LoopPosition:
    """Where a run is: the epoch, the steps done in it, and its running sums (`fresh_sums`)."""

    epoch: int = 0
    step: int = 0
    sums: dict[str, float] = field(default_factory=fresh_sums)


@dataclass
class LoopCallbacks:
    """What a training run does inside `run_epochs`.

    ``step(epoch, step)`` runs one whole optimizer step (batch, forward, backward, optimizer and
    scheduler) and returns (loss, correct predictions, batch size). ``start_epoch(epoch)`` runs
    before an epoch's first step (also when a resumed run re-enters it); ``end_epoch(position,
    seconds, stopped_by_deadline)`` records a finished epoch and returns its record;
    ``save(position, seconds_in_epoch)`` writes a checkpoint (mid-epoch, or after the loop moved on
    to the next epoch); ``after_step(epoch, step, loss)`` and ``after_epoch(record)`` watch the run;
    ``deadline_passed()`` ends the run after the current step, its epoch counting as the last one.
    """

    step: Callable[[int, int], tuple[float, int, int]]
    start_epoch: Callable[[int], None]
    end_epoch: Callable[[LoopPosition, float, bool], Any]
    save: Callable[[LoopPosition, float], None]
    after_step: Callable[[int, int, float], None] | None = None
    after_epoch: Callable[[Any], None] | None = None
    deadline_passed: Callable[[], bool] | None = None


@contextmanager
def interrupt_flag() -> Iterator[dict[str, bool]]:
    """Turn SIGINT/SIGTERM into a flag checked between steps (main thread only)."""
    flag = {"raised": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame) -> None:
        flag["raised"] = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_epochs(epochs: int, steps_per_epoch: int, position: LoopPosition, callbacks: LoopCallbacks, *,
               description: str = "epoch", progress: bool = True, checkpoint_every: int | None = None,
               stop_after_steps: int | None = None, save_on_stop: bool = False) -> None:
    """Run from ``position`` (updated in place) to the end of epoch ``epochs`` (module doc).

    After every epoch the position moves to the next one (or past the last when the deadline ended
    it) and a checkpoint is saved. ``stop_after_steps`` raises `TrainingStopped` after that many
    steps of this call, after a checkpoint when ``save_on_stop``.
    """
    steps_this_call = 0
    with interrupt_flag() as interrupted:
        while position.epoch < epochs:
            callbacks.start_epoch(position.epoch)
            epoch_started = time.perf_counter()
            stopped_by_deadline = False
            bar = ProgressBar(total=steps_per_epoch, initial=position.step,
                              description=f"{description} {position.epoch + 1}/{epochs}", enabled=progress)
            with bar:
                while position.step < steps_per_epoch:
                    loss, correct, count = callbacks.step(position.epoch, position.step)
                    position.step += 1
                    steps_this_call += 1
                    sums = position.sums
                    sums["loss"] += loss * count
                    sums["correct"] += correct
                    sums["seen"] += count
                    bar.update(sums["loss"] / sums["seen"], sums["correct"] / sums["seen"])
                    if callbacks.after_step is not None:
                        callbacks.after_step(position.epoch, position.step, loss)
                    if stop_after_steps is not None and steps_this_call >= stop_after_steps:
                        if save_on_stop:
                            callbacks.save(position, time.perf_counter() - epoch_started)
                        raise TrainingStopped(f"stopped after {steps_this_call} steps "
                                              f"(epoch {position.epoch}, step {position.step})")
                    if interrupted["raised"]:
                        callbacks.save(position, time.perf_counter() - epoch_started)
                        raise KeyboardInterrupt
                    if callbacks.deadline_passed is not None and callbacks.deadline_passed():
                        stopped_by_deadline = True
                        break
                    if checkpoint_every and position.step % checkpoint_every == 0 and position.step < steps_per_epoch:
                        callbacks.save(position, time.perf_counter() - epoch_started)
            seconds = position.sums["seconds"] + time.perf_counter() - epoch_started
            record = callbacks.end_epoch(position, seconds, stopped_by_deadline)
            position.epoch = epochs if stopped_by_deadline else position.epoch + 1
            position.step, position.sums = 0, fresh_sums()
            callbacks.save(position, 0.0)
            if callbacks.after_epoch is not None:
                callbacks.after_epoch(record)
