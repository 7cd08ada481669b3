"""Where a `SpecNet`'s activations become int8 tensors, and calibration of their ranges.

The int8 graph of a spec (`models/spec_graph.py`) names its ops after the spec's blocks: ``b0``
for a ``cn`` block, ``b3.expand`` / ``b3.dw`` / ``b3.project`` / ``b3.add`` inside an inverted
residual, ``b1.dw`` / ``b1.pw`` in a depthwise-separable block, ``b19.pool`` and ``b20.fc``. A conv
(or the classifier) with h-swish is the conv without activation followed by a HARD_SWISH op named
``<conv>.hswish`` (``b20.hswish`` after the classifier ``b20.fc``). A squeeze-excite block inside
``b5`` is ``b5.se.pool`` (MEAN over H and W), ``b5.se.reduce`` (1x1 conv + ReLU), ``b5.se.expand``
(1x1 conv), the hard sigmoid ``b5.se.hsig_add`` (ADD of the constant 3 with RELU6) and
``b5.se.hsig_scale`` (MUL by the constant 1/6), and ``b5.se.gate`` (MUL of the block's features by
the hard sigmoid). A ``yolo`` detection head ``b18`` is one biased conv named ``b18``.

`activation_points` says, for each op that computes a new activation, which torch module computes it
and how to read it from that module's forward call (its output, the output before the module's
activation, or a function of its input); `calibrate` observes the ranges there (the graph input's
under ``"input"``). The hard sigmoid's two ops have no point: their output ranges are fixed
([0, 6] and [0, 1]; see `quant/ptq.py`). AVERAGE_POOL_2D keeps its input's quantisation (TFLite
requires it), so pool blocks have no point either. `weight_modules` maps each weighted op to the
module that holds its float weights (for PTQ export).

`layer_modules` is the older, narrower map used by quantisation-aware training (`quant/qat.py`):
every point is a module's plain output, which holds for networks without h-swish and squeeze-excite
(it raises `UnsupportedOpError` for those).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from ..errors import UnsupportedOpError
from ..models.spec_torch import (Classifier, ConvBNAct, DepthwiseSeparable, GlobalPool,
                                    InvertedResidual, SpecNet, SqueezeExcite, YoloHead)
from .observers import make_observer

INPUT = "input"


@dataclass(frozen=True)
class ActivationPoint:
    """Where an activation is read: ``read(inputs, output)`` of ``module``'s forward call (inside a
    forward hook), or the output itself when ``read`` is None."""

    module: nn.Module
    read: Callable[[tuple, torch.Tensor], torch.Tensor] | None = None

    def value(self, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        """The activation of one forward call."""
        return output if self.read is None else self.read(inputs, output)


def _conv_points(layer: ConvBNAct | Classifier, name: str,
                 hswish_name: str | None = None) -> dict[str, ActivationPoint]:
    """Points of a conv (or the classifier): ``name`` is its output before an h-swish activation
    (after BN), ``hswish_name`` (default ``name.hswish``) the activation's output; without h-swish
    ``name`` is the layer's output."""
    if not isinstance(layer.act, nn.Hardswish):
        return {name: ActivationPoint(layer)}
    before = layer.bn if isinstance(layer, ConvBNAct) else layer.linear
    # The hook runs before the (in-place) h-swish touches the tensor, and observers read it at once.
    return {name: ActivationPoint(before), hswish_name or f"{name}.hswish": ActivationPoint(layer)}


def _se_points(se: SqueezeExcite, label: str) -> dict[str, ActivationPoint]:
    """Points of a squeeze-excite block (see the module doc; the hard sigmoid has none)."""
    def pooled(args: tuple, _output: torch.Tensor) -> torch.Tensor:
        return args[0].mean((2, 3), keepdim=True)

    return {f"{label}.pool": ActivationPoint(se, pooled),
            f"{label}.reduce": ActivationPoint(se.reduce),
            f"{label}.expand": ActivationPoint(se.expand),
            f"{label}.gate": ActivationPoint(se)}


def activation_points(model: SpecNet) -> dict[str, ActivationPoint]:
    """Every op of the int8 graph that computes a new activation with a calibrated range, by op
    name, with where to read that activation in ``model`` (see the module doc)."""
    points: dict[str, ActivationPoint] = {}
    for index, block in enumerate(model.blocks):
        label = f"b{index}"
        if isinstance(block, ConvBNAct):
            points.update(_conv_points(block, label))
        elif isinstance(block, DepthwiseSeparable):
            points.update(_conv_points(block.dw, f"{label}.dw"))
            points.update(_conv_points(block.pw, f"{label}.pw"))
        elif isinstance(block, InvertedResidual):
            if block.expand is not None:
                points.update(_conv_points(block.expand, f"{label}.expand"))
            points.update(_conv_points(block.dw, f"{label}.dw"))
            if block.se is not None:
                points.update(_se_points(block.se, f"{label}.se"))
            points[f"{label}.project"] = ActivationPoint(block.project)
            if block.residual:
                points[f"{label}.add"] = ActivationPoint(block)
        elif isinstance(block, Classifier):
            points.update(_conv_points(block, f"{label}.fc", f"{label}.hswish"))
        elif isinstance(block, YoloHead):
            points[label] = ActivationPoint(block.conv)
        elif not isinstance(block, GlobalPool):
            raise UnsupportedOpError(f"block {label} ({type(block).__name__}) cannot be quantised")
    return points


