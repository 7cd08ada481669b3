"""PyTorch in, end to end: `from_torch` (an ``nn.Module``) and `import_pt2` (a ``torch.export.save``
file) give the float IR graph of `frontends/torch_export.py`, or, with calibration data, the int8
graph of `quant/graph_ptq.py` that writes to .tflite and compiles to C.

Calibration data is in torch's layout (NCHW for images): an array of shape [N, *input shape
without batch], or an iterable of such arrays or tensors; it is transposed to the IR's NHWC here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import McuforgeError
from ..frontends.torch_export import NCHW_TO_NHWC, convert_exported_program, export_module, load_pt2
from ..ir import Graph
from .graph_ptq import quantize_float_graph


def to_ir_layout(graph: Graph, data: Any) -> list[np.ndarray]:
    """Torch-layout samples (NCHW) -> NHWC arrays of the graph input's shape, one per sample."""
    shape = graph.tensor(graph.inputs[0]).shape
    torch_shape = (shape[0], shape[3], shape[1], shape[2]) if len(shape) == 4 else shape
    if hasattr(data, "detach"):
        data = data.detach().cpu().numpy()
    items = [data] if isinstance(data, np.ndarray) else list(data)
    samples: list[np.ndarray] = []
    for item in items:
        if isinstance(item, (tuple, list)):
            item = item[0]
        if hasattr(item, "detach"):
            item = item.detach().cpu().numpy()
        array = np.asarray(item, dtype=np.float32)
        if array.size % int(np.prod(torch_shape)):
            raise McuforgeError(f"calibration data of shape {array.shape} does not hold model "
                                f"inputs of shape {list(torch_shape[1:])}")
        for one in array.reshape((-1, *torch_shape[1:])):
            one = one[None]
            samples.append(one.transpose(NCHW_TO_NHWC) if len(shape) == 4 else one)
    return samples


def _finish(graph: Graph, calibration: Any, observer: str) -> Graph:
    if calibration is None:
        return graph
    return quantize_float_graph(graph, to_ir_layout(graph, calibration), observer)


def from_torch(module: Any, example_input: Any, calibration: Any = None, *,
               observer: str = "minmax", name: str | None = None) -> Graph:
    """The IR graph of ``module`` exported with `torch.export` on ``example_input`` (batch 1): the
    float32 graph, or with ``calibration`` (torch-layout samples) the int8 graph."""
    program = export_module(module, example_input)
    graph = convert_exported_program(program, name or type(module).__name__)
    return _finish(graph, calibration, observer)


def import_pt2(path: str | Path, calibration: Any = None, *, observer: str = "minmax") -> Graph:
    """The IR graph of a ``torch.export.save`` file: float32, or int8 with ``calibration``."""
    return _finish(load_pt2(path), calibration, observer)


__all__ = ["from_torch", "import_pt2", "to_ir_layout", "convert_exported_program"]
