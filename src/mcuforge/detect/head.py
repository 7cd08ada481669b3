"""YOLO-style detection heads: what each int8 output tensor of a detector holds.

Each output of the model is one scale, a tensor [1, H, W, A*(5+C)] (NHWC) with H = ceil(input_h /
stride), W = ceil(input_w / stride). Per grid cell and anchor a (channels a*(5+C) ...), the channels
are (tx, ty, tw, th, objectness, class_0 .. class_{C-1}), decoded YOLOv2/v3-style:

    cx = (sigmoid(tx) + gx) * stride        cy = (sigmoid(ty) + gy) * stride
    w  = anchor_w * exp(tw)                 h  = anchor_h * exp(th)
    score_c = sigmoid(objectness) * sigmoid(class_c)

in the model's input pixels. Anchors are (w, h) in input pixels. The head JSON file (for a model made
by another tool) is::

    {"input_size": [416, 416],                      # [height, width] of the model input
     "input_range": [0, 1],                         # pixels 0..255 map to [low, high] (default [-1, 1])
     "outputs": [{"stride": 8, "anchors": [[10, 13], [16, 30], [33, 23]], "num_classes": 80}, ...]}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_json_atomic
from ..errors import McuforgeError


class HeadError(McuforgeError):
    """A head JSON file, or a head that does not match the model's outputs."""


@dataclass(frozen=True)
class YoloOutput:
    """One output scale: its stride (input pixels per grid cell), its anchors ((w, h) in input
    pixels, one per anchor slot) and its class count."""

    stride: int
    anchors: tuple[tuple[float, float], ...]
    num_classes: int

    def __post_init__(self) -> None:
        if not isinstance(self.stride, int) or self.stride < 1:
            raise HeadError(f"head output: stride {self.stride!r} is not a positive integer")
        if not self.anchors:
            raise HeadError("head output: no anchors")
        for anchor in self.anchors:
            if len(anchor) != 2 or not all(math.isfinite(v) and v > 0 for v in anchor):
                raise HeadError(f"head output: anchor {anchor!r} is not a (w, h) pair of positive "
                                "numbers")
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise HeadError(f"head output: num_classes {self.num_classes!r} is not a positive "
                            "integer")

    @property
    def channels_per_anchor(self) -> int:
        """5 + num_classes: tx, ty, tw, th, objectness, then the class logits."""
        return 5 + self.num_classes

    @property
    def channels(self) -> int:
        """The output tensor's channel count, A * (5 + C)."""
        return len(self.anchors) * self.channels_per_anchor


