"""Where a `SpecNet`'s activations become int8 tensors, and calibration of their ranges.

The int8 graph of a spec (`frontends/spec_graph.py`) names its ops after the spec's blocks: ``b0``
for a ``cn`` block, ``b3.expand`` / ``b3.dw`` / ``b3.project`` / ``b3.add`` inside an inverted
residual, ``b1.dw`` / ``b1.pw`` in a depthwise-separable block, ``b19.pool`` and ``b20.fc``.
`layer_modules` maps each op that computes a new activation to the torch module whose output is
that activation (the residual ADD maps to the whole block, whose output is the sum), so that the
same names serve calibration (forward hooks with observers), quantisation-aware training (forward
hooks with fake quantisers) and export (weights of the mapped module). The graph input's range is
recorded under ``"input"``. AVERAGE_POOL_2D keeps its input's quantisation (TFLite requires it), so
pool blocks have no entry.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..errors import UnsupportedOpError
from ..frontends.spec_torch import (Classifier, ConvBNAct, DepthwiseSeparable, GlobalPool,
                                    InvertedResidual, SpecNet)
from .observers import make_observer

INPUT = "input"


def _check_activation(layer: nn.Module, name: str) -> None:
    if isinstance(layer.act, nn.Hardswish):
        raise UnsupportedOpError(f"quantisation of h-swish activations is not supported ({name})")


def layer_modules(model: SpecNet) -> dict[str, nn.Module]:
    """Map from int8-graph op name to the module whose output is that op's output (see module doc).

    Raises `UnsupportedOpError` for blocks the int8 export does not handle (squeeze-excite,
    h-swish)."""
    layers: dict[str, nn.Module] = {}
    for index, block in enumerate(model.blocks):
        label = f"b{index}"
        if isinstance(block, ConvBNAct):
            _check_activation(block, label)
            layers[label] = block
        elif isinstance(block, DepthwiseSeparable):
            for part in ("dw", "pw"):
                _check_activation(getattr(block, part), f"{label}.{part}")
                layers[f"{label}.{part}"] = getattr(block, part)
        elif isinstance(block, InvertedResidual):
            if block.se is not None:
                raise UnsupportedOpError(f"quantisation of squeeze-excite blocks is not supported "
                                         f"({label})")
            if block.expand is not None:
                _check_activation(block.expand, f"{label}.expand")
                layers[f"{label}.expand"] = block.expand
            _check_activation(block.dw, f"{label}.dw")
            layers[f"{label}.dw"] = block.dw
            layers[f"{label}.project"] = block.project
            if block.residual:
                layers[f"{label}.add"] = block
        elif isinstance(block, Classifier):
            _check_activation(block, label)
            layers[f"{label}.fc"] = block
        elif not isinstance(block, GlobalPool):
            raise UnsupportedOpError(f"block {label} ({type(block).__name__}) cannot be quantised")
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
    layers = layer_modules(model)
    observers = {name: make_observer(observer) for name in (INPUT, *layers)}
    handles = []
    for name, module in layers.items():
        handles.append(module.register_forward_hook(
            lambda _m, _args, output, name=name: observers[name].observe(output)))
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
