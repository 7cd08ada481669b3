"""Detection metrics: COCO-style mAP equals pycocotools' on the same detections; VOC all-point AP
on hand-computed cases (difficult boxes, duplicates, classes without boxes)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from mcuforge.detect.metrics import GroundTruth, all_point_ap, detection_scores, voc_map


def _synthetic(seed: int, images: int = 12, classes: int = 3):
    rng = np.random.default_rng(seed)
    truths, detections = [], []
    for _ in range(images):
        count = int(rng.integers(0, 5))
        xy = rng.uniform(0, 200, size=(count, 2))
        wh = rng.uniform(8, 120, size=(count, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1)
        labels = rng.integers(0, classes, size=count)
        truths.append(GroundTruth.of(boxes, labels))
        rows = []
        for box, label in zip(boxes, labels):
            if rng.random() < 0.85:  # a jittered hit, sometimes twice (a duplicate)
                for _ in range(1 + int(rng.random() < 0.2)):
                    jitter = rng.normal(0, 0.12, size=4) * np.repeat(box[2:] - box[:2], 2).reshape(2, 2).T.ravel()
                    rows.append([*(box + jitter), rng.uniform(0.2, 1.0), label])
        for _ in range(int(rng.integers(0, 4))):  # false positives
            xy0 = rng.uniform(0, 200, 2)
            rows.append([*xy0, *(xy0 + rng.uniform(8, 100, 2)), rng.uniform(0, 0.8), rng.integers(0, classes)])
        dets = np.array(rows, dtype=np.float64).reshape(-1, 6)
        dets[:, [2, 3]] = np.maximum(dets[:, [2, 3]], dets[:, [0, 1]] + 1)
        detections.append(dets)
    return detections, truths


def _pycocotools_stats(detections, truths, classes: int) -> np.ndarray:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    annotations, results, next_id = [], [], 1
    for image, (dets, truth) in enumerate(zip(detections, truths)):
        for box, label in zip(truth.boxes, truth.labels):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": next_id, "image_id": image, "category_id": int(label),
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
            next_id += 1
        for row in dets:
            results.append({"image_id": image, "category_id": int(row[5]), "score": float(row[4]),
                            "bbox": [row[0], row[1], row[2] - row[0], row[3] - row[1]]})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": [{"id": i} for i in range(len(truths))], "annotations": annotations,
                      "categories": [{"id": c} for c in range(classes)]}
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_coco_map_equals_pycocotools(seed):
    detections, truths = _synthetic(seed)
    scores = detection_scores(detections, truths, 3)
    stats = _pycocotools_stats(detections, truths, 3)
    assert scores.map_coco == pytest.approx(stats[0], abs=1e-12)
    assert scores.map50_coco == pytest.approx(stats[1], abs=1e-12)
    assert scores.map75_coco == pytest.approx(stats[2], abs=1e-12)
    assert 0.05 < scores.map_coco < 0.95  # a case with hits and misses, not a trivial one


def test_voc_all_point_ap_by_hand():
    # Two images, three boxes of class 0; detections ranked: hit, miss, hit, duplicate, (third box missed).
    truths = [GroundTruth.of([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0]), GroundTruth.of([[0, 0, 10, 10]], [0])]
    detections = [np.array([[0, 0, 10, 10, 0.9, 0], [50, 50, 60, 60, 0.8, 0], [0, 0, 9, 10, 0.6, 0]]),
                  np.array([[0, 0, 10, 10, 0.7, 0]])]
    # ranked: 0.9 hit, 0.8 miss, 0.7 hit, 0.6 duplicate: recall 1/3, 1/3, 2/3, 2/3; precision 1, 1/2, 2/3, 1/2
    expected = 1 / 3 * 1 + 1 / 3 * (2 / 3)
    value, per_class = voc_map(detections, truths, 2)
    assert value == pytest.approx(expected)
    assert np.isnan(per_class[1])  # class 1 has no box: left out of the mean


def test_voc_difficult_boxes_count_neither_way():
    truths = [GroundTruth.of([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 0], [False, True])]
    detections = [np.array([[20, 20, 40, 40, 0.95, 0], [0, 0, 10, 10, 0.5, 0]])]
    value, _ = voc_map(detections, truths, 1)
    assert value == pytest.approx(1.0)  # the difficult match is ignored; the one real box is found


def test_all_point_ap_of_a_perfect_ranking():
    assert all_point_ap(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