@dataclass(frozen=True)
class YoloHead:
    """A detector's head: its output scales (in the order matched to the model's outputs, see
    `postprocess.match_outputs`), the model's input size (height, width) in pixels, and the float
    range its input takes pixel values 0..255 to (linearly; mcuforge's own models take [-1, 1],
    `mcuforge.data.transforms`; many other tools' YOLO models take [0, 1])."""

    outputs: tuple[YoloOutput, ...]
    input_size: tuple[int, int]
    input_range: tuple[float, float] = (-1.0, 1.0)

    def __post_init__(self) -> None:
        if not self.outputs:
            raise HeadError("head: no outputs")
        if len(self.input_size) != 2 or not all(isinstance(v, int) and v >= 1
                                                for v in self.input_size):
            raise HeadError(f"head: input_size {self.input_size!r} is not [height, width] in "
                            "positive integers")
        if len(self.input_range) != 2 or not all(math.isfinite(v) for v in self.input_range) \
                or self.input_range[0] >= self.input_range[1]:
            raise HeadError(f"head: input_range {self.input_range!r} is not [low, high] with low < high")
        classes = {o.num_classes for o in self.outputs}
        if len(classes) != 1:
            raise HeadError(f"head: outputs disagree on num_classes ({sorted(classes)})")

    @property
    def num_classes(self) -> int:
        """The class count (every output has the same)."""
        return self.outputs[0].num_classes

    def grid(self, index: int) -> tuple[int, int]:
        """(H, W) of output ``index``'s grid: the input size divided by its stride, rounded up."""
        stride = self.outputs[index].stride
        return (-(-self.input_size[0] // stride), -(-self.input_size[1] // stride))

    def output_shape(self, index: int) -> tuple[int, int, int, int]:
        """The shape [1, H, W, A*(5+C)] output ``index`` must have."""
        return (1, *self.grid(index), self.outputs[index].channels)


def head_to_json(head: YoloHead) -> dict[str, Any]:
    """The JSON form of ``head`` (what `load_head_json` reads)."""
    return {
        "input_size": list(head.input_size),
        "input_range": list(head.input_range),
        "outputs": [{"stride": o.stride, "anchors": [list(a) for a in o.anchors],
                     "num_classes": o.num_classes} for o in head.outputs],
    }


def _field(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict):
        raise HeadError(f"{where} is not a JSON object")
    if key not in mapping:
        raise HeadError(f"{where}: missing field {key!r}")
    return mapping[key]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HeadError(f"{where}: {value!r} is not a number")
    return float(value)


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HeadError(f"{where}: {value!r} is not an integer")
    return value


def head_from_json(payload: Any, where: str = "head") -> YoloHead:
    """Build a `YoloHead` from its JSON form; `HeadError` names the field that is wrong."""
    size = _field(payload, "input_size", where)
    if not isinstance(size, list) or len(size) != 2:
        raise HeadError(f"{where}: input_size {size!r} is not [height, width]")
    input_size = (_integer(size[0], f"{where}: input_size"), _integer(size[1], f"{where}: input_size"))
    entries = _field(payload, "outputs", where)
    if not isinstance(entries, list) or not entries:
        raise HeadError(f"{where}: outputs is not a non-empty list")
    outputs = []
    for index, entry in enumerate(entries):
        at = f"{where}: outputs[{index}]"
        stride = _integer(_field(entry, "stride", at), f"{at}.stride")
        anchors = _field(entry, "anchors", at)
        if not isinstance(anchors, list) or not anchors:
            raise HeadError(f"{at}.anchors is not a non-empty list of [w, h]")
        pairs = []
        for a_index, anchor in enumerate(anchors):
            if not isinstance(anchor, list) or len(anchor) != 2:
                raise HeadError(f"{at}.anchors[{a_index}] {anchor!r} is not [w, h]")
            pairs.append(tuple(_number(v, f"{at}.anchors[{a_index}]") for v in anchor))
        classes = _integer(_field(entry, "num_classes", at), f"{at}.num_classes")
        try:
            outputs.append(YoloOutput(stride, tuple(pairs), classes))
        except HeadError as error:
            raise HeadError(f"{at}: {str(error).split(': ', 1)[1]}") from None
    value_range = payload.get("input_range", [-1.0, 1.0])
    if not isinstance(value_range, list) or len(value_range) != 2:
        raise HeadError(f"{where}: input_range {value_range!r} is not [low, high]")
    input_range = tuple(_number(v, f"{where}: input_range") for v in value_range)
    try:
        return YoloHead(tuple(outputs), input_size, input_range)
    except HeadError as error:
        raise HeadError(f"{where}: {str(error).split(': ', 1)[1]}") from None


def load_head_json(path: str | Path) -> YoloHead:
    """Read a head JSON file (format in the module docstring); one-line `HeadError` naming the file
    and the field for a missing file, bad JSON or a bad field."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise HeadError(f"{path}: cannot read head file ({error.strerror or error})") from None
    try:
        payload = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise HeadError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise HeadError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    return head_from_json(payload, where=str(path))


def save_head_json(head: YoloHead, path: str | Path) -> Path:
    """Write ``head``'s JSON to ``path`` atomically."""
    return write_json_atomic(path, head_to_json(head))


def sidecar_head_path(model: str | Path) -> Path:
    """Where a model's own head JSON lives, which ``mcuforge detect`` reads when no ``--anchors``
    is given: ``MODEL.head.json`` (``x.tflite`` -> ``x.head.json``)."""
    return Path(model).with_suffix(".head.json")
