"""Matplotlib figures (PNG): per-block activation memory bars with the SRAM limit of a target
(as in the MCUNetV2 paper's Figure 2). Files are written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(figure, path: str | Path) -> Path:
    """Save ``figure`` to ``path`` atomically (temp file + rename) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(suffix=path.suffix or ".png", dir=path.parent)
    os.close(handle)
    try:
        figure.savefig(temp, dpi=120, bbox_inches="tight")
        os.replace(temp, path)
    finally:
        plt.close(figure)
        if os.path.exists(temp):
            os.unlink(temp)
    return path


def plot_block_memory(series: dict[str, list[tuple[str, int]]], path: str | Path, title: str,
                      limit_bytes: int | None = None, limit_label: str = "SRAM") -> Path:
    """Bars of peak activation memory (kB = 1024 B) per block; one colour per series (e.g.
    "layer-based" and "patch-based" side by side); a dashed line at ``limit_bytes``."""
    names = [name for name, _ in next(iter(series.values()))]
    figure, axes = plt.subplots(figsize=(max(6.0, 0.38 * len(names) + 2), 4))
    width = 0.8 / len(series)
    for index, (label, rows) in enumerate(series.items()):
        values = dict(rows)
        xs = [i + (index - (len(series) - 1) / 2) * width for i in range(len(names))]
        axes.bar(xs, [values.get(name, 0) / 1024 for name in names], width, label=label)
    if limit_bytes:
        axes.axhline(limit_bytes / 1024, color="crimson", linestyle="--",
                     label=f"{limit_label} {limit_bytes / 1024:.0f} kB")
    axes.set_xticks(range(len(names)))
    axes.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    axes.set_ylabel("peak activation memory (kB, 1 kB = 1024 B)")
    axes.set_title(title)
    axes.legend()
    return save_figure(figure, path)
