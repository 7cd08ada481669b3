"""Running a quantised graph on float data: input quantisation, batching, predictions.

`quantize_input` applies the graph input's quantisation to float model input exactly as TFLite's
QUANTIZE does (``round(x / scale) + zero_point``, rounding half away from zero, saturated to int8).
The reference runtime runs int4 weights directly (int4 only changes how weights are stored).
`with_batch` rewrites every activation's leading (batch) dimension so that the reference runtime,
whose kernels take any batch, runs many images in one call; weights are untouched, so the result
per image is the same as with batch 1. `int8_logits` runs a whole data set through the reference
runtime in such batches.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..ir import Graph, OpKind, ReshapeAttrs, Tensor, validate
from ..arith.fixedpoint import round_half_away


def quantize_input(graph: Graph, x: np.ndarray | torch.Tensor, layout: str = "NCHW") -> np.ndarray:
    """Float model input (NCHW as torch models take it, or NHWC) -> int8 NHWC graph input."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float32)
    if layout == "NCHW" and x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    quant = graph.tensor(graph.inputs[0]).quant
    if quant is None:
        raise ValueError(f"graph input {graph.inputs[0]!r} is not quantised")
    scaled = round_half_away(x / np.float32(quant.scale[0])).astype(np.int64) + quant.zero_point[0]
    return np.clip(scaled, -128, 127).astype(np.int8)


def with_batch(graph: Graph, batch_size: int) -> Graph:
    """A copy of ``graph`` whose activations have leading dimension ``batch_size``."""
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    tensors: dict[str, Tensor] = {}
    for name, tensor in graph.tensors.items():
        if tensor.constant or not tensor.shape:
            tensors[name] = tensor
        else:
            tensors[name] = replace(tensor, shape=(batch_size,) + tuple(tensor.shape[1:]))
    ops = []
    for op in graph.ops:
        if op.kind is OpKind.RESHAPE:
            op = replace(op, attrs=ReshapeAttrs((batch_size,) + tuple(op.attrs.new_shape[1:])))
        ops.append(op)
    return validate(replace(graph, tensors=tensors, ops=tuple(ops)))


def int8_logits(graph: Graph, inputs: np.ndarray, batch_size: int = 250) -> np.ndarray:
    """Run int8 NHWC ``inputs`` [N, H, W, C] through the reference runtime, ``batch_size`` images
    per call; returns the int8 outputs stacked [N, ...]."""
    from ..runtime.reference import Interpreter

    outputs = []
    interpreters: dict[int, Interpreter] = {}
    for first in range(0, len(inputs), batch_size):
        chunk = np.ascontiguousarray(inputs[first:first + batch_size])
        n = len(chunk)
        if n not in interpreters:
            interpreters[n] = Interpreter(with_batch(graph, n))
        outputs.append(interpreters[n].invoke([chunk])[0])
    return np.concatenate(outputs, axis=0)


def int8_accuracy(graph: Graph, dataset, resolution: int, in_channels: int, samples: int | None = None,
                  batch: int = 250) -> tuple[float, int]:
    """(top-1 accuracy, images scored) of the int8 ``graph`` run by the reference runtime on the
    first ``samples`` images of ``dataset`` (all by default), prepared as for evaluation."""
    from ..data.transforms import eval_batch

    count = len(dataset) if samples is None else min(samples, len(dataset))
    correct = 0
    for first in range(0, count, batch):
        indices = np.arange(first, min(first + batch, count))
        images, labels = dataset.batch(indices)
        x = quantize_input(graph, eval_batch(images, resolution, in_channels))
        logits = int8_logits(graph, x, batch_size=len(indices)).reshape(len(indices), -1)
        correct += int((logits.argmax(1) == np.asarray(labels)).sum())
    return correct / max(1, count), count
