"""NetSpec -> IR Graph, for analysis: int8 activations, int8 (or int4) weights, int32 biases.

Weights carry no values (``data=None``): this graph answers "will it fit" before any training.
Batch norm is folded (every conv has a bias). Convolutions with an odd kernel pad ``k // 2`` on
every edge (PyTorch's ``padding=k//2``, which is what the trained weights expect); an even kernel
(e.g. DS-CNN's 10x4 stem) pads as TensorFlow's SAME (`conv_pads`, which the torch module applies
too). The graph's metadata holds
``params_incl_bn``, the trainable parameter count of the PyTorch model (BN gamma and beta included),
the figure papers and mcunet's tools report.
"""

from __future__ import annotations

from ..ir import (RELU, RELU6, ConvAttrs, DType, ElementwiseAttrs, FullyConnectedAttrs, Graph,
                  NO_CLAMP, OpKind, Pads, PoolAttrs)
from ..ir.builder import GraphBuilder
from ..errors import SpecError
from .dsl import BlockSpec, NetSpec, make_divisible

_CLAMPS = {"relu": RELU, "relu6": RELU6, "none": NO_CLAMP, "hswish": NO_CLAMP}


def mid_channels(block: BlockSpec, in_channels: int) -> int:
    """Width of an inverted-residual block's expanded features."""
    if block.mid_channels is not None:
        return block.mid_channels
    return in_channels if block.expand == 1 else round(in_channels * block.expand)


