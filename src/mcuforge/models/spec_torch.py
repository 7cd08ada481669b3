"""NetSpec -> PyTorch ``nn.Module`` (NCHW float input, logits out).

The module's ``blocks`` list holds one module per spec block, in the same order as the IR graph's
blocks (`spec_graph.py`), so that per-block shapes can be compared and weights mapped. Convolutions
pad ``k // 2`` (odd kernels) or as TensorFlow's SAME (even kernels, `spec_graph.conv_pads`); every
conv but SE's is followed by BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn

from .dsl import BlockSpec, NetSpec, make_divisible
from .spec_graph import conv_pads, has_residual, mid_channels, yolo_channels


def activation(name: str) -> nn.Module:
    """The torch module of a DSL activation name."""
    return {"relu": nn.ReLU(inplace=True), "relu6": nn.ReLU6(inplace=True),
            "hswish": nn.Hardswish(inplace=True), "none": nn.Identity()}[name]


class ConvBNAct(nn.Module):
    """Conv2d (no bias) + BatchNorm2d + activation; an even kernel pads as TensorFlow's SAME."""

    def __init__(self, in_c: int, out_c: int, kernel: int | tuple[int, int], stride: int, act: str,
                 groups: int = 1):
        super().__init__()
        self.kernel_hw = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        self.stride = stride
        self.odd = all(k % 2 for k in self.kernel_hw)
        padding = tuple(k // 2 for k in self.kernel_hw) if self.odd else 0
        self.conv = nn.Conv2d(in_c, out_c, self.kernel_hw, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_c)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[pad] -> conv -> bn -> act."""
        if not self.odd:
            pads = conv_pads((x.shape[2], x.shape[3]), self.kernel_hw, self.stride)
            x = nn.functional.pad(x, (pads.left, pads.right, pads.top, pads.bottom))
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-excite: mean, 1x1 reduce + ReLU, 1x1 expand, hard-sigmoid gate."""

    def __init__(self, channels: int, ratio: float):
        super().__init__()
        reduced = make_divisible(channels * ratio, 8)
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x * hardsigmoid(expand(relu(reduce(mean(x)))))."""
        s = x.mean((2, 3), keepdim=True)
        s = self.expand(torch.relu(self.reduce(s)))
        return x * nn.functional.hardsigmoid(s)


class DepthwiseSeparable(nn.Module):
    """MobileNetV1 block: depthwise kxk + BN + act, pointwise 1x1 + BN + act."""

    def __init__(self, in_c: int, block: BlockSpec):
        super().__init__()
        self.dw = ConvBNAct(in_c, in_c, block.kernel, block.stride, block.act, groups=in_c)
        self.pw = ConvBNAct(in_c, block.out_channels, 1, 1, block.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """dw -> pw."""
        return self.pw(self.dw(x))


class InvertedResidual(nn.Module):
    """MobileNetV2/MCUNet block: [expand 1x1] depthwise kxk [SE] project 1x1 (linear) [+ input]."""

    def __init__(self, in_c: int, block: BlockSpec):
        super().__init__()
        mid = mid_channels(block, in_c)
        self.expand = ConvBNAct(in_c, mid, 1, 1, block.act) if (mid != in_c or block.expand != 1) else None
        self.dw = ConvBNAct(mid, mid, block.kernel, block.stride, block.act, groups=mid)
        self.se = SqueezeExcite(mid, block.se_ratio) if block.se_ratio else None
        self.project = ConvBNAct(mid, block.out_channels, 1, 1, "none")
        self.residual = has_residual(block, in_c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's computation."""
        y = self.expand(x) if self.expand is not None else x
        y = self.dw(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return y + x if self.residual else y


class GlobalPool(nn.Module):
    """Global average pool to ``[N, C]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over height and width."""
        return x.mean((2, 3))


class Classifier(nn.Module):
    """Linear (with bias) + activation."""

    def __init__(self, in_features: int, block: BlockSpec):
        super().__init__()
        self.linear = nn.Linear(in_features, block.out_channels)
        self.act = activation(block.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """linear -> act (flattening a 4-D input first)."""
        return self.act(self.linear(torch.flatten(x, 1)))


class YoloHead(nn.Module):
    """A ``yolo`` block: one biased conv (no BN, no activation) to anchors * (5 + classes)
    channels, NCHW out; channel ``a * (5 + C) + k`` is field k of anchor a (tx, ty, tw, th, obj,
    classes)."""

    def __init__(self, in_c: int, block: BlockSpec, num_classes: int):
        super().__init__()
        self.anchors = block.anchors
        self.num_classes = num_classes
        self.conv = nn.Conv2d(in_c, yolo_channels(block, num_classes), block.kernel, 1, block.kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The raw head outputs [N, A * (5 + C), H, W]."""
        return self.conv(x)


class SpecNet(nn.Module):
    """A network built from a NetSpec; ``spec`` is kept for export and printing."""

    def __init__(self, spec: NetSpec):
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        channels = spec.in_channels
        for block in spec.blocks:
            if block.kind == "cn":
                layers.append(ConvBNAct(channels, block.out_channels, block.kernel_hw, block.stride, block.act))
                channels = block.out_channels
            elif block.kind == "ds":
                layers.append(DepthwiseSeparable(channels, block))
                channels = block.out_channels
            elif block.kind == "ir":
                layers.append(InvertedResidual(channels, block))
                channels = block.out_channels
            elif block.kind == "pool":
                layers.append(GlobalPool())
            elif block.kind == "fc":
                layers.append(Classifier(channels, block))
                channels = block.out_channels
            elif block.kind == "yolo":
                layers.append(YoloHead(channels, block, spec.num_classes))
                channels = yolo_channels(block, spec.num_classes)
        self.blocks = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run every block in order."""
        for block in self.blocks:
            x = block(x)
        return x


def build_torch(spec: NetSpec) -> SpecNet:
    """The PyTorch module of ``spec``."""
    return SpecNet(spec)
