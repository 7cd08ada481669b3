"""Detection on images with the int8 reference runtime: read an image, letterbox it to the model's
input, quantise it, run the int8 graph (float edge conversions stripped, as the C runs it), decode
and NMS with the integer decoder (`fixed`), map the boxes back to the image; and draw them.

Input values: pixel p (0..255) becomes ``low + (high - low) * p / 255`` with the head's
``input_range`` (mcuforge's models: [-1, 1]), quantised with the int8 input tensor's scale and
zero point, ``q = clamp(round(x / scale) + zero_point, -128, 127)``; a one-channel model takes the
luma 0.299 R + 0.587 G + 0.114 B (`mcuforge.data.transforms`' rule).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import write_bytes_atomic
from ..codegen.edges import strip_edge_conversions
from ..errors import McuforgeError
from ..ir import Graph
from ..runtime.reference import Interpreter
from .c_module import HeadBinding, bind_head
from .fixed import DetectConfig, detect_fixed, fixed_to_float
from .head import YoloHead
from .letterbox import Letterbox, boxes_to_image, letterbox_image

_LUMA = np.array([0.299, 0.587, 0.114])


class ImageError(McuforgeError):
    """An image file that cannot be read as an image."""


def load_image(path: str | Path) -> np.ndarray:
    """The RGB pixels (uint8 [h, w, 3]) of the image file ``path``; `ImageError` naming the file
    when it is missing or not an image pillow reads."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        reason = "not an image pillow can read" if isinstance(error, UnidentifiedImageError) \
            else f"cannot read the image ({error})"
        raise ImageError(f"{path}: {reason}") from None


@dataclass(frozen=True)
class Detector:
    """An int8 graph (float edges stripped) bound to its head, with the reference interpreter."""

    graph: Graph
    binding: HeadBinding
    interpreter: Interpreter

    @property
    def head(self) -> YoloHead:
        """The bound head."""
        return self.binding.head


def make_detector(graph: Graph, head: YoloHead) -> Detector:
    """Bind ``head`` to ``graph`` (`c_module.bind_head`: one-line errors naming the output tensor
    and the channel count expected) and prepare the int8 interpreter."""
    binding = bind_head(graph, head)
    int8 = strip_edge_conversions(graph).graph
    return Detector(int8, binding, Interpreter(int8))


def quantise_image(detector: Detector, pixels: np.ndarray) -> np.ndarray:
    """The int8 model input [1, H, W, C] of letterboxed ``pixels`` (uint8 [H, W, 3])."""
    tensor = detector.graph.tensors[detector.graph.inputs[0]]
    channels = tensor.shape[3]
    values = pixels.astype(np.float64)
    if channels == 1:
        values = (values @ _LUMA)[..., None]
    elif channels != 3:
        raise McuforgeError(f"model input {tensor.name} has {channels} channels; detection takes "
                            "1 (luma) or 3 (RGB)")
    low, high = detector.head.input_range
    real = low + (high - low) * values / 255.0
    scale, zero_point = float(tensor.quant.scale[0]), int(tensor.quant.zero_point[0])
    return np.clip(np.round(real / scale) + zero_point, -128, 127).astype(np.int8)[None]


def prepare_image(detector: Detector, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
    """An RGB image (uint8 [h, w, 3]) as the int8 model input, and its letterbox."""
    canvas, letterbox = letterbox_image(image, detector.head.input_size)
    return quantise_image(detector, canvas), letterbox


def head_outputs(detector: Detector, int8_input: np.ndarray) -> list[np.ndarray]:
    """The int8 head outputs (head order) of the reference runtime on ``int8_input``."""
    env = detector.interpreter.invoke_all([int8_input])
    return [env[name] for name in detector.binding.tensors]


def detect_reference(detector: Detector, int8_input: np.ndarray,
                     config: DetectConfig = DetectConfig()) -> np.ndarray:
    """Fixed-point boxes (int64 [N, 6], `fixed.detect_fixed`) of one int8 input: what the
    generated C's ``mf_detect`` returns for it."""
    return detect_fixed(head_outputs(detector, int8_input), detector.binding.quant, detector.head,
                        config)


def detect_image(detector: Detector, image: np.ndarray,
                 config: DetectConfig = DetectConfig()) -> np.ndarray:
    """Float boxes [N, 6] ``[x0, y0, x1, y1, score, class]`` in ``image``'s pixels."""
    int8_input, letterbox = prepare_image(detector, image)
    return boxes_to_image(fixed_to_float(detect_reference(detector, int8_input, config)), letterbox)


_COLOURS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230))


def draw_boxes(image: np.ndarray, boxes: np.ndarray, path: str | Path,
               class_names: Sequence[str] | None = None) -> Path:
    """Write ``image`` with ``boxes`` (image pixels) drawn and labelled (class, score) to ``path``
    (the format from its suffix, written atomically)."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(np.asarray(image, dtype=np.uint8))
    draw = ImageDraw.Draw(picture)
    for x0, y0, x1, y1, score, cls in np.asarray(boxes).reshape(-1, 6):
        colour = _COLOURS[int(cls) % len(_COLOURS)]
        name = class_names[int(cls)] if class_names and int(cls) < len(class_names) else str(int(cls))
        draw.rectangle([float(x0), float(y0), float(x1), float(y1)], outline=colour, width=2)
        draw.text((float(x0) + 2, float(y0) + 1), f"{name} {score:.2f}", fill=colour)
    path = Path(path)
    buffer = io.BytesIO()
    suffix = path.suffix.lower().lstrip(".") or "png"
    try:
        picture.save(buffer, format={"jpg": "jpeg"}.get(suffix, suffix))
    except (KeyError, ValueError) as error:
        raise McuforgeError(f"{path}: cannot write an image of type .{suffix} ({error})") from None
    if not (path.parent if str(path.parent) else Path(".")).is_dir():
        raise McuforgeError(f"{path}: folder {path.parent} does not exist")
    return write_bytes_atomic(path, buffer.getvalue())
