"""Activation range observers and TFLite's rule from a real range to int8 (scale, zero point).

Post-training quantisation runs a few hundred calibration samples through the float model and
records, at every point where the int8 graph has an activation tensor, the range of values seen:

- `MinMaxObserver`: the smallest and largest value over all batches (TFLite's converter default);
- `PercentileObserver`: per batch, the ``q``-th and ``(100 - q)``-th percentiles (on a random
  subsample of at most ``max_samples`` values, for speed), averaged over batches; it clips rare
  outliers at the price of saturating them.

`activation_quant_params` turns a range into asymmetric int8 parameters exactly as TFLite's
``GetAsymmetricQuantizationParams`` does: the range is widened to contain 0, the scale is
``(max - min) / 255`` and the zero point is the nudged, rounded integer that makes real 0 exactly
representable (clamped to [-128, 127]).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..ir import QuantParams

QMIN = -128
QMAX = 127
# The narrowest real range an activation may get: a tensor that is 0 everywhere still needs a
# positive scale for the requantisation multipliers.
MIN_RANGE = 1e-6


class MinMaxObserver:
    """Running minimum and maximum of every value observed."""

    def __init__(self) -> None:
        self.low = math.inf
        self.high = -math.inf

    def observe(self, values: torch.Tensor) -> None:
        """Fold one batch of values into the range."""
        values = values.detach()
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))

    def range(self) -> tuple[float, float]:
        """(low, high) seen so far; raises when nothing was observed."""
        if self.low > self.high:
            raise ValueError("observer saw no values")
        return self.low, self.high


class PercentileObserver:
    """Mean over batches of the per-batch ``percentile`` / ``100 - percentile`` quantiles."""

    def __init__(self, percentile: float = 99.99, max_samples: int = 1 << 20, seed: int = 0):
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"percentile must lie in (50, 100], got {percentile}")
        self.percentile = percentile
        self.max_samples = max_samples
        self.generator = torch.Generator().manual_seed(seed)
        self.lows: list[float] = []
        self.highs: list[float] = []

    def observe(self, values: torch.Tensor) -> None:
        """Record one batch's quantiles."""
        flat = values.detach().reshape(-1).float().cpu()
        if flat.numel() > self.max_samples:
            flat = flat[torch.randint(0, flat.numel(), (self.max_samples,), generator=self.generator)]
        q = torch.tensor([1.0 - self.percentile / 100.0, self.percentile / 100.0])
        low, high = torch.quantile(flat, q).tolist()
        self.lows.append(low)
        self.highs.append(high)

    def range(self) -> tuple[float, float]:
        """(low, high): the means of the recorded quantiles."""
        if not self.lows:
            raise ValueError("observer saw no values")
        return float(np.mean(self.lows)), float(np.mean(self.highs))


def make_observer(kind: str) -> MinMaxObserver | PercentileObserver:
    """An observer by name: ``"minmax"`` or ``"percentile"`` (99.99th) or ``"percentile:Q"``."""
    if kind == "minmax":
        return MinMaxObserver()
    if kind == "percentile":
        return PercentileObserver()
    if kind.startswith("percentile:"):
        return PercentileObserver(float(kind.split(":", 1)[1]))
    raise ValueError(f"unknown observer {kind!r} (minmax, percentile, percentile:Q)")


def activation_quant_params(low: float, high: float) -> QuantParams:
    """Per-tensor asymmetric int8 parameters for the real range [low, high] (TFLite's nudging).

    The scale is rounded to float32 (what a .tflite file stores)."""
    low = min(float(low), 0.0)
    high = max(float(high), 0.0)
    if high - low < MIN_RANGE:
        high = low + MIN_RANGE
    scale = float(np.float32((high - low) / (QMAX - QMIN)))
    zero_point_from_min = QMIN - low / scale
    zero_point_from_max = QMAX - high / scale
    error_from_min = abs(QMIN) + abs(low / scale)
    error_from_max = abs(QMAX) + abs(high / scale)
    zero_point = zero_point_from_min if error_from_min < error_from_max else zero_point_from_max
    if zero_point <= QMIN:
        nudged = QMIN
    elif zero_point >= QMAX:
        nudged = QMAX
    else:
        nudged = int(math.floor(zero_point + 0.5))
    return QuantParams.per_tensor(scale, nudged)


def clamp_range(low: float, high: float, clamp: tuple[float, float]) -> tuple[float, float]:
    """The observed range intersected with a fused activation's clamp bounds (real units)."""
    low = max(low, clamp[0])
    high = min(high, clamp[1])
    return low, max(low, high)
