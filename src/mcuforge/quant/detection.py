"""A trained detector to int8, and its mAP as the reference runtime (and so the MCU) computes it.

Calibration images are the first training images letterboxed as deployed
(`data.box_augment.eval_example`); `quantize_detector` is `quant.ptq.quantize_spec_net` on them
(the ``yolo`` head is one biased conv with a calibrated output range). `predict_int8` runs the int8
graph in the reference runtime on letterboxed validation images (pixel ``p`` -> ``p / 127.5 - 1``
-> the graph input's quantisation), decodes the int8 outputs with the integer post-processing the
generated C runs (`detect.postprocess.detect_int8`: LUT sigmoid and exp, threshold, NMS) and maps
the boxes back to the image's pixels, for `detect.metrics`.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from ..data.box_augment import canvases_to_input, eval_example
from ..data.detection import DetectionDataset
from ..detect.fixed import DetectConfig
from ..detect.head import YoloHead
from ..detect.metrics import MAP_DETECT_CONFIG, DetectionScores, detection_scores
from ..detect.postprocess import boxes_to_image, detect_int8
from ..ir import Graph
from ..models.spec_torch import SpecNet
from .inference import int8_logits, quantize_input
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


def output_quant(graph: Graph) -> list[tuple[float, int]]:
    """(scale, zero point) of each graph output, as `detect_int8` takes them."""
    quants = [graph.tensor(name).quant for name in graph.outputs]
    return [(float(q.scale[0]), int(q.zero_point[0])) for q in quants]


def int8_outputs(graph: Graph, dataset: DetectionDataset, size: int, batch: int = 8,
                 progress: bool = False) -> np.ndarray:
    """The int8 head outputs [N, H, W, C] of every sample, letterboxed, in the reference runtime."""
    outputs = []
    firsts = range(0, len(dataset), batch)
    for first in tqdm(firsts, desc="int8 reference runtime", unit="batch", disable=not progress, leave=False):
        x = quantize_input(graph, letterboxed_inputs(dataset.subset(range(first, min(first + batch, len(dataset)))),
                                                     size))
        outputs.append(int8_logits(graph, x, batch_size=len(x)))
    return np.concatenate(outputs)


def predict_int8(graph: Graph, dataset: DetectionDataset, head: YoloHead, config: DetectConfig = MAP_DETECT_CONFIG,
                 outputs: np.ndarray | None = None, progress: bool = False) -> list[np.ndarray]:
    """Boxes [N, 6] per sample in its image's pixels from the int8 graph (module doc); ``outputs``:
    int8 head outputs already computed (`int8_outputs`, or the MCU's)."""
    size = head.input_size[0]
    if outputs is None:
        outputs = int8_outputs(graph, dataset, size, progress=progress)
    quant = output_quant(graph)
    predictions = []
    for sample, output in zip(dataset.samples, outputs, strict=True):
        _, letterbox = eval_example(sample, size)
        predictions.append(boxes_to_image(detect_int8([output[None]], quant, head, config), letterbox))
    return predictions


def int8_scores(graph: Graph, dataset: DetectionDataset, head: YoloHead, progress: bool = False) -> DetectionScores:
    """mAP figures of the int8 graph on ``dataset`` (reference runtime, integer post-processing)."""
    predictions = predict_int8(graph, dataset, head, progress=progress)
    return detection_scores(predictions, dataset.ground_truths(), head.num_classes)
