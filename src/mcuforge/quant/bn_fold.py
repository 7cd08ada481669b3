"""Batch-norm folding: a convolution followed by inference-mode BatchNorm is one convolution.

BatchNorm in eval mode computes ``y = gamma * (z - mean) / sqrt(var + eps) + beta`` per channel, and
``z = conv(x, W) + b`` is linear in ``W`` and ``b``. With ``s = gamma / sqrt(var + eps)``:

    W' = W * s          (scaled along the output channel, torch's dimension 0)
    b' = (b - mean) * s + beta

gives ``conv(x, W') + b' == bn(conv(x, W) + b)`` exactly in real arithmetic (in float32 up to
rounding). Quantisation works on the folded weights: one weight tensor and one int32 bias per conv,
as TFLite's converter does.

`folded_conv` returns the folded (weight, bias) of one ``ConvBNAct`` in torch's layout; `fold_batchnorm`
rewrites a whole `SpecNet` in place so that every ``ConvBNAct`` has a biased conv and no BatchNorm
(used before quantisation-aware training, whose last epochs then train the folded weights).
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.spec_torch import ConvBNAct, SpecNet


def fold_weights(weight: torch.Tensor, bias: torch.Tensor | None,
                 bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(W', b') of a conv with ``weight`` [out, in/groups, kh, kw] and optional ``bias`` followed by
    ``bn`` in inference mode (running statistics); ``bn=None`` returns the weights unchanged with a
    zero bias where there was none."""
    out_channels = weight.shape[0]
    if bias is None:
        bias = torch.zeros(out_channels, dtype=weight.dtype, device=weight.device)
    if bn is None:
        return weight, bias
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("BatchNorm without running statistics cannot be folded")
    gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
    scale = gamma / torch.sqrt(bn.running_var + bn.eps)
    folded_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    folded_bias = (bias - bn.running_mean) * scale + beta
    return folded_weight, folded_bias


def folded_conv(layer: ConvBNAct) -> tuple[torch.Tensor, torch.Tensor]:
    """The folded (weight, bias) of one ``ConvBNAct`` (detached, float32, torch layout)."""
    bn = layer.bn if isinstance(layer.bn, nn.BatchNorm2d) else None
    with torch.no_grad():
        weight, bias = fold_weights(layer.conv.weight, layer.conv.bias, bn)
    return weight.detach().float().clone(), bias.detach().float().clone()


def fold_batchnorm(model: SpecNet) -> SpecNet:
    """Fold every ``ConvBNAct``'s BatchNorm into its conv, in place: the conv gets a bias, the
    BatchNorm becomes ``nn.Identity``. The model computes the same function (eval mode) afterwards.
    Returns ``model``."""
    for module in model.modules():
        if not isinstance(module, ConvBNAct) or not isinstance(module.bn, nn.BatchNorm2d):
            continue
        weight, bias = folded_conv(module)
        conv = module.conv
        new_conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                             conv.padding, conv.dilation, conv.groups, bias=True)
        with torch.no_grad():
            new_conv.weight.copy_(weight)
            new_conv.bias.copy_(bias)
        module.conv = new_conv.to(conv.weight.device)
        module.bn = nn.Identity()
    return model
