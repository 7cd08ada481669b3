"""Detection metrics: Pascal VOC mAP@0.5 (all-point interpolation) and COCO-style mAP@[.5:.95].

Inputs: per image, the detections as rows ``[x0, y0, x1, y1, score, class]`` (`postprocess`'s
boxes) and the ground truth (`GroundTruth`: boxes, labels, difficult flags), all in the same
pixels. Boxes are continuous coordinates: area ``(x1 - x0) (y1 - y0)`` with no ``+ 1`` (COCO's
convention; the VOC devkit's ``+ 1`` is for integer pixel indices).

**VOC** (the VOC2010+ devkit's ``voc_eval``): per class, every image's detections ranked by score
(ties in input order); a detection is a hit when its best-overlapping box of that class has IoU
> 0.5 and was not already taken (a second one is a false positive); a detection whose best box is
difficult counts neither way, and difficult boxes are not counted in the recall. AP is the area
under the precision/recall curve with precision made monotone from the right (all points).

**COCO** (pycocotools' ``COCOeval``, bbox, area "all", at most ``max_detections`` = 100 per image):
per image and class the detections ranked by score (stable), each matched greedily to the unmatched
box of highest IoU >= t (ties: the later box); difficult boxes are COCO's ignored boxes (a match to
one is neither hit nor miss); per class, precision is made monotone and read at 101 recall points
0, 0.01, ..., 1; AP is their mean, averaged over t = 0.5, 0.55, ..., 0.95 and over the classes that
have a box. `tests/test_detect_metrics.py` checks the figures equal pycocotools'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .fixed import DetectConfig

# The post-processing settings of every mAP figure: low-scoring boxes are kept, since mAP ranks them
# (a deployed threshold is the application's choice).
MAP_DETECT_CONFIG = DetectConfig(score_threshold=0.01, iou_threshold=0.45, max_boxes=100)
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
COCO_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class GroundTruth:
    """One image's objects: ``boxes`` [N, 4], ``labels`` [N], ``difficult`` [N] (bool)."""

    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray

    @staticmethod
    def of(boxes, labels, difficult=None) -> "GroundTruth":
        """A `GroundTruth` from array-likes (no difficult flags: none difficult)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        flags = np.zeros(len(boxes), bool) if difficult is None else np.asarray(difficult, bool)
        return GroundTruth(boxes, np.asarray(labels, dtype=np.int64).reshape(-1), flags)


@dataclass(frozen=True)
class DetectionScores:
    """mAP@0.5 (VOC), mAP@[.5:.95], AP@0.5 and AP@0.75 (COCO), and the per-class VOC APs (NaN for
    a class with no box)."""

    map50_voc: float
    map_coco: float
    map50_coco: float
    map75_coco: float
    ap50_voc_per_class: tuple[float, ...]

    def as_dict(self) -> dict[str, float]:
        """The four means by name."""
        return {"map50_voc": self.map50_voc, "map_coco": self.map_coco,
                "map50_coco": self.map50_coco, "map75_coco": self.map75_coco}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [len(a), len(b)] of [x0, y0, x1, y1] boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def all_point_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC all-point AP: area under the monotone (from the right) precision/recall curve."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def _voc_class_ap(detections: Sequence[np.ndarray], truths: Sequence[GroundTruth], cls: int,
                  iou_threshold: float) -> float:
    """VOC AP of class ``cls`` (module doc); NaN when no non-difficult box has the class."""
    positives = sum(int(np.sum((t.labels == cls) & ~t.difficult)) for t in truths)
    entries = [(image, row) for image, dets in enumerate(detections)
               for row in np.asarray(dets).reshape(-1, 6) if int(row[5]) == cls]
    if positives == 0:
        return float("nan")
    order = sorted(range(len(entries)), key=lambda i: -entries[i][1][4])
    taken = [np.zeros(len(t.labels), bool) for t in truths]
    hits, misses = [], []
    for index in order:
        image, row = entries[index]
        truth = truths[image]
        candidates = np.nonzero(truth.labels == cls)[0]
        hit = miss = 0
        if len(candidates):
            overlaps = box_iou(row[None, :4], truth.boxes[candidates])[0]
            best = int(np.argmax(overlaps))
            box = candidates[best]
            if overlaps[best] > iou_threshold:
                if not truth.difficult[box]:
                    if taken[image][box]:
                        miss = 1
                    else:
                        hit, taken[image][box] = 1, True
            else:
                miss = 1
        else:
            miss = 1
        if hit or miss:
            hits.append(hit)
            misses.append(miss)
    tp, fp = np.cumsum(hits), np.cumsum(misses)
    recall = tp / positives
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return all_point_ap(recall, precision)


def voc_map(detections: Sequence[np.ndarray], truths: Sequence[GroundTruth], num_classes: int,
            iou_threshold: float = 0.5) -> tuple[float, tuple[float, ...]]:
    """(VOC mAP, per-class APs) over the classes that have a box (module doc)."""
    per_class = tuple(_voc_class_ap(detections, truths, cls, iou_threshold) for cls in range(num_classes))
    valid = [ap for ap in per_class if not np.isnan(ap)]
    return (float(np.mean(valid)) if valid else 0.0), per_class


def _coco_match(dets: np.ndarray, truth: GroundTruth, cls: int, max_detections: int):
    """pycocotools' ``evaluateImg`` for one image and class: (scores, matched [T, D], ignored [T, D],
    number of non-ignored boxes)."""
    dets = dets[dets[:, 5] == cls]
    dets = dets[np.argsort(-dets[:, 4], kind="mergesort")][:max_detections]
    mask = truth.labels == cls
    boxes, ignore = truth.boxes[mask], truth.difficult[mask]
    order = np.argsort(ignore, kind="mergesort")
    boxes, ignore = boxes[order], ignore[order]
    thresholds = len(COCO_IOU_THRESHOLDS)
    matched = np.zeros((thresholds, len(dets)), bool)
    ignored = np.zeros((thresholds, len(dets)), bool)
    ious = box_iou(dets[:, :4], boxes)
    for t_index, threshold in enumerate(COCO_IOU_THRESHOLDS):
        box_taken = np.zeros(len(boxes), bool)
        for d_index in range(len(dets)):
            best_iou, match = min(threshold, 1 - 1e-10), -1
            for g_index in range(len(boxes)):
                if box_taken[g_index]:
                    continue
                if match > -1 and not ignore[match] and ignore[g_index]:
                    break
                if ious[d_index, g_index] < best_iou:
                    continue
                best_iou, match = ious[d_index, g_index], g_index
            if match == -1:
                continue
            box_taken[match] = True
            matched[t_index, d_index] = True
            ignored[t_index, d_index] = ignore[match]
    return dets[:, 4], matched, ignored, int(np.sum(~ignore))


def coco_precision(detections: Sequence[np.ndarray], truths: Sequence[GroundTruth], num_classes: int,
                   max_detections: int = 100) -> np.ndarray:
    """pycocotools' precision array [T, 101, classes] (-1 where a class has no box)."""
    result = -np.ones((len(COCO_IOU_THRESHOLDS), len(COCO_RECALL_POINTS), num_classes))
    for cls in range(num_classes):
        per_image = [_coco_match(np.asarray(d, dtype=np.float64).reshape(-1, 6), t, cls, max_detections)
                     for d, t in zip(detections, truths, strict=True)]
        positives = sum(p[3] for p in per_image)
        if positives == 0:
            continue
        scores = np.concatenate([p[0] for p in per_image])
        order = np.argsort(-scores, kind="mergesort")
        matched = np.concatenate([p[1] for p in per_image], axis=1)[:, order]
        ignored = np.concatenate([p[2] for p in per_image], axis=1)[:, order]
        tps = np.cumsum(matched & ~ignored, axis=1).astype(np.float64)
        fps = np.cumsum(~matched & ~ignored, axis=1).astype(np.float64)
        for t_index in range(len(COCO_IOU_THRESHOLDS)):
            tp, fp = tps[t_index], fps[t_index]
            recall = tp / positives
            precision = tp / (fp + tp + np.spacing(1))
            precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
            at = np.searchsorted(recall, COCO_RECALL_POINTS, side="left")
            values = np.zeros(len(COCO_RECALL_POINTS))
            inside = at < len(precision)
            values[inside] = precision[at[inside]]
            result[t_index, :, cls] = values
    return result


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def detection_scores(detections: Sequence[np.ndarray], truths: Sequence[GroundTruth],
                     num_classes: int) -> DetectionScores:
    """VOC mAP@0.5 and the COCO means of ``detections`` against ``truths`` (one entry per image)."""
    voc, per_class = voc_map(detections, truths, num_classes)
    precision = coco_precision(detections, truths, num_classes)
    return DetectionScores(voc, _mean_valid(precision), _mean_valid(precision[0]),
                           _mean_valid(precision[5]), per_class)
