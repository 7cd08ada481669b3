"""Anchor sizes from a data set's boxes: k-means over (w, h) with 1 - IoU as the distance (YOLOv2).

Boxes and centroids are compared as if they shared a centre, so only their shapes matter. The
start is deterministic (the k boxes at evenly spaced ranks of the area order), so the same boxes
always give the same anchors; the result is sorted by area.
"""

from __future__ import annotations

import numpy as np

from ..errors import McuforgeError


def shape_iou(sizes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """IoU [N, K] of boxes of ``sizes`` [N, 2] and ``centroids`` [K, 2] (w, h) sharing a centre."""
    inter = np.minimum(sizes[:, None, 0], centroids[None, :, 0]) * np.minimum(sizes[:, None, 1], centroids[None, :, 1])
    union = sizes[:, 0:1] * sizes[:, 1:2] + (centroids[:, 0] * centroids[:, 1])[None, :] - inter
    return inter / union


def kmeans_anchors(sizes: np.ndarray, count: int, iterations: int = 100) -> np.ndarray:
    """``count`` anchors (w, h) [count, 2] for boxes of ``sizes`` [N, 2], sorted by area."""
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if len(sizes) < count:
        raise McuforgeError(f"{count} anchors need at least {count} boxes, the data have {len(sizes)}")
    by_area = np.argsort(sizes[:, 0] * sizes[:, 1], kind="stable")
    centroids = sizes[by_area[np.linspace(0, len(sizes) - 1, count).round().astype(int)]].copy()
    for _ in range(iterations):
        nearest = np.argmax(shape_iou(sizes, centroids), axis=1)
        updated = np.array([np.median(sizes[nearest == k], axis=0) if np.any(nearest == k) else centroids[k]
                            for k in range(count)])
        if np.allclose(updated, centroids):
            break
        centroids = updated
    return centroids[np.argsort(centroids[:, 0] * centroids[:, 1], kind="stable")]


def mean_best_iou(sizes: np.ndarray, anchors: np.ndarray) -> float:
    """The mean over boxes of the IoU with their best anchor (how well the anchors fit)."""
    return float(np.mean(np.max(shape_iou(np.asarray(sizes, float).reshape(-1, 2), np.asarray(anchors, float)), axis=1)))
