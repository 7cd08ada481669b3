"""The letterbox transform: an image fitted into the model's input with its aspect ratio kept
(resized by one scale, centred, the rest filled), and boxes mapped back to the image's pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LETTERBOX_FILL = 114  # the grey YOLO implementations pad with


@dataclass(frozen=True)
class Letterbox:
    """How an image of ``image_size`` (height, width) sits in the model input of ``input_size``:
    resized by ``scale`` to ``resized`` (height, width), then padded by ``pad`` (top, left)."""

    image_size: tuple[int, int]
    input_size: tuple[int, int]
    scale: float
    resized: tuple[int, int]
    pad: tuple[int, int]


def letterbox_transform(image_size: tuple[int, int], input_size: tuple[int, int]) -> Letterbox:
    """The aspect-preserving fit of ``image_size`` (h, w) into ``input_size`` (h, w), centred."""
    scale = min(input_size[0] / image_size[0], input_size[1] / image_size[1])
    resized = (max(1, min(input_size[0], int(round(image_size[0] * scale)))),
               max(1, min(input_size[1], int(round(image_size[1] * scale)))))
    pad = ((input_size[0] - resized[0]) // 2, (input_size[1] - resized[1]) // 2)
    return Letterbox(tuple(image_size), tuple(input_size), scale, resized, pad)


def boxes_to_image(boxes: np.ndarray, letterbox: Letterbox) -> np.ndarray:
    """Map float [N, 6] boxes from the model's input pixels to the original image's pixels (undo
    the padding, then the scale, per axis), clipped to the image."""
    result = np.asarray(boxes, dtype=np.float64).reshape(-1, 6).copy()
    scale_y = letterbox.resized[0] / letterbox.image_size[0]
    scale_x = letterbox.resized[1] / letterbox.image_size[1]
    for column, pad, scale, limit in ((0, letterbox.pad[1], scale_x, letterbox.image_size[1]),
                                      (1, letterbox.pad[0], scale_y, letterbox.image_size[0]),
                                      (2, letterbox.pad[1], scale_x, letterbox.image_size[1]),
                                      (3, letterbox.pad[0], scale_y, letterbox.image_size[0])):
        result[:, column] = np.clip((result[:, column] - pad) / scale, 0, limit)
    return result


def letterbox_image(image: np.ndarray, input_size: tuple[int, int],
                    fill: int = LETTERBOX_FILL) -> tuple[np.ndarray, Letterbox]:
    """``image`` (uint8 [h, w, c]) resized (bilinear, pillow) into a ``fill``-padded uint8
    [input_h, input_w, c], and the `Letterbox` that maps boxes back."""
    from PIL import Image

    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[..., None]
    letterbox = letterbox_transform(array.shape[:2], input_size)
    channels = array.shape[2]
    resized_hw = letterbox.resized
    planes = [np.asarray(Image.fromarray(array[..., c]).resize((resized_hw[1], resized_hw[0]),
                                                                Image.BILINEAR))
              for c in range(channels)]
    canvas = np.full((*input_size, channels), fill, dtype=np.uint8)
    top, left = letterbox.pad
    canvas[top:top + resized_hw[0], left:left + resized_hw[1]] = np.stack(planes, axis=-1)
    return canvas, letterbox