def conv_pads(in_hw: tuple[int, int], kernel_hw: tuple[int, int], stride: int) -> Pads:
    """The pads of a spec conv: ``k // 2`` per edge for an odd kernel size, TensorFlow's SAME for
    an even one (per dimension)."""
    same = Pads.same(in_hw[0], in_hw[1], kernel_hw, (stride, stride))
    top, bottom = (kernel_hw[0] // 2,) * 2 if kernel_hw[0] % 2 else (same.top, same.bottom)
    left, right = (kernel_hw[1] // 2,) * 2 if kernel_hw[1] % 2 else (same.left, same.right)
    return Pads(top, bottom, left, right)


def yolo_channels(block: BlockSpec, num_classes: int) -> int:
    """Output channels of a ``yolo`` head: per anchor (tx, ty, tw, th, objectness, classes)."""
    return block.anchors * (5 + num_classes)


def has_residual(block: BlockSpec, in_channels: int) -> bool:
    """Whether an ``ir`` block adds its input to its output."""
    return block.kind == "ir" and block.residual and block.stride == 1 and in_channels == block.out_channels


class _SpecGraphBuilder:
    def __init__(self, spec: NetSpec, name: str):
        self.spec = spec
        self.b = GraphBuilder(name)
        self.params_incl_bn = 0

    def conv(self, x: str, out_c: int, kernel: int | tuple[int, int], stride: int, act: str,
             depthwise: bool, label: str, int4: bool, bn: bool = True) -> str:
        shape = self.b.shape(x)
        in_c = shape[3]
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        weight_dtype = DType.INT4 if int4 else DType.INT8
        if depthwise:
            w = self.b.constant(f"{label}.weight", (1, kh, kw, in_c), weight_dtype)
            out_c = in_c
            self.params_incl_bn += kh * kw * in_c
        else:
            w = self.b.constant(f"{label}.weight", (out_c, kh, kw, in_c), weight_dtype)
            self.params_incl_bn += out_c * kh * kw * in_c
        bias = self.b.constant(f"{label}.bias", (out_c,), DType.INT32)
        self.params_incl_bn += 2 * out_c if bn else out_c
        pads = conv_pads((shape[1], shape[2]), (kh, kw), stride)
        attrs = ConvAttrs((stride, stride), pads, clamp=_CLAMPS[act])
        kind = OpKind.DEPTHWISE_CONV_2D if depthwise else OpKind.CONV_2D
        y = self.b.op(kind, [x, w, bias], attrs, name=label)
        if act == "hswish":
            y = self.b.op(OpKind.HARD_SWISH, [y], name=f"{label}.hswish")
        return y

    def squeeze_excite(self, x: str, ratio: float, label: str) -> str:
        channels = self.b.shape(x)[3]
        reduced = make_divisible(channels * ratio, 8)
        pooled = self.b.op(OpKind.MEAN, [x], _mean_hw(), name=f"{label}.pool")
        s = self.conv(pooled, reduced, 1, 1, "relu", False, f"{label}.reduce", False, bn=False)
        s = self.conv(s, channels, 1, 1, "none", False, f"{label}.expand", False, bn=False)
        # Hard sigmoid relu6(s + 3) / 6, as TFLite expresses it.
        three = self.b.constant(f"{label}.three", (1,), DType.INT8)
        sixth = self.b.constant(f"{label}.sixth", (1,), DType.INT8)
        s = self.b.op(OpKind.ADD, [s, three], ElementwiseAttrs(RELU6), name=f"{label}.hsig_add")
        s = self.b.op(OpKind.MUL, [s, sixth], ElementwiseAttrs(), name=f"{label}.hsig_scale")
        return self.b.op(OpKind.MUL, [x, s], ElementwiseAttrs(), name=f"{label}.gate")

    def block(self, index: int, block: BlockSpec, x: str) -> str:
        label = f"b{index}"
        shape = self.b.shape(x)
        in_c = shape[-1]
        self.b.begin_block()
        if block.kind == "cn":
            y = self.conv(x, block.out_channels, block.kernel_hw, block.stride, block.act, False, label,
                          block.int4)
            self.b.end_block(label, "conv")
        elif block.kind == "ds":
            y = self.conv(x, in_c, block.kernel, block.stride, block.act, True, f"{label}.dw", block.int4)
            y = self.conv(y, block.out_channels, 1, 1, block.act, False, f"{label}.pw", block.int4)
            self.b.end_block(label, "dwsep")
        elif block.kind == "ir":
            mid = mid_channels(block, in_c)
            y = x
            if mid != in_c or block.expand != 1:
                y = self.conv(y, mid, 1, 1, block.act, False, f"{label}.expand", block.int4)
            y = self.conv(y, mid, block.kernel, block.stride, block.act, True, f"{label}.dw", block.int4)
            if block.se_ratio:
                y = self.squeeze_excite(y, block.se_ratio, f"{label}.se")
            y = self.conv(y, block.out_channels, 1, 1, "none", False, f"{label}.project", block.int4)
            residual = has_residual(block, in_c)
            if residual:
                y = self.b.op(OpKind.ADD, [y, x], ElementwiseAttrs(), name=f"{label}.add")
            self.b.end_block(label, "mbconv", residual)
        elif block.kind == "pool":
            y = self.b.op(OpKind.AVERAGE_POOL_2D, [x], PoolAttrs((shape[1], shape[2]), (1, 1)),
                          name=f"{label}.pool")
            self.b.end_block(label, "pool")
        elif block.kind == "fc":
            features = shape[-1] if len(shape) == 2 else shape[1] * shape[2] * shape[3]
            w = self.b.constant(f"{label}.weight", (block.out_channels, features),
                                DType.INT4 if block.int4 else DType.INT8)
            bias = self.b.constant(f"{label}.bias", (block.out_channels,), DType.INT32)
            self.params_incl_bn += block.out_channels * features + block.out_channels
            act = "none" if block.act == "hswish" else block.act
            y = self.b.op(OpKind.FULLY_CONNECTED, [x, w, bias], FullyConnectedAttrs(_CLAMPS[act]),
                          name=f"{label}.fc")
            if block.act == "hswish":
                y = self.b.op(OpKind.HARD_SWISH, [y], name=f"{label}.hswish")
            self.b.end_block(label, "fc")
        elif block.kind == "yolo":
            y = self.conv(x, yolo_channels(block, self.spec.num_classes), block.kernel, 1, "none", False,
                          label, block.int4, bn=False)
            self.b.end_block(label, "yolo")
        else:  # pragma: no cover - parse_block rejects other kinds
            raise SpecError(f"unknown block kind {block.kind}")
        return y


def _mean_hw():
    from ..ir import MeanAttrs
    return MeanAttrs((1, 2), True)


def build_graph(spec: NetSpec, name: str | None = None) -> Graph:
    """The analytic int8 IR graph of ``spec`` (see module docstring)."""
    builder = _SpecGraphBuilder(spec, name or spec.name or "net")
    x = builder.b.input("input", (1, *spec.input_hw, spec.in_channels), DType.INT8)
    for index, block in enumerate(spec.blocks):
        shape = builder.b.shape(x)
        if block.kind in ("cn", "ds", "ir", "pool", "yolo") and len(shape) != 4:
            raise SpecError(f"block {index} ({block.to_string()}) needs a 4-D feature map, "
                            f"but the previous block flattened it")
        if block.kind in ("cn", "ds", "ir") and min(shape[1], shape[2]) < block.stride:
            raise SpecError(f"resolution {spec.resolution} is too small: block {index} "
                            f"({block.to_string()}) gets a {shape[1]}x{shape[2]} feature map")
        try:
            x = builder.block(index, block, x)
        except ValueError as exc:
            raise SpecError(f"block {index} ({block.to_string()}): {exc}") from None
    return builder.b.finish([x], {"params_incl_bn": builder.params_incl_bn, "spec": spec.to_string()})
