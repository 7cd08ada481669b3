"""Detection post-processing: the float decode (training and evaluation in Python), the integer
decode of int8 outputs (`fixed`, bit-identical with the generated C), matching a head to a model's
outputs; the letterbox transform between an image and the model's input is `letterbox`'s.

Boxes everywhere are rows ``[x0, y0, x1, y1, score, class]``: corners in the model's input pixels
(or, after `boxes_to_image`, the original image's), score in [0, 1].
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .fixed import DetectConfig, detect_fixed, fixed_to_float
from .head import HeadError, YoloHead
from .letterbox import Letterbox, boxes_to_image, letterbox_image, letterbox_transform

__all__ = ["DetectConfig", "Letterbox", "boxes_to_image", "decode_float", "detect_float",
           "detect_int8", "detect_fixed", "letterbox_image", "letterbox_transform", "match_outputs", "nms_float"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decode_float(outputs: Sequence[np.ndarray], head: YoloHead) -> np.ndarray:
    """Decode float head outputs (one per head output, [H, W, A*(5+C)] or [1, H, W, A*(5+C)]
    logits) into float64 [N, 4 + C]: (x0, y0, x1, y1) in input pixels and the C class scores
    sigmoid(obj) * sigmoid(class_c), one row per (output, gy, gx, anchor) in that order (unclipped;
    tw and th above 30 are taken as 30, so that exp stays finite)."""
    rows = []
    for index, (output, spec) in enumerate(zip(outputs, head.outputs, strict=True)):
        array = np.asarray(output, dtype=np.float64)
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        expected = head.output_shape(index)[1:]
        if array.shape != expected:
            raise HeadError(f"head output {index} expects [H, W, C] = {list(expected)}, got "
                            f"{list(array.shape)}")
        grid_h, grid_w, _ = expected
        fields = array.reshape(grid_h, grid_w, len(spec.anchors), spec.channels_per_anchor)
        gy, gx = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
        cx = (_sigmoid(fields[..., 0]) + gx[..., None]) * spec.stride
        cy = (_sigmoid(fields[..., 1]) + gy[..., None]) * spec.stride
        anchors = np.asarray(spec.anchors, dtype=np.float64)
        w = anchors[:, 0] * np.exp(np.minimum(fields[..., 2], 30.0))
        h = anchors[:, 1] * np.exp(np.minimum(fields[..., 3], 30.0))
        scores = _sigmoid(fields[..., 4:5]) * _sigmoid(fields[..., 5:])
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)
        rows.append(np.concatenate([boxes, scores], axis=-1).reshape(-1, 4 + spec.num_classes))
    return np.concatenate(rows, axis=0)


def nms_float(boxes: np.ndarray, config: DetectConfig) -> np.ndarray:
    """Greedy NMS over float [N, 6] boxes already ranked best first: a box is dropped when a kept box
    (of its class, unless ``config.class_agnostic``) has IoU > ``config.iou_threshold`` with it; at
    most ``config.max_boxes`` kept."""
    kept: list[int] = []
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    for index in range(len(boxes)):
        if len(kept) == config.max_boxes:
            break
        others = np.asarray(kept, dtype=np.int64)
        if not config.class_agnostic:
            others = others[boxes[others, 5] == boxes[index, 5]]
        if len(others):
            box, other = boxes[index], boxes[others]
            inter = (np.maximum(np.minimum(other[:, 2], box[2]) - np.maximum(other[:, 0], box[0]), 0)
                     * np.maximum(np.minimum(other[:, 3], box[3]) - np.maximum(other[:, 1], box[1]), 0))
            union = area[others] + area[index] - inter
            if np.any(inter > config.iou_threshold * union):
                continue
        kept.append(index)
    return boxes[kept].reshape(-1, 6)


def detect_float(outputs: Sequence[np.ndarray], head: YoloHead,
                 config: DetectConfig = DetectConfig()) -> np.ndarray:
    """Float boxes [N, 6] from float head logits: `decode_float`, each row's best class (the first
    of equal maxima), score threshold, ranking (score, then row order), the best
    ``max_candidates``, NMS; corners clipped to the input. The float twin of `detect_int8`."""
    decoded = decode_float(outputs, head)
    scores = decoded[:, 4:]
    best = np.argmax(scores, axis=1)
    score = scores[np.arange(len(decoded)), best]
    keep = np.nonzero(score >= config.score_threshold)[0]
    height, width = head.input_size
    boxes = np.stack([np.clip(decoded[keep, 0], 0, width), np.clip(decoded[keep, 1], 0, height),
                      np.clip(decoded[keep, 2], 0, width), np.clip(decoded[keep, 3], 0, height),
                      score[keep], best[keep].astype(np.float64)], axis=1)
    order = np.argsort(-boxes[:, 4], kind="stable")[:config.max_candidates]
    return nms_float(boxes[order], config)


def detect_int8(outputs: Sequence[np.ndarray], quant: Sequence[tuple[float, int]], head: YoloHead,
                config: DetectConfig = DetectConfig()) -> np.ndarray:
    """Float boxes [N, 6] (input pixels) of the int8 ``outputs`` through the integer decoder
    (`fixed.detect_fixed`, the boxes the generated C returns)."""
    return fixed_to_float(detect_fixed(outputs, quant, head, config))


def match_outputs(names: Sequence[str], shapes: Sequence[tuple[int, ...]], head: YoloHead) -> tuple[int, ...]:
    """For each head output (in order), the index of the model output it decodes: the model output
    whose grid is the head output's (input size / stride), the first unused one when several.
    `HeadError` names the output tensor and the channel count expected when they disagree."""
    if len(names) != len(head.outputs):
        raise HeadError(f"the head has {len(head.outputs)} outputs, the model has {len(names)} "
                        f"({', '.join(names)})")
    chosen: list[int] = []
    for index, spec in enumerate(head.outputs):
        expected = head.output_shape(index)
        grid = [j for j, shape in enumerate(shapes) if j not in chosen and len(shape) == 4
                and tuple(shape[:3]) == expected[:3]]
        if not grid:
            listed = ", ".join(f"{n} {list(s)}" for n, s in zip(names, shapes))
            raise HeadError(f"head output {index} (stride {spec.stride}) needs a [1, {expected[1]}, "
                            f"{expected[2]}, {expected[3]}] output tensor; the model's outputs: {listed}")
        exact = [j for j in grid if shapes[j][3] == expected[3]]
        if not exact:
            j = grid[0]
            raise HeadError(f"output tensor {names[j]} {list(shapes[j])} has {shapes[j][3]} "
                            f"channels; head output {index} (stride {spec.stride}) expects "
                            f"{expected[3]} = {len(spec.anchors)} anchors x (5 + "
                            f"{spec.num_classes} classes)")
        chosen.append(exact[0])
    return tuple(chosen)
