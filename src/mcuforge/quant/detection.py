"""A trained detector to int8, and its mAP as the reference runtime (and so the MCU) computes it.

Calibration images are the first training images letterboxed as deployed
(`data.box_augment.eval_example`); `quantize_detector` is `quant.ptq.quantize_spec_net` on them
(the ``yolo`` head is one biased conv with a calibrated output range). `predict_int8` runs the int8
graph in the reference runtime on validation images prepared as the deployed detector prepares
them (`detect.run.prepare_image`: letterbox, pixel ``p`` -> ``p / 127.5 - 1`` -> the graph input's
quantisation), decodes the int8 outputs with the integer post-processing the generated C runs
(`detect.run.detect_reference`: LUT sigmoid and exp, threshold, NMS) and maps the boxes back to
the image's pixels, for `detect.metrics`.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from ..data.box_augment import canvases_to_input, eval_example
from ..data.detection import DetectionDataset
from ..detect.fixed import DetectConfig, fixed_to_float
from ..detect.head import YoloHead
from ..detect.metrics import MAP_DETECT_CONFIG, DetectionScores, detection_scores
from ..detect.letterbox import boxes_to_image
from ..detect.run import detect_reference, make_detector, prepare_image
from ..ir import Graph
from ..models.spec_torch import SpecNet
from .ptq import quantize_spec_net


def letterboxed_inputs(dataset: DetectionDataset, size: int, count: int | None = None) -> torch.Tensor:
    """Float NCHW model input of the first ``count`` samples (all by default), letterboxed."""
    samples = dataset.samples[:count] if count is not None else dataset.samples
    return canvases_to_input([eval_example(sample, size)[0] for sample in samples])


def quantize_detector(model: SpecNet, calibration_set: DetectionDataset, samples: int = 64,
                      batch: int = 16) -> Graph:
    """The int8 graph of a trained detector, calibrated on ``samples`` letterboxed images."""
    x = letterboxed_inputs(calibration_set, model.spec.resolution, samples)
    return quantize_spec_net(model, [x[i:i + batch] for i in range(0, len(x), batch)])


def predict_int8(graph: Graph, dataset: DetectionDataset, head: YoloHead, config: DetectConfig = MAP_DETECT_CONFIG,
                 progress: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(float boxes [N, 6] in each image's pixels, the fixed-point boxes `detect.fixed` gives: what
    the generated C's ``mf_detect`` returns) of the int8 graph on every sample, each image
    letterboxed and quantised by `detect.run.prepare_image` (module doc)."""
    detector = make_detector(graph, head)
    boxes, fixed = [], []
    for sample in tqdm(dataset.samples, desc="int8 reference runtime", unit="image", disable=not progress,
                       leave=False):
        int8_input, letterbox = prepare_image(detector, sample.image)
        found = detect_reference(detector, int8_input, config)
        fixed.append(found)
        boxes.append(boxes_to_image(fixed_to_float(found), letterbox))
    return boxes, fixed


def int8_scores(graph: Graph, dataset: DetectionDataset, head: YoloHead, config: DetectConfig = MAP_DETECT_CONFIG,
                progress: bool = False) -> DetectionScores:
    """mAP figures of the int8 graph on ``dataset`` (reference runtime, integer post-processing)."""
    boxes, _ = predict_int8(graph, dataset, head, config, progress=progress)
    return detection_scores(boxes, dataset.ground_truths(), head.num_classes)
