"""A float32 evaluation of an IR graph in numpy: what post-training quantisation of a float graph
(`quant/graph_ptq.py`) calibrates on, and how the float-vs-int8 agreement is measured.

It covers the kinds the PyTorch and ONNX frontends (`frontends/torch_export.py`,
`frontends/onnx_import.py`) emit: CONV_2D, DEPTHWISE_CONV_2D (explicit pads, stride, dilation,
depth multiplier), FULLY_CONNECTED, AVERAGE_POOL_2D / MAX_POOL_2D (padding outside every
window, as TFLite), ADD, MUL, SUB, CONCATENATION, RESHAPE, TRANSPOSE, MEAN, PAD,
RESIZE_NEAREST_NEIGHBOR, RELU, RELU6, HARD_SWISH, LOGISTIC, TANH, SOFTMAX, with fused clamps.
Activations are NHWC like the IR. Computed in float64, stored as float32.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph, Op, OpKind


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
             dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
    """[N, OH, OW, kh, kw, C] sliding windows of an NHWC array (already padded)."""
    n, h, w, c = x.shape
    kh, kw = kernel
    eh, ew = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    oh, ow = (h - eh) // stride[0] + 1, (w - ew) // stride[1] + 1
    sn, sh, sw, sc = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, oh, ow, kh, kw, c),
        (sn, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1], sc),
        writeable=False)


def _clamp(y: np.ndarray, clamp: tuple[float, float]) -> np.ndarray:
    return np.clip(y, clamp[0], clamp[1])


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, attrs, depthwise: bool) -> np.ndarray:
    p = attrs.pads
    x = np.pad(x, ((0, 0), (p.top, p.bottom), (p.left, p.right), (0, 0)))
    kh, kw = w.shape[1:3]
    win = _windows(x, (kh, kw), attrs.stride, attrs.dilation)
    if depthwise:
        mult = attrs.depth_multiplier
        win = np.repeat(win, mult, axis=5) if mult > 1 else win
        y = np.einsum("nhwijc,ijc->nhwc", win, w[0], optimize=True)
    else:
        y = np.einsum("nhwijc,oijc->nhwo", win, w, optimize=True)
    return _clamp(y + b, attrs.clamp)


def _fc(x: np.ndarray, w: np.ndarray, b: np.ndarray, attrs) -> np.ndarray:
    return _clamp(x.reshape(-1, w.shape[1]) @ w.T + b, attrs.clamp)


def _pool(x: np.ndarray, attrs, average: bool) -> np.ndarray:
    """MAX/AVERAGE_POOL_2D as TFLite computes them: padding is never part of a window (a max ignores
    it, an average divides by the count of real elements)."""
    p = attrs.pads
    spatial = ((0, 0), (p.top, p.bottom), (p.left, p.right), (0, 0))
    if average:
        total = _windows(np.pad(x, spatial), attrs.kernel, attrs.stride).sum(axis=(3, 4))
        ones = np.pad(np.ones((1, *x.shape[1:3], 1)), spatial)
        count = _windows(ones, attrs.kernel, attrs.stride).sum(axis=(3, 4))
        y = total / count
    else:
        padded = np.pad(x, spatial, constant_values=-np.inf)
        y = _windows(padded, attrs.kernel, attrs.stride).max(axis=(3, 4))
    return _clamp(y, attrs.clamp)


def _resize(x: np.ndarray, attrs) -> np.ndarray:
    _, h, w, _ = x.shape
    oh, ow = attrs.size

    def index(size: int, out: int) -> np.ndarray:
        if attrs.align_corners and out > 1:
            scale = (size - 1) / (out - 1)
        else:
            scale = size / out
        offset = 0.5 if attrs.half_pixel_centers else 0.0
        pos = (np.arange(out) + offset) * scale
        pos = np.round(pos) if attrs.align_corners else np.floor(pos)
        return np.minimum(pos.astype(np.int64), size - 1)
    return x[:, index(h, oh)][:, :, index(w, ow)]


def _softmax(x: np.ndarray, attrs) -> np.ndarray:
    z = (x - x.max(axis=-1, keepdims=True)) * attrs.beta
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _kernel(op: Op) -> Callable[..., np.ndarray]:
    a = op.attrs
    k = op.kind
    table: dict[OpKind, Callable[..., np.ndarray]] = {
        OpKind.CONV_2D: lambda x, w, b: _conv(x, w, b, a, False),
        OpKind.DEPTHWISE_CONV_2D: lambda x, w, b: _conv(x, w, b, a, True),
        OpKind.FULLY_CONNECTED: lambda x, w, b: _fc(x, w, b, a),
        OpKind.AVERAGE_POOL_2D: lambda x: _pool(x, a, True),
        OpKind.MAX_POOL_2D: lambda x: _pool(x, a, False),
        OpKind.ADD: lambda x, y: _clamp(x + y, a.clamp),
        OpKind.SUB: lambda x, y: _clamp(x - y, a.clamp),
        OpKind.MUL: lambda x, y: _clamp(x * y, a.clamp),
        OpKind.CONCATENATION: lambda *xs: _clamp(np.concatenate(xs, axis=a.axis), a.clamp),
        OpKind.RESHAPE: lambda x: x.reshape(a.new_shape),
        OpKind.TRANSPOSE: lambda x: x.transpose(a.perm),
        OpKind.MEAN: lambda x: x.mean(axis=a.axes, keepdims=a.keep_dims),
        OpKind.PAD: lambda x: np.pad(x, a.paddings),
        OpKind.RESIZE_NEAREST_NEIGHBOR: lambda x: _resize(x, a),
        OpKind.RELU: lambda x: np.maximum(x, 0.0),
        OpKind.RELU6: lambda x: np.clip(x, 0.0, 6.0),
        OpKind.HARD_SWISH: lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
        OpKind.LOGISTIC: lambda x: 1.0 / (1.0 + np.exp(-x)),
        OpKind.TANH: np.tanh,
        OpKind.SOFTMAX: lambda x: _softmax(x, a),
    }
    if k not in table:
        raise UnsupportedOpError(f"float evaluation of {k.value} ({op.name}) is not supported")
    return table[k]


def evaluate_float(graph: Graph, inputs: Sequence[np.ndarray],
                   observe: Callable[[str, np.ndarray], None] | None = None) -> list[np.ndarray]:
    """Run the float graph on ``inputs`` (NHWC float arrays, one per graph input) and return its
    outputs; ``observe(tensor_name, value)`` is called for every input and op output."""
    env: dict[str, np.ndarray] = {}
    for name, value in zip(graph.inputs, inputs):
        env[name] = np.asarray(value, dtype=np.float64).reshape(graph.tensor(name).shape)
        if observe is not None:
            observe(name, env[name])
    for op in graph.ops:
        args = [env[n] if n in env else np.asarray(graph.tensor(n).data, dtype=np.float64)
                for n in op.inputs]
        y = np.asarray(_kernel(op)(*args), dtype=np.float64)
        env[op.outputs[0]] = y.reshape(graph.tensor(op.outputs[0]).shape)
        if observe is not None:
            observe(op.outputs[0], env[op.outputs[0]])
    return [env[name].astype(np.float32) for name in graph.outputs]


__all__ = ["evaluate_float"]
