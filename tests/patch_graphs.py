"""Small int8 graphs with random weights and quantisation, for the patch-based execution tests."""

from __future__ import annotations

import math

import numpy as np

from mcuforge.ir import (RELU6, ConvAttrs, DType, ElementwiseAttrs, Graph, NO_CLAMP, OpKind,
                         PadAttrs, Pads, PoolAttrs, QuantParams)
from mcuforge.ir.builder import GraphBuilder


class RandomNet:
    """Builds an int8 graph block by block; weights, biases and scales are random but chosen so that
    activations spread over the int8 range instead of saturating."""

    def __init__(self, seed: int, resolution: int | tuple[int, int], channels: int = 3):
        self.rng = np.random.default_rng(seed)
        height, width = (resolution, resolution) if isinstance(resolution, int) else resolution
        self.b = GraphBuilder(f"random{seed}")
        self.x = self.b.input("input", (1, height, width, channels), DType.INT8, self._act_q(0.05))
        self.blocks = 0

    def _act_q(self, scale: float) -> QuantParams:
        return QuantParams.per_tensor(scale, int(self.rng.integers(-20, 20)))

    def conv(self, x: str, out_c: int, kernel: int, stride: int = 1, depthwise: bool = False,
             pads: Pads | None = None, dilation: int = 1, clamp=RELU6) -> str:
        """CONV_2D or DEPTHWISE_CONV_2D with per-channel weights; default pads: k//2 each edge."""
        shape = self.b.shape(x)
        in_c = shape[3]
        out_c = in_c if depthwise else out_c
        w_shape = (1, kernel, kernel, out_c) if depthwise else (out_c, kernel, kernel, in_c)
        w_scales = tuple(float(s) for s in self.rng.uniform(0.002, 0.01, out_c))
        w_q = QuantParams(w_scales, (0,) * out_c, 3 if depthwise else 0)
        weight = self.b.constant("w", w_shape, DType.INT8,
                                 self.rng.integers(-127, 128, w_shape).astype(np.int8), w_q)
        x_scale = self.b.tensors[x].quant.scale[0]
        bias_q = QuantParams(tuple(x_scale * s for s in w_scales), (0,) * out_c, 0)
        bias = self.b.constant("b", (out_c,), DType.INT32,
                               self.rng.integers(-2000, 2000, out_c).astype(np.int32), bias_q)
        fan_in = kernel * kernel * (1 if depthwise else in_c)
        out_scale = x_scale * float(np.mean(w_scales)) * 30 * math.sqrt(fan_in)
        pads = Pads.symmetric((kernel - 1) * dilation // 2) if pads is None else pads
        attrs = ConvAttrs((stride, stride), pads, (dilation, dilation), clamp)
        kind = OpKind.DEPTHWISE_CONV_2D if depthwise else OpKind.CONV_2D
        return self.b.op(kind, [x, weight, bias], attrs, name="dw" if depthwise else "conv",
                         quant=self._act_q(out_scale))

    def add(self, a: str, b: str) -> str:
        """Residual ADD."""
        scale = 1.3 * max(self.b.tensors[a].quant.scale[0], self.b.tensors[b].quant.scale[0])
        return self.b.op(OpKind.ADD, [a, b], ElementwiseAttrs(NO_CLAMP), name="add",
                         quant=self._act_q(scale))

    def pad(self, x: str, top: int, bottom: int, left: int, right: int) -> str:
        """Explicit PAD (as TFLite models put before VALID convolutions)."""
        return self.b.op(OpKind.PAD, [x], PadAttrs(((0, 0), (top, bottom), (left, right), (0, 0))),
                         name="pad", quant=self.b.tensors[x].quant)

    def pool(self, x: str, kind: OpKind, kernel: int, stride: int, pads: Pads = Pads()) -> str:
        """AVERAGE_POOL_2D or MAX_POOL_2D (same quantisation in and out, as TFLite requires)."""
        return self.b.op(kind, [x], PoolAttrs((kernel, kernel), (stride, stride), pads), name="pool",
                         quant=self.b.tensors[x].quant)

    def mbconv(self, x: str, out_c: int, kernel: int, stride: int, expand: int = 3) -> str:
        """Inverted residual block (residual when shapes allow)."""
        in_c = self.b.shape(x)[3]
        self.b.begin_block()
        y = self.conv(x, in_c * expand, 1)
        y = self.conv(y, 0, kernel, stride, depthwise=True)
        y = self.conv(y, out_c, 1, clamp=NO_CLAMP)
        residual = stride == 1 and in_c == out_c
        if residual:
            y = self.add(y, x)
        self.end_block("mbconv", residual)
        return y

    def begin(self) -> None:
        """Start a block."""
        self.b.begin_block()

    def end_block(self, kind: str = "block", residual: bool = False) -> None:
        """Close the current block as b<N>."""
        self.b.end_block(f"b{self.blocks}", kind, residual)
        self.blocks += 1

    def head(self, x: str) -> Graph:
        """Global average pool and finish the graph."""
        shape = self.b.shape(x)
        self.begin()
        y = self.b.op(OpKind.AVERAGE_POOL_2D, [x], PoolAttrs((shape[1], shape[2]), (1, 1)),
                      name="pool", quant=self.b.tensors[x].quant)
        self.end_block("head")
        return self.b.finish([y])

    def random_input(self) -> np.ndarray:
        """A random int8 input for the graph."""
        shape = self.b.tensors["input"].shape
        return self.rng.integers(-128, 128, shape).astype(np.int8)
