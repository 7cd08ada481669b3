"""Matplotlib figures (PNG), written atomically: per-block activation memory bars with the SRAM limit of
a target (as in the MCUNetV2 paper's Figure 2), the arena as a timeline of tensor lifetimes and offsets,
CDFs (TinyNAS FLOPs distributions), scatter/Pareto plots (search points, patch fronts), and for keyword
spotting the front end's features as spectrograms and a confusion matrix."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.patches
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..atomic import atomic_open  # noqa: E402


def save_figure(figure, path: str | Path) -> Path:
    """Save ``figure`` as PNG to ``path`` atomically and close it."""
    try:
        with atomic_open(path, "wb") as stream:
            figure.savefig(stream, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    return Path(path)


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


def plot_arena_timeline(placements: list[tuple[str, int, int, int, int]], arena_bytes: int,
                        path: str | Path, title: str) -> Path:
    """The arena as a timeline: one rectangle per tensor, x = op indices it is alive (first..last),
    y = its byte range (offset..offset+size). ``placements`` rows are (name, offset, size, first, last)."""
    figure, axes = plt.subplots(figsize=(9, 4.5))
    colours = plt.get_cmap("tab20")
    for index, (name, offset, size, first, last) in enumerate(placements):
        start = max(first, -0.5)
        axes.add_patch(matplotlib.patches.Rectangle(
            (start, offset / 1024), last - start + 0.9, size / 1024, facecolor=colours(index % 20),
            edgecolor="black", linewidth=0.3, alpha=0.85))
    ends = [last for *_, last in placements] or [0]
    axes.set_xlim(-1, max(ends) + 1.5)
    axes.set_ylim(0, max(arena_bytes, 1) / 1024 * 1.05)
    axes.axhline(arena_bytes / 1024, color="crimson", linestyle="--", label=f"arena {arena_bytes / 1024:.1f} kB")
    axes.set_xlabel("op index (execution order)")
    axes.set_ylabel("arena offset (kB, 1 kB = 1024 B)")
    axes.set_title(title)
    axes.legend(loc="upper right")
    return save_figure(figure, path)


def plot_cdfs(samples: dict[str, list[float]], path: str | Path, title: str, xlabel: str) -> Path:
    """Empirical CDFs, one line per label (e.g. FLOPs of the networks of each search space that fit)."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, values in samples.items():
        ordered = sorted(values)
        if not ordered:
            continue
        ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
        axes.step(ordered, ys, where="post", label=f"{label} (n={len(ordered)})")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("fraction of sampled networks")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    return save_figure(figure, path)


def plot_points(series: dict[str, list[tuple[float, float]]], path: str | Path, title: str,
                xlabel: str, ylabel: str, limit_x: float | None = None, front: bool = False) -> Path:
    """Scatter of (x, y) points per label, e.g. evolutionary-search candidates (memory, accuracy) or a
    patch Pareto front (peak bytes, MAC factor); ``front`` joins each series' points in x order."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, points in series.items():
        if not points:
            continue
        xs, ys = zip(*sorted(points))
        if front:
            axes.plot(xs, ys, marker="o", label=label)
        else:
            axes.scatter(xs, ys, s=14, alpha=0.7, label=label)
    if limit_x is not None:
        axes.axvline(limit_x, color="crimson", linestyle="--", label="limit")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_feature_maps(maps: list[tuple[str, list[list[int]]]], path: str | Path, title: str) -> Path:
    """Spectrogram-style pictures of int8 front-end features, one panel per (caption, [frames][bins])
    map: time (frames) across, frequency channel up."""
    figure, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.2), squeeze=False)
    image = None
    for axis, (caption, values) in zip(axes[0], maps):
        image = axis.imshow(np.asarray(values).T, origin="lower", aspect="auto", cmap="magma",
                            vmin=-128, vmax=127)
        axis.set_title(caption, fontsize=9)
        axis.set_xlabel("frame (20 ms)")
        axis.set_ylabel("channel")
    if image is not None:
        figure.colorbar(image, ax=axes[0].tolist(), label="int8 feature")
    figure.suptitle(title)
    return save_figure(figure, path)


def plot_confusion(matrix: list[list[int]], labels: list[str], path: str | Path, title: str) -> Path:
    """A confusion matrix: rows the true class, columns the predicted one, counts in the cells."""
    counts = np.asarray(matrix)
    figure, axes = plt.subplots(figsize=(0.5 * len(labels) + 2.5, 0.5 * len(labels) + 2))
    axes.imshow(counts, cmap="Blues")
    for (row, col), count in np.ndenumerate(counts):
        if count:
            axes.text(col, row, str(count), ha="center", va="center", fontsize=8,
                      color="white" if count > counts.max() / 2 else "black")
    axes.set_xticks(range(len(labels)), labels)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    return save_figure(figure, path)
