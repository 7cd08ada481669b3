"""Elastic layers of the supernet (once-for-all, Cai et al. 2020): max-size weights, sliced per subnet.

* `DynamicBatchNorm2d`: a BatchNorm2d over the maximum channels; a narrower input uses (and, while
  training, updates) the first channels' statistics and affine parameters.
* `DynamicPointwise`: a 1x1 conv + BN + activation holding a ``[max_out, max_in]`` weight; it uses the
  first ``active_out`` output channels and as many input channels as it is given.
* `DynamicDepthwise`: a depthwise conv + BN + activation with a 7x7 (max) kernel. Elastic kernel with
  *kernel transformation*: the 5x5 kernel is the centre 5x5 of the 7x7 one times a learnt 25x25
  matrix, the 3x3 kernel the centre of the 5x5 one times a learnt 9x9 matrix (both start as the
  identity and are shared by all channels of the layer), so that the small kernels need not equal
  the big kernel's centre.

Every module has a ``config`` (constructor arguments) from which ``type(m)(**m.config)`` rebuilds it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.spec_torch import activation


class DynamicBatchNorm2d(nn.Module):
    """BatchNorm2d over ``max_channels``, applied to the first C channels of a C-channel input."""

    def __init__(self, max_channels: int):
        super().__init__()
        self.max_channels = max_channels
        self.bn = nn.BatchNorm2d(max_channels)

    @property
    def config(self) -> dict:
        """Constructor arguments."""
        return {"max_channels": self.max_channels}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Batch norm of the first ``x.shape[1]`` channels (running statistics sliced, as nn.BatchNorm2d)."""
        bn, channels = self.bn, x.shape[1]
        factor = 0.0
        if self.training and bn.track_running_stats:
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        use_batch = self.training or not bn.track_running_stats
        return F.batch_norm(x, bn.running_mean[:channels], bn.running_var[:channels], bn.weight[:channels],
                            bn.bias[:channels], use_batch, factor, bn.eps)

    def export(self, channels: int) -> nn.BatchNorm2d:
        """A plain BatchNorm2d with this layer's first ``channels`` channels."""
        out = nn.BatchNorm2d(channels, eps=self.bn.eps, momentum=self.bn.momentum)
        with torch.no_grad():
            out.weight.copy_(self.bn.weight[:channels])
            out.bias.copy_(self.bn.bias[:channels])
            out.running_mean.copy_(self.bn.running_mean[:channels])
            out.running_var.copy_(self.bn.running_var[:channels])
            out.num_batches_tracked.copy_(self.bn.num_batches_tracked)
        return out


class DynamicPointwise(nn.Module):
    """1x1 conv (no bias) + BN + activation with elastic output width ``active_out``."""

    def __init__(self, max_in: int, max_out: int, act: str):
        super().__init__()
        self.max_in, self.max_out, self.act_name = max_in, max_out, act
        self.weight = nn.Parameter(torch.empty(max_out, max_in, 1, 1))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.bn = DynamicBatchNorm2d(max_out)
        self.act = activation(act)
        self.active_out = max_out

    @property
    def config(self) -> dict:
        """Constructor arguments."""
        return {"max_in": self.max_in, "max_out": self.max_out, "act": self.act_name}

    def active_weight(self, in_channels: int) -> torch.Tensor:
        """The ``[active_out, in_channels, 1, 1]`` slice in use."""
        return self.weight[: self.active_out, :in_channels]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """conv -> bn -> act on the active slice."""
        return self.act(self.bn(F.conv2d(x, self.active_weight(x.shape[1]))))


class DynamicDepthwise(nn.Module):
    """Depthwise conv (no bias) + BN + activation with an elastic kernel (see module doc)."""

    def __init__(self, max_channels: int, kernels: tuple[int, ...], stride: int, act: str):
        super().__init__()
        self.max_channels, self.kernels, self.stride, self.act_name = max_channels, tuple(sorted(kernels)), stride, act
        self.max_kernel = self.kernels[-1]
        self.weight = nn.Parameter(torch.empty(max_channels, 1, self.max_kernel, self.max_kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        # One transformation matrix per step down (7->5 as "7to5", 5->3 as "5to3").
        self.transforms = nn.ParameterDict({
            f"{big}to{small}": nn.Parameter(torch.eye(small * small))
            for big, small in zip(self.kernels[:0:-1], self.kernels[-2::-1])})
        self.bn = DynamicBatchNorm2d(max_channels)
        self.act = activation(act)
        self.active_kernel = self.max_kernel

    @property
    def config(self) -> dict:
        """Constructor arguments."""
        return {"max_channels": self.max_channels, "kernels": self.kernels, "stride": self.stride,
                "act": self.act_name}

    def active_weight(self, channels: int, kernel: int | None = None) -> torch.Tensor:
        """The ``[channels, 1, k, k]`` kernel of size ``kernel`` (default: the active one)."""
        kernel = self.active_kernel if kernel is None else kernel
        weight = self.weight[:channels]
        size = self.max_kernel
        for big, small in zip(self.kernels[:0:-1], self.kernels[-2::-1]):
            if size <= kernel:
                break
            start = (big - small) // 2
            centre = weight[:, :, start:start + small, start:start + small].reshape(channels, small * small)
            weight = (centre @ self.transforms[f"{big}to{small}"]).reshape(channels, 1, small, small)
            size = small
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """depthwise conv -> bn -> act with the active kernel."""
        channels = x.shape[1]
        kernel = self.active_kernel
        y = F.conv2d(x, self.active_weight(channels), stride=self.stride, padding=kernel // 2, groups=channels)
        return self.act(self.bn(y))


class DynamicInvertedResidual(nn.Module):
    """An inverted-residual block with elastic kernel and expansion (fixed in/out widths and stride)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernels: tuple[int, ...],
                 expands: tuple[int, ...], act: str = "relu6"):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.kernels, self.expands, self.act_name = tuple(kernels), tuple(expands), act
        max_mid = in_channels * max(expands)
        self.expand = DynamicPointwise(in_channels, max_mid, act)
        self.dw = DynamicDepthwise(max_mid, kernels, stride, act)
        self.project = DynamicPointwise(max_mid, out_channels, "none")
        self.residual = stride == 1 and in_channels == out_channels
        self.active_expand = max(expands)

    @property
    def config(self) -> dict:
        """Constructor arguments."""
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "stride": self.stride,
                "kernels": self.kernels, "expands": self.expands, "act": self.act_name}

    @property
    def active_kernel(self) -> int:
        """The depthwise kernel size in use."""
        return self.dw.active_kernel

    def set_active(self, kernel: int, expand: int) -> None:
        """Choose the kernel size and expansion ratio of the block."""
        if kernel not in self.kernels or expand not in self.expands:
            raise ValueError(f"kernel {kernel} / expansion {expand} not in {self.kernels} / {self.expands}")
        self.dw.active_kernel = kernel
        self.active_expand = expand
        self.expand.active_out = self.mid_channels

    @property
    def mid_channels(self) -> int:
        """Expanded width in use (as the DSL computes it: ``round(in * e)``)."""
        return round(self.in_channels * self.active_expand)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """expand -> depthwise -> project [+ x]."""
        y = self.project(self.dw(self.expand(x)))
        return y + x if self.residual else y
