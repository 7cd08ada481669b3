"""ONNX in, end to end: `from_onnx` reads an .onnx file (`frontends/onnx_import.py`) and, for a
float model given calibration data, quantises it with TFLite's full-integer scheme
(`quant/graph_ptq.py`) into an int8 graph that writes to .tflite and compiles to C. A QDQ model
(already quantised, e.g. by ``onnxruntime.quantization.quantize_static``) is its int8 graph as read;
it needs no calibration.

Calibration data is in the ONNX model's own layout (NCHW for images, as onnxruntime takes it): an
array of shape [N, *input shape without batch] (or one sample with the batch dimension of 1), or an
iterable of such arrays; rank-4 samples are transposed to the IR's NHWC input here. Data in any
other shape (NHWC images included) is refused in one line naming the expected shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import McuforgeError
from ..frontends.onnx_import import read_onnx
from ..ir import Graph
from .graph_ptq import quantize_float_graph
from .torch_import import to_ir_layout

NHWC_TO_NCHW = (0, 3, 1, 2)


def is_float_onnx(graph: Graph) -> bool:
    """True for a graph read from a float (not QDQ-quantised) ONNX model."""
    return graph.metadata.get("format") == "onnx" and graph.metadata.get("quantisation") == "float"


def onnx_input_shape(graph: Graph) -> tuple[int, ...]:
    """The shape of the graph's input in the ONNX model's layout (NCHW for a rank-4 input)."""
    shape = graph.tensor(graph.inputs[0]).shape
    return tuple(shape[p] for p in NHWC_TO_NCHW) if len(shape) == 4 else tuple(shape)


def onnx_calibration_inputs(graph: Graph, data: Any) -> list[np.ndarray]:
    """ONNX-layout calibration samples (see the module doc) -> NHWC arrays of the graph input's
    shape, one per sample; data of another shape is refused in one line."""
    want = onnx_input_shape(graph)
    items = [data] if isinstance(data, np.ndarray) else list(data)
    for item in items:
        shape = tuple(np.shape(item))
        if shape[-(len(want) - 1):] != want[1:] or len(shape) not in (len(want) - 1, len(want)):
            raise McuforgeError(
                f"calibration data of shape {list(shape)} does not hold inputs of the ONNX model's "
                f"shape {list(want)} ([N, {', '.join(map(str, want[1:]))}], in the model's own "
                f"{'NCHW ' if len(want) == 4 else ''}layout)")
    return to_ir_layout(graph, items)


def quantize_onnx_graph(graph: Graph, calibration: Any, observer: str = "minmax") -> Graph:
    """The int8 graph of a float ONNX ``graph`` calibrated on ONNX-layout samples."""
    return quantize_float_graph(graph, onnx_calibration_inputs(graph, calibration), observer)


def from_onnx(path: str | Path, calibration: Any = None, *, observer: str = "minmax") -> Graph:
    """The IR graph of the .onnx file at ``path``: a QDQ model's int8 graph (``calibration`` is not
    needed and not used); a float model's float32 graph, or with ``calibration`` (samples in the
    ONNX model's layout, NCHW for images) its int8 graph."""
    graph = read_onnx(path)
    if calibration is None or not is_float_onnx(graph):
        return graph
    return quantize_onnx_graph(graph, calibration, observer)


__all__ = ["from_onnx", "is_float_onnx", "onnx_calibration_inputs", "onnx_input_shape",
           "quantize_onnx_graph"]
