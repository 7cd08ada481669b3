"""TinyNAS stage 1: search-space optimisation (MCUNet, Lin et al. 2020, section 3.1).

For every (width multiplier, resolution) pair the space is sampled ``m`` times (default 1000); the
samples that satisfy the constraints (SRAM with the best patch schedule when ``patch`` is on, Flash,
optionally latency) are kept, and the spaces are ranked by the FLOPs (MACs) distribution of their
satisfying samples: "more FLOPs under the same memory, better model". The score is the mean MACs of a
satisfying sample; a space where fewer than ``min_fit_fraction`` of the samples fit is not ranked
(its networks are too constrained for the supernet's sampled subnets to be usable).

The samples of every space come from one generator seeded by (seed, width, resolution), so the result
does not depend on the order or subset of spaces profiled. Layer-based figures are closed-form (well
under a millisecond per sample, `fast_profile`); with ``patch`` on, the patch planner is asked only for
samples whose layer-based peak is over the limit, at most ``patch_samples`` per space (the fraction
rescued is extrapolated to the rest, and the report says so).
"""

from __future__ import annotations

import random
import statistics
import time
import zlib
from dataclasses import dataclass
from typing import Callable, Iterable

from ..errors import McuforgeError
from .constraints import Constraints, measure
from .latency import LatencyModel
from .space import SearchSpace


@dataclass(frozen=True)
class SpaceStats:
    """Profile of one space: how many samples fit and the MACs of those that do."""

    space: SearchSpace
    samples: int
    fitting_macs: tuple[int, ...]
    fit_fraction: float
    patched_fraction: float
    seconds: float

    @property
    def mean_macs(self) -> float:
        """Mean MACs of a satisfying sample (0 when none fits)."""
        return statistics.fmean(self.fitting_macs) if self.fitting_macs else 0.0

    def to_dict(self) -> dict:
        """JSON-ready summary (not the raw MACs list)."""
        macs = sorted(self.fitting_macs)
        return {"space": self.space.name, **self.space.to_dict(), "samples": self.samples,
                "fit_fraction": self.fit_fraction, "patched_fraction": self.patched_fraction,
                "mean_macs": self.mean_macs,
                "median_macs": macs[len(macs) // 2] if macs else 0,
                "max_macs": macs[-1] if macs else 0, "seconds": self.seconds}


def space_seed(seed: int, space: SearchSpace) -> int:
    """The sampling seed of one space (independent of which other spaces are profiled)."""
    return zlib.crc32(f"{seed}:{space.name}".encode())


def profile_space(space: SearchSpace, constraints: Constraints, samples: int = 1000, seed: int = 0,
                  latency_model: LatencyModel | None = None, target=None,
                  patch_samples: int = 12) -> SpaceStats:
    """Sample ``space`` and keep the MACs of the samples that meet ``constraints`` (module doc)."""
    started = time.perf_counter()
    rng = random.Random(space_seed(seed, space))
    fitting: list[int] = []
    layer_misfits: list = []
    for _ in range(samples):
        spec = space.spec(space.sample(rng))
        result = measure(spec, constraints, latency_model, target, need_patch_peak=False)
        if result.fits:
            fitting.append(result.macs)
        elif constraints.patch and result.reason.startswith("sram") and ";" not in result.reason:
            layer_misfits.append((spec, result.macs))
    patched_fraction = 0.0
    if layer_misfits:
        tried = layer_misfits[:patch_samples]
        rescued = [macs for spec, macs in tried
                   if measure(spec, constraints, latency_model, target).fits]
        # Extrapolate the rescued share of the tried misfits to all misfits, keeping their MACs
        # distribution (repeat the rescued samples' MACs proportionally).
        share = len(rescued) / len(tried)
        extra = round(share * len(layer_misfits))
        if rescued:
            fitting.extend(rescued[i % len(rescued)] for i in range(extra))
        patched_fraction = extra / samples
    return SpaceStats(space, samples, tuple(fitting), len(fitting) / samples, patched_fraction,
                      time.perf_counter() - started)


def rank_spaces(spaces: Iterable[SearchSpace], constraints: Constraints, samples: int = 1000, seed: int = 0,
                min_fit_fraction: float = 0.05, latency_model: LatencyModel | None = None, target=None,
                on_space: Callable[[SpaceStats], None] | None = None, patch_samples: int = 12) -> list[SpaceStats]:
    """Profile every space and return them best first (ranked spaces by mean satisfying MACs, then the
    unranked ones by fit fraction). Raises `McuforgeError` when no space has a satisfying sample."""
    results = []
    for space in spaces:
        stats = profile_space(space, constraints, samples, seed, latency_model, target, patch_samples)
        results.append(stats)
        if on_space is not None:
            on_space(stats)
    if not any(stats.fitting_macs for stats in results):
        raise McuforgeError(
            f"no sampled network fits {constraints.sram_bytes / 1024:.0f} kB SRAM / "
            f"{constraints.flash_bytes / 1024:.0f} kB Flash in any space; raise the limits, lower the "
            "resolutions/widths, or use --patch")
    ranked = [s for s in results if s.fit_fraction >= min_fit_fraction and s.fitting_macs]
    rest = [s for s in results if s not in ranked]
    ranked.sort(key=lambda s: -s.mean_macs)
    rest.sort(key=lambda s: (-s.fit_fraction, -s.mean_macs))
    return ranked + rest


def plot_cdfs(results: list[SpaceStats], path, title: str, top: int = 8) -> None:
    """The FLOPs CDFs of the satisfying samples of the ``top`` best spaces (MCUNet Figure 3)."""
    from ..report.plots import save_figure
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2))
    for stats in [s for s in results if s.fitting_macs][:top]:
        macs = sorted(m / 1e6 for m in stats.fitting_macs)
        fractions = [(i + 1) / len(macs) for i in range(len(macs))]
        axes.step(macs, fractions, where="post",
                  label=f"{stats.space.name}  mean {stats.mean_macs / 1e6:.1f}M  fit {stats.fit_fraction:.0%}")
    axes.set_xlabel("MMACs of satisfying samples")
    axes.set_ylabel("cumulative fraction")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    save_figure(figure, path)
