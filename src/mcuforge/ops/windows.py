"""Sliding-window helpers shared by the convolution and pooling reference kernels.

A window op (conv, depthwise conv, pooling) with explicit pads reads, for output pixel (oy, ox) and
kernel tap (ky, kx), the input pixel (oy * stride_h - pad_top + ky * dilation_h, ...). Padding the
input once and taking one strided slice per tap turns the op into kh * kw vectorised array
operations, with no Python loop over pixels.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..ir import Pads
from ..ir.shapes import conv_output_hw


def pad_spatial(x: np.ndarray, pads: Pads, value=0) -> np.ndarray:
    """Pad the H and W axes of an NHWC array with ``value``. Negative pads crop."""
    crop = x[:, max(-pads.top, 0): x.shape[1] - max(-pads.bottom, 0),
             max(-pads.left, 0): x.shape[2] - max(-pads.right, 0), :]
    widths = ((0, 0), (max(pads.top, 0), max(pads.bottom, 0)),
              (max(pads.left, 0), max(pads.right, 0)), (0, 0))
    if not any(lo or hi for lo, hi in widths):
        return crop
    return np.pad(crop, widths, mode="constant", constant_values=value)


def output_hw(in_h: int, in_w: int, kernel: tuple[int, int], stride: tuple[int, int], pads: Pads,
              dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """Output height and width; raises ValueError when the window does not fit."""
    out_h, out_w = conv_output_hw(in_h, in_w, kernel, stride, pads, dilation)
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"input {in_h}x{in_w} with pads {pads} is too small for kernel {kernel}")
    return out_h, out_w


def window_taps(padded: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                dilation: tuple[int, int], out_hw: tuple[int, int]
                ) -> Iterator[tuple[int, int, np.ndarray]]:
    """For each kernel tap (ky, kx), the [N, out_h, out_w, C] view of the padded input it reads."""
    out_h, out_w = out_hw
    for ky in range(kernel[0]):
        y0 = ky * dilation[0]
        for kx in range(kernel[1]):
            x0 = kx * dilation[1]
            yield ky, kx, padded[:, y0: y0 + (out_h - 1) * stride[0] + 1: stride[0],
                                 x0: x0 + (out_w - 1) * stride[1] + 1: stride[1], :]
