"""Quantisation-aware training: fake quantisation with the straight-through estimator.

`prepare_qat(model, calibration_batches)` turns a trained float `SpecNet` into one that computes,
in float, what the int8 graph will compute, so that the last epochs of training adapt the weights to
quantisation:

1. batch norm is folded into the convolutions (`quant/bn_fold.py`): the int8 graph has no BN, and
   the QAT epochs train the folded weights directly;
2. every conv and linear weight is fake-quantised per output channel and symmetrically, as PTQ
   quantises it (``round(w / s)`` clipped to +-127, or +-7 for int4, times ``s = max|w| / qmax``),
   through a ``torch.nn.utils.parametrize`` parametrisation;
3. every activation that the int8 graph holds (the points of `quant/calibrate.layer_modules`, and the
   graph input) passes through an `ActivationFakeQuant`: asymmetric int8 with a learnable range
   [low, high], initialised from calibration. The global average pool reuses its input's quantiser,
   as the int8 AVERAGE_POOL_2D keeps its input's quantisation.

Rounding uses the straight-through estimator (the gradient of ``round`` is taken as 1). The range
gets gradients as in LSQ (Esser et al., 2020): through the scale, with the gradient scaled by
``1 / sqrt(numel * 127)`` so that the range moves slowly next to the weights. After training,
`quant/ptq.quantize_spec_net` exports the model with these learned ranges (`learned_ranges`).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..frontends.spec_torch import Classifier, ConvBNAct, GlobalPool, SpecNet
from .bn_fold import fold_batchnorm
from .calibrate import INPUT, calibrate, layer_modules
from .observers import MIN_RANGE, QMAX, QMIN
from .weights import weight_qmax


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` forward, identity backward (straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


def _grad_scaled(value: torch.Tensor, factor: float) -> torch.Tensor:
    """``value`` forward; its gradient multiplied by ``factor`` backward."""
    return value * factor + (value - value * factor).detach()


class WeightFakeQuant(nn.Module):
    """Per-channel (dimension 0 of torch's layout) symmetric fake quantisation of a weight."""

    def __init__(self, bits: int = 8, per_channel: bool = True):
        super().__init__()
        self.qmax = weight_qmax(bits)
        self.per_channel = per_channel

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        """The weight rounded to its quantisation grid (straight-through gradient)."""
        if self.per_channel:
            max_abs = weight.detach().abs().amax(dim=tuple(range(1, weight.dim())), keepdim=True)
        else:
            max_abs = weight.detach().abs().max()
        scale = torch.where(max_abs > 0, max_abs / self.qmax, torch.ones_like(max_abs))
        return torch.clamp(round_ste(weight / scale), -self.qmax, self.qmax) * scale


class ActivationFakeQuant(nn.Module):
    """Asymmetric int8 fake quantisation with a learnable real range [low, high] (0 included)."""

    def __init__(self, low: float, high: float):
        super().__init__()
        self.low = nn.Parameter(torch.tensor(float(min(low, 0.0))))
        self.high = nn.Parameter(torch.tensor(float(max(high, 0.0))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(clamp(round(x / s) + z, -128, 127) - z) * s`` with s, z from the current range."""
        factor = 1.0 / math.sqrt(max(1, x.numel()) * QMAX)
        low = torch.clamp(_grad_scaled(self.low, factor), max=0.0)
        high = torch.clamp(_grad_scaled(self.high, factor), min=0.0)
        scale = torch.clamp(high - low, min=MIN_RANGE) / (QMAX - QMIN)
        zero_point = torch.clamp(torch.round(QMIN - low.detach() / scale.detach()), QMIN, QMAX)
        q = torch.clamp(round_ste(x / scale) + zero_point, QMIN, QMAX)
        return (q - zero_point) * scale

    def range(self) -> tuple[float, float]:
        """The current (low, high)."""
        return float(self.low.detach()), float(self.high.detach())


def _key(name: str) -> str:
    return name.replace(".", "/")


# The hooks find their quantiser through the module they run on (no closures), so that a deep copy
# of a prepared model uses its own copies of the quantisers. The quantiser is kept outside the
# module's registered children (it is registered once, in ``model.activation_quantizers``).
_QUANTIZER_ATTRIBUTE = "_mcuforge_output_quantizer"


def _quantize_output(module: nn.Module, _args: tuple, output: torch.Tensor) -> torch.Tensor:
    return getattr(module, _QUANTIZER_ATTRIBUTE)(output)


def _quantize_input(model: nn.Module, args: tuple) -> tuple:
    return (model.activation_quantizers[_key(INPUT)](args[0]),) + tuple(args[1:])


def _attach_output_quantizer(module: nn.Module, quantizer: ActivationFakeQuant) -> None:
    object.__setattr__(module, _QUANTIZER_ATTRIBUTE, quantizer)
    module.register_forward_hook(_quantize_output)


def prepare_qat(model: SpecNet, calibration_batches: Iterable[object] | None = None, *,
                ranges: Mapping[str, tuple[float, float]] | None = None, weight_bits: int = 8,
                observer: str = "minmax", fc_per_channel: bool = True,
                int4_fc: bool = False) -> SpecNet:
    """Prepare ``model`` (in place) for quantisation-aware training; see the module doc. Ranges
    start from ``ranges`` or from calibrating on ``calibration_batches``. ``weight_bits``,
    ``fc_per_channel`` and ``int4_fc`` mean what they mean for `quantize_spec_net`, which exports
    the trained model with the same settings. Returns ``model``."""
    if hasattr(model, "activation_quantizers"):
        raise ValueError("model is already prepared for quantisation-aware training")
    if ranges is None:
        if calibration_batches is None:
            raise ValueError("prepare_qat needs calibration batches or ranges")
        ranges = calibrate(model, calibration_batches, observer)
    fold_batchnorm(model)
    layers = layer_modules(model)
    for module in model.modules():
        if isinstance(module, ConvBNAct):
            parametrize.register_parametrization(module.conv, "weight", WeightFakeQuant(weight_bits))
        elif isinstance(module, Classifier):
            fc_bits = weight_bits if int4_fc else 8
            parametrize.register_parametrization(
                module.linear, "weight", WeightFakeQuant(fc_bits, fc_per_channel))
    quantizers = nn.ModuleDict({_key(name): ActivationFakeQuant(*ranges[name])
                                for name in (INPUT, *layers)})
    model.activation_quantizers = quantizers
    model.qat_config = {"weight_bits": weight_bits, "fc_per_channel": fc_per_channel,
                        "int4_fc": int4_fc}
    model.register_forward_pre_hook(_quantize_input)
    for name, module in layers.items():
        _attach_output_quantizer(module, quantizers[_key(name)])
    previous = INPUT
    for index, block in enumerate(model.blocks):
        if isinstance(block, GlobalPool):
            _attach_output_quantizer(block, quantizers[_key(previous)])
        for name in layers:
            if name == f"b{index}" or name.startswith(f"b{index}."):
                previous = name
    return model


def learned_ranges(model: nn.Module) -> dict[str, tuple[float, float]] | None:
    """The activation ranges of a model prepared by `prepare_qat` (by op name, the input under
    ``"input"``), or None for a plain float model."""
    quantizers = getattr(model, "activation_quantizers", None)
    if quantizers is None:
        return None
    return {key.replace("/", "."): quantizer.range() for key, quantizer in quantizers.items()}

