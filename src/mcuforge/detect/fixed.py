"""The integer decoding of a detector's int8 outputs: the one definition the generated C's
``mf_detect`` (codegen template ``detect.c.j2``) follows operation for operation, so both give the
same boxes bit for bit.

Fixed-point formats (all integer; no float arithmetic at run time):

- probabilities in Q15 (`PROB_ONE` = 32768 is 1.0); coordinates in Q8 (1/256 of an input pixel);
  ``exp`` in Q16, saturated at `EXP_MAX_Q16`.
- Per output tensor (scale s, zero point z) two 256-entry tables, indexed by ``q + 128``, built here
  in float64 once and stored as integers (Flash in the C):
  ``sigmoid_q15[q] = round(32768 / (1 + exp(-s (q - z))))`` (uint16) and
  ``exp_q16[q] = min(round(65536 exp(s (q - z))), EXP_MAX_Q16)`` (int32).
- Per anchor: ``anchor_q8 = round(256 * anchor)`` (int32).

Per grid cell (gy, gx) and anchor a of each output, in the order outputs, gy, gx, a (that running
number is the candidate index):

1. ``obj = sigmoid_q15[objectness]``; the cell is skipped when ``obj < threshold_q15`` (its score
   cannot reach the threshold, as ``sigmoid_q15 <= 32768``).
2. the class is the first class with the largest raw int8 logit;
   ``score = (obj * sigmoid_q15[class_logit] + 16384) >> 15``; kept when ``score >= threshold_q15``,
   ``threshold_q15 = round(32768 * score_threshold)``.
3. ``cx = ((sigmoid_q15[tx] + 32768 gx) * stride + 64) >> 7`` (Q15 pixels to Q8), cy likewise;
   ``w = min((anchor_w_q8 * exp_q16[tw] + 32768) >> 16, SIDE_MAX_Q8)`` in int64, h likewise;
   ``x0 = cx - (w >> 1)``, ``x1 = x0 + w``, then both clamped to [0, 256 * input_w] (y likewise).
4. candidates are ranked by score (high first), ties by candidate index (low first); the best
   ``max_candidates`` are kept (the C keeps a sorted array of that many).
5. greedy NMS over the ranked candidates: one is kept unless a kept box (of the same class, unless
   ``class_agnostic``) overlaps it with IoU > iou_threshold, decided exactly in int64 as
   ``intersection * 32768 > iou_q15 * union``, ``iou_q15 = round(32768 * iou_threshold)``; at most
   ``max_boxes`` are kept.

A box is (x0, y0, x1, y1, score, class) with x/y in Q8 and the score in Q15 (`FixedBoxes`);
`fixed_to_float` divides them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import McuforgeError
from .head import HeadError, YoloHead

PROB_BITS = 15
PROB_ONE = 1 << PROB_BITS
COORD_BITS = 8
EXP_BITS = 16
EXP_MAX_Q16 = (1 << 31) - 1
SIDE_MAX_Q8 = 1 << 24  # 65536 input pixels: a box side beyond any input
INPUT_MAX = 16384  # the largest input side the Q8 coordinates take in int32 arithmetic


@dataclass(frozen=True)
class DetectConfig:
    """The post-processing settings: score and IoU thresholds, the most boxes returned, the most
    candidates ranked before NMS (the C's candidate buffer), per-class or class-agnostic NMS."""

    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_boxes: int = 100
    max_candidates: int = 128
    class_agnostic: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0:
            raise McuforgeError(f"score threshold {self.score_threshold} is not in [0, 1]")
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise McuforgeError(f"IoU threshold {self.iou_threshold} is not in [0, 1]")
        if self.max_boxes < 1 or self.max_candidates < 1:
            raise McuforgeError(f"max_boxes {self.max_boxes} and max_candidates "
                            f"{self.max_candidates} must be at least 1")

    @property
    def score_threshold_q15(self) -> int:
        """The score threshold in Q15."""
        return int(round(self.score_threshold * PROB_ONE))

    @property
    def iou_threshold_q15(self) -> int:
        """The IoU threshold in Q15."""
        return int(round(self.iou_threshold * PROB_ONE))


@dataclass(frozen=True)
class OutputTables:
    """The lookup tables of one int8 output tensor, indexed by ``q + 128``."""

    sigmoid_q15: np.ndarray  # uint16 [256]
    exp_q16: np.ndarray  # int32 [256]


def output_tables(scale: float, zero_point: int) -> OutputTables:
    """The sigmoid (Q15) and exp (Q16, saturated) tables of an int8 tensor with ``scale`` and
    ``zero_point``."""
    real = scale * (np.arange(-128, 128, dtype=np.float64) - zero_point)
    sigmoid = np.round(PROB_ONE / (1.0 + np.exp(-real)))
    with np.errstate(over="ignore"):
        exp = np.minimum(np.round(np.exp(real) * (1 << EXP_BITS)), EXP_MAX_Q16)
    return OutputTables(sigmoid.astype(np.uint16), exp.astype(np.int32))


def anchors_q8(head: YoloHead) -> list[np.ndarray]:
    """Per output, its anchors in Q8 as int64 [A, 2] (w, h)."""
    return [np.round(np.asarray(o.anchors, dtype=np.float64) * (1 << COORD_BITS)).astype(np.int64)
            for o in head.outputs]


def check_input_size(head: YoloHead) -> None:
    """Refuse an input side, stride or anchor the int32/int64 arithmetic cannot hold (sides and
    strides up to `INPUT_MAX` pixels, anchors up to 65536 pixels)."""
    if max(head.input_size) > INPUT_MAX:
        raise HeadError(f"head input_size {list(head.input_size)}: sides above {INPUT_MAX} pixels "
                        "are not supported by the integer decoder")
    for index, output in enumerate(head.outputs):
        if output.stride > INPUT_MAX:
            raise HeadError(f"head output {index}: stride {output.stride} above {INPUT_MAX}")
        if max(max(anchor) for anchor in output.anchors) > SIDE_MAX_Q8 >> COORD_BITS:
            raise HeadError(f"head output {index}: an anchor side above {SIDE_MAX_Q8 >> COORD_BITS} "
                            "pixels")


def _candidates(output: np.ndarray, tables: OutputTables, anchors: np.ndarray, stride: int,
                num_classes: int, head: YoloHead, threshold_q15: int) -> np.ndarray:
    """int64 [N, 6] (x0, y0, x1, y1, score, class) of one output's cells that pass the threshold,
    in scan order (gy, gx, anchor)."""
    grid_h, grid_w = output.shape[1], output.shape[2]
    fields = output.reshape(grid_h, grid_w, len(anchors), 5 + num_classes).astype(np.int64) + 128
    sig = tables.sigmoid_q15.astype(np.int64)
    obj = sig[fields[..., 4]]
    logits = fields[..., 5:]
    best = np.argmax(logits, axis=-1)  # the first of equal maxima
    cls_sig = sig[np.take_along_axis(logits, best[..., None], axis=-1)[..., 0]]
    score = (obj * cls_sig + (PROB_ONE >> 1)) >> PROB_BITS
    keep = (obj >= threshold_q15) & (score >= threshold_q15)
    gy, gx, a = np.nonzero(keep)  # row-major: the scan order
    shift = PROB_BITS - COORD_BITS
    cx = ((sig[fields[gy, gx, a, 0]] + gx * PROB_ONE) * stride + (1 << (shift - 1))) >> shift
    cy = ((sig[fields[gy, gx, a, 1]] + gy * PROB_ONE) * stride + (1 << (shift - 1))) >> shift
    exp = tables.exp_q16.astype(np.int64)
    half = 1 << (EXP_BITS - 1)
    w = np.minimum((anchors[a, 0] * exp[fields[gy, gx, a, 2]] + half) >> EXP_BITS, SIDE_MAX_Q8)
    h = np.minimum((anchors[a, 1] * exp[fields[gy, gx, a, 3]] + half) >> EXP_BITS, SIDE_MAX_Q8)
    x0, y0 = cx - (w >> 1), cy - (h >> 1)
    x1, y1 = x0 + w, y0 + h
    max_x, max_y = head.input_size[1] << COORD_BITS, head.input_size[0] << COORD_BITS
    boxes = np.stack([np.clip(x0, 0, max_x), np.clip(y0, 0, max_y), np.clip(x1, 0, max_x),
                      np.clip(y1, 0, max_y), score[gy, gx, a], best[gy, gx, a]], axis=1)
    return boxes.astype(np.int64).reshape(-1, 6)


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (np.maximum(boxes[..., 2] - boxes[..., 0], 0)
            * np.maximum(boxes[..., 3] - boxes[..., 1], 0))


def nms_fixed(ranked: np.ndarray, config: DetectConfig) -> np.ndarray:
    """Greedy NMS over ranked int64 [N, 6] fixed-point boxes (step 5 of the module docstring)."""
    iou_q15 = config.iou_threshold_q15
    kept: list[int] = []
    for index in range(len(ranked)):
        if len(kept) == config.max_boxes:
            break
        box = ranked[index]
        others = ranked[kept]
        if not config.class_agnostic:
            others = others[others[:, 5] == box[5]]
        if len(others):
            inter_w = np.maximum(np.minimum(others[:, 2], box[2]) - np.maximum(others[:, 0], box[0]), 0)
            inter_h = np.maximum(np.minimum(others[:, 3], box[3]) - np.maximum(others[:, 1], box[1]), 0)
            inter = inter_w * inter_h
            union = _areas(others) + _areas(box) - inter
            if np.any(inter * PROB_ONE > iou_q15 * union):
                continue
        kept.append(index)
    return ranked[kept].reshape(-1, 6)


def detect_fixed(outputs: Sequence[np.ndarray], quant: Sequence[tuple[float, int]], head: YoloHead,
                 config: DetectConfig = DetectConfig()) -> np.ndarray:
    """The integer decode + threshold + ranking + NMS of the int8 ``outputs`` (one per head output,
    in the head's order, each [1, H, W, A*(5+C)]) whose (scale, zero point) are ``quant``: int64
    [N, 6] boxes (x0, y0, x1, y1 in Q8 input pixels, score in Q15, class), best first."""
    check_input_size(head)
    found = []
    for index, (output, (scale, zero_point), anchors) in enumerate(
            zip(outputs, quant, anchors_q8(head), strict=True)):
        expected = head.output_shape(index)
        if tuple(output.shape) != expected or output.dtype != np.int8:
            raise HeadError(f"head output {index} expects int8 {list(expected)}, got "
                            f"{output.dtype} {list(output.shape)}")
        spec = head.outputs[index]
        found.append(_candidates(output, output_tables(scale, zero_point), anchors, spec.stride,
                                 spec.num_classes, head, config.score_threshold_q15))
    candidates = np.concatenate(found, axis=0) if found else np.zeros((0, 6), np.int64)
    order = np.argsort(-candidates[:, 4], kind="stable")[:config.max_candidates]
    return nms_fixed(candidates[order], config)


def fixed_to_float(boxes: np.ndarray) -> np.ndarray:
    """float64 [N, 6] boxes (x0, y0, x1, y1 in input pixels, score in [0, 1], class) of fixed-point
    ``boxes``."""
    result = np.asarray(boxes, dtype=np.float64).reshape(-1, 6).copy()
    result[:, :4] /= 1 << COORD_BITS
    result[:, 4] /= PROB_ONE
    return result
