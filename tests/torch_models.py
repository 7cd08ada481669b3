"""PyTorch models for tests/test_torch_import.py: a user's model with a residual and a concat,
torchvision's MobileNetV3-Small written out layer for layer, and two models that cover the other
aten ops the frontend takes."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class ResidualConcatNet(nn.Module):
    """A user's model: conv-BN-ReLU6 stem, a residual block, two branches concatenated, max and
    average pooling, a flatten of a 2x2 map and a linear classifier."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(8), nn.ReLU6())
        self.res = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                 nn.ReLU6(), nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.left = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.right = nn.Conv2d(8, 4, 1)
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(2)
        self.fc = nn.Linear(12 * 2 * 2, classes)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu6(x + self.res(x))
        x = torch.cat([self.left(x), F.relu6(self.right(x))], dim=1)
        x = self.avg(self.pool(x))
        return self.fc(torch.flatten(x, 1))


def _bn(channels: int) -> nn.BatchNorm2d:
    """torchvision MobileNetV3's batch norm."""
    return nn.BatchNorm2d(channels, eps=0.001, momentum=0.01)


def _hardswish_conv(cin, cout, k, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         _bn(cout), nn.Hardswish())


class SqueezeExcite(nn.Module):
    """torchvision's SqueezeExcitation: mean, 1x1 reduce + ReLU, 1x1 expand, hard sigmoid, mul."""

    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return s * x


class InvertedResidual(nn.Module):
    """torchvision's MobileNetV3 InvertedResidual (expand, depthwise, SE, project, residual)."""

    def __init__(self, cin, mid, cout, k, stride, se, act):
        super().__init__()
        act_layer = nn.Hardswish if act == "hs" else nn.ReLU
        layers = []
        if mid != cin:
            layers += [nn.Conv2d(cin, mid, 1, bias=False), _bn(mid), act_layer()]
        layers += [nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False),
                   _bn(mid), act_layer()]
        if se:
            layers.append(SqueezeExcite(mid, _make_divisible(mid // 4)))
        layers += [nn.Conv2d(mid, cout, 1, bias=False), _bn(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return y + x if self.residual else y


def _make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


# torchvision.models.mobilenet_v3_small's inverted_residual_setting: (in, kernel, expanded, out,
# squeeze-excite, activation, stride).
_MBV3_SMALL = [(16, 3, 16, 16, True, "re", 2), (16, 3, 72, 24, False, "re", 2),
               (24, 3, 88, 24, False, "re", 1), (24, 5, 96, 40, True, "hs", 2),
               (40, 5, 240, 40, True, "hs", 1), (40, 5, 240, 40, True, "hs", 1),
               (40, 5, 120, 48, True, "hs", 1), (48, 5, 144, 48, True, "hs", 1),
               (48, 5, 288, 96, True, "hs", 2), (96, 5, 576, 96, True, "hs", 1),
               (96, 5, 576, 96, True, "hs", 1)]


class MobileNetV3Small(nn.Module):
    """torchvision's mobilenet_v3_small(num_classes=10), layer for layer (same config, SE widths,
    activations, head 576 -> 1024 -> classes), written out because torchvision is not installable
    here."""

    def __init__(self, classes: int = 10, blocks=_MBV3_SMALL):
        super().__init__()
        layers = [_hardswish_conv(3, 16, 3, 2)]
        for cin, k, mid, cout, se, act, stride in blocks:
            layers.append(InvertedResidual(cin, mid, cout, k, stride, se, act))
        last = blocks[-1][3]
        layers.append(_hardswish_conv(last, 6 * last, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(6 * last, 1024), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(1024, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class KitchenSink(nn.Module):
    """Every other supported aten op: dilation, depth multiplier, standalone BN, upsample, pad,
    sigmoid, tanh, hardtanh(0, 6), mean, mul by a scalar, view of a 4-D map, a 2-D concat."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=2, dilation=2)
        self.dw = nn.Conv2d(6, 12, 3, padding=1, groups=6)
        self.bn = nn.BatchNorm2d(12)
        self.head = nn.Linear(12 * 5 * 5 + 12, 5)

    def forward(self, x):
        x = F.hardtanh(self.conv(x), 0.0, 6.0)
        y = self.bn(F.max_pool2d(self.dw(x), 2))
        y = F.pad(F.interpolate(torch.sigmoid(y), scale_factor=2, mode="nearest"), (1, 1, 0, 2))
        z = F.adaptive_avg_pool2d(torch.tanh(y) * 0.5, 5)
        features = torch.cat([z.view(z.shape[0], -1), y.mean(dim=(2, 3))], dim=1)
        return self.head(features)


class Extras(nn.Module):
    """sub, a strided max pool, softmax over the channels of a 4-D map, flatten with end_dim."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 6, 3, padding=1)
        self.b = nn.Conv2d(2, 6, 1)

    def forward(self, x):
        y = F.max_pool2d(self.a(x) - self.b(x), 3, stride=2)
        return torch.flatten(torch.softmax(y, dim=1), 1, -1)