def weight_modules(model: SpecNet) -> dict[str, nn.Module]:
    """Map from each weighted op of the int8 graph (conv, depthwise, FC) to the module holding its
    float weights: a ``ConvBNAct`` (BN folded at export), a ``Classifier``, or the plain biased
    ``nn.Conv2d`` of a squeeze-excite block or a ``yolo`` head."""
    modules: dict[str, nn.Module] = {}
    for index, block in enumerate(model.blocks):
        label = f"b{index}"
        if isinstance(block, ConvBNAct):
            modules[label] = block
        elif isinstance(block, DepthwiseSeparable):
            modules.update({f"{label}.dw": block.dw, f"{label}.pw": block.pw})
        elif isinstance(block, InvertedResidual):
            if block.expand is not None:
                modules[f"{label}.expand"] = block.expand
            modules[f"{label}.dw"] = block.dw
            if block.se is not None:
                modules[f"{label}.se.reduce"] = block.se.reduce
                modules[f"{label}.se.expand"] = block.se.expand
            modules[f"{label}.project"] = block.project
        elif isinstance(block, Classifier):
            modules[f"{label}.fc"] = block
        elif isinstance(block, YoloHead):
            modules[label] = block.conv
    return modules


def layer_modules(model: SpecNet) -> dict[str, nn.Module]:
    """Map from int8-graph op name to the module whose output is that op's output (see module doc):
    the points of `activation_points` when every one is a plain module output.

    Raises `UnsupportedOpError` for h-swish and squeeze-excite blocks, whose points are not
    (quantisation-aware training does not handle them; post-training quantisation does)."""
    layers: dict[str, nn.Module] = {}
    for name, point in activation_points(model).items():
        if name.endswith(".hswish"):
            raise UnsupportedOpError(f"quantisation-aware training of h-swish activations is not "
                                     f"supported ({name.removesuffix('.hswish')})")
        if ".se." in name:
            raise UnsupportedOpError(f"quantisation-aware training of squeeze-excite blocks is not "
                                     f"supported ({name.split('.se.')[0]})")
        layers[name] = point.module
    return layers


def _as_input(batch: object) -> torch.Tensor:
    """A calibration batch may be a tensor or an (inputs, labels) pair."""
    if isinstance(batch, (tuple, list)):
        batch = batch[0]
    if not isinstance(batch, torch.Tensor):
        batch = torch.as_tensor(batch)
    return batch.float()


@torch.no_grad()
def calibrate(model: SpecNet, batches: Iterable[object], observer: str = "minmax"
              ) -> dict[str, tuple[float, float]]:
    """Run ``batches`` (float NCHW model inputs, or (inputs, labels) pairs; a single 4-D tensor is
    one batch) through ``model`` in eval mode and return the observed (low, high) range of every
    activation, by op name, with the graph input under ``"input"``."""
    if isinstance(batches, torch.Tensor) and batches.dim() == 4:
        batches = [batches]
    points = activation_points(model)
    observers = {name: make_observer(observer) for name in (INPUT, *points)}
    handles = []
    for name, point in points.items():
        handles.append(point.module.register_forward_hook(
            lambda _m, args, output, name=name, point=point:
            observers[name].observe(point.value(args, output))))
    was_training = model.training
    model.eval()
    seen = 0
    try:
        for batch in batches:
            x = _as_input(batch)
            observers[INPUT].observe(x)
            model(x)
            seen += 1
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if seen == 0:
        raise ValueError("calibration needs at least one batch")
    return {name: obs.range() for name, obs in observers.items()}


def batch_norm_statistics(model: nn.Module, batches: Iterable[object]) -> nn.Module:
    """Give every ``BatchNorm2d`` of ``model`` the mean and variance of its input over ``batches``
    (float NCHW inputs, or (inputs, labels) pairs), as a trained network's are; returns ``model``
    in eval mode. For random weights: their default statistics (mean 0, variance 1) let
    activations vanish or explode through a deep network, which makes int8 ranges meaningless."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over all the batches
    model.train()
    try:
        with torch.no_grad():
            for batch in batches:
                model(_as_input(batch))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.eval()
    return model
