"""Two checks on the search's winner before and during its final training.

`verify_on_device_build` builds the best candidates' generated C (inherited weights, quantised) and
keeps the first whose measured SRAM and Flash fit: the search's estimates are models of the code
generator, and this checks them on the real build before any training is spent on the winner.
`final_training_samples` re-plans the winner's training images under a time budget from the step
cost measured just before the training starts.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from ..data.dataset import ArrayDataset
from ..errors import DoesNotFitError, McuforgeError
from .fitness import SubnetScorer
from .settings import RESERVE_SHARE, SearchSettings
from .space import ArchConfig, SearchSpace


def verify_on_device_build(candidates: list[ArchConfig], space: SearchSpace, scorer: SubnetScorer,
                           train_part: ArrayDataset, settings: SearchSettings, core: str,
                           log: Callable[[str], None], attempts: int = 4) -> tuple[ArchConfig, list[dict]]:
    """The first of ``candidates`` (best first) whose generated C, built for ``core`` with the subnet's
    inherited weights quantised, measures within the SRAM and Flash limits; and the measured attempts."""
    from ..codegen.project import compile_model
    from ..quant.ptq import quantize_spec_net
    from .deploy import calibration_batches

    tried: list[dict] = []
    for arch in candidates[:attempts]:
        spec = space.spec(arch)
        graph = quantize_spec_net(scorer.subnet(arch).eval(), calibration_batches(train_part, spec, 200, settings.seed))
        with tempfile.TemporaryDirectory(prefix="mcuforge-verify-") as folder:
            try:
                report = compile_model(graph, Path(folder) / "c", core, settings.sram_bytes)
                sram, flash = report["measured_sram_bytes"], report["flash_bytes"]
            except DoesNotFitError as exc:
                sram, flash = exc.needed_bytes, None
        fits = sram <= settings.sram_bytes and flash is not None and flash <= settings.flash_bytes
        tried.append({"arch": arch.key(), "measured_sram_bytes": sram, "flash_bytes": flash, "fits": fits})
        log(f"  device build of candidate {len(tried)}: measured SRAM {sram:,} B, Flash "
            f"{'n/a' if flash is None else f'{flash:,} B'} -> {'fits' if fits else 'does not fit'}")
        if fits:
            return arch, tried
    raise McuforgeError(f"none of the {len(tried)} best candidates fits {settings.sram_bytes:,} B SRAM / "
                        f"{settings.flash_bytes:,} B Flash once built (the estimates are off for this code "
                        "generator); lower --flash/--sram in the search or raise the limits")


def final_training_samples(settings: SearchSettings, model: torch.nn.Module, data: ArrayDataset, resolution: int,
                           in_channels: int, elapsed_s: float, log: Callable[[str], None]) -> int | None:
    """Under a time budget: the planned final-training samples, fewer when the time left (less the
    last tenth of the budget, kept for quantisation, scoring and the build) would not train them
    all at the training-step cost measured now on ``model``. The planned amount (None: all)
    without a budget."""
    planned = settings.finetune_train_samples
    if settings.time_budget_s is None:
        return planned
    from ..data.transforms import train_batch

    images, labels = data.batch(list(range(min(settings.batch_size, len(data)))))
    x = train_batch(images, resolution, in_channels, torch.Generator().manual_seed(0))
    probe = copy.deepcopy(model).train()
    seconds = []
    for _ in range(2):  # the first step warms up
        started = time.perf_counter()
        torch.nn.functional.cross_entropy(probe(x), labels).backward()
        seconds.append(time.perf_counter() - started)
    left = settings.time_budget_s * (1 - RESERVE_SHARE) - elapsed_s
    affordable = int(max(0.0, left) / max(seconds[-1], 1e-6) * settings.batch_size / settings.finetune_epochs)
    samples = max(settings.batch_size, min(planned or len(data), affordable))
    if planned is None or samples < planned:
        log(f"  time left {left / 60:.1f} min: the final training uses {samples} images "
            f"({seconds[-1]:.2f} s per step now)")
    return samples
