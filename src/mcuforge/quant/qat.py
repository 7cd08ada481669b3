"""Quantisation-aware training: fake quantisation with the straight-through estimator.

`prepare_qat(model, calibration_batches)` turns a trained float `SpecNet` into one that computes,
in float, what the int8 graph will compute, so that the last epochs of training adapt the weights to
quantisation:

1. batch norm is folded into the convolutions (`quant/bn_fold.py`): the int8 graph has no BN, and
   the QAT epochs train the folded weights directly;
2. every conv and linear weight is fake-quantised per output channel and symmetrically, as PTQ
   quantises it (``round(w / s)`` clipped to +-127, or +-7 for int4, times ``s = max|w| / qmax``),
   through a ``torch.nn.utils.parametrize`` parametrisation; the bias is rounded to the int32 grid
   the export gives it (steps of ``input_scale * s``), which matters where folding made weights
   large;
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

from ..models.spec_graph import build_graph
from ..models.spec_torch import Classifier, ConvBNAct, GlobalPool, SpecNet
from ..ir import NO_CLAMP, OpKind
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

    def scales(self, weight: torch.Tensor) -> torch.Tensor:
        """The (detached) scale of every output channel, shaped to broadcast against ``weight``
        (one scale for a per-tensor quantiser)."""
        if self.per_channel:
            max_abs = weight.detach().abs().amax(dim=tuple(range(1, weight.dim())), keepdim=True)
        else:
            max_abs = weight.detach().abs().max()
        return torch.where(max_abs > 0, max_abs / self.qmax, torch.ones_like(max_abs))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        """The weight rounded to its quantisation grid (straight-through gradient)."""
        scale = self.scales(weight)
        return torch.clamp(round_ste(weight / scale), -self.qmax, self.qmax) * scale


class ActivationFakeQuant(nn.Module):
    """Asymmetric int8 fake quantisation with a learnable real range [low, high] (0 included).

    ``clamp`` is the fused activation's range of the op that writes the tensor: the range is cut
    to it, as the export does (`quant/observers.clamp_range`)."""

    def __init__(self, low: float, high: float, clamp: tuple[float, float] = (-math.inf, math.inf)):
        super().__init__()
        self.low = nn.Parameter(torch.tensor(float(min(low, 0.0))))
        self.high = nn.Parameter(torch.tensor(float(max(high, 0.0))))
        self.clamp = (float(clamp[0]), float(clamp[1]))

    def _bounds(self, factor: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        low = torch.clamp(_grad_scaled(self.low, factor), min=self.clamp[0])
        high = torch.clamp(_grad_scaled(self.high, factor), max=self.clamp[1])
        return torch.clamp(low, max=0.0), torch.clamp(high, min=0.0)

    def scale(self) -> torch.Tensor:
        """The current scale (detached)."""
        low, high = self._bounds()
        return (torch.clamp(high - low, min=MIN_RANGE) / (QMAX - QMIN)).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(clamp(round(x / s) + z, -128, 127) - z) * s`` with s, z from the current range."""
        factor = 1.0 / math.sqrt(max(1, x.numel()) * QMAX)
        low, high = self._bounds(factor)
        scale = torch.clamp(high - low, min=MIN_RANGE) / (QMAX - QMIN)
        zero_point = torch.clamp(torch.round(QMIN - low.detach() / scale.detach()), QMIN, QMAX)
        q = torch.clamp(round_ste(x / scale) + zero_point, QMIN, QMAX)
        return (q - zero_point) * scale

    def range(self) -> tuple[float, float]:
        """The current (low, high)."""
        return float(self.low.detach()), float(self.high.detach())


class BiasFakeQuant(nn.Module):
    """The int32 bias of the int8 graph: rounded to steps of ``input_scale * weight_scale[c]``.

    When batch norm folding makes a channel's weights large, that step is coarse (at int4 it can
    be many output steps), so the training must see it. The input quantiser and the layer are held
    as plain attributes (not submodules: the layer owns this parametrisation)."""

    def __init__(self, weight_quant: WeightFakeQuant, input_quantizer: ActivationFakeQuant,
                 layer: nn.Module):
        super().__init__()
        self.weight_quant = weight_quant
        object.__setattr__(self, "input_quantizer", input_quantizer)
        object.__setattr__(self, "layer", layer)

    def forward(self, bias: torch.Tensor) -> torch.Tensor:
        """The bias on its int32 grid (straight-through gradient)."""
        weight = self.layer.parametrizations.weight.original
        step = self.input_quantizer.scale() * self.weight_quant.scales(weight).reshape(-1)
        return round_ste(bias / step) * step


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
    clamps, input_points = _graph_facts(model)
    quantizers = nn.ModuleDict({_key(name): ActivationFakeQuant(*ranges[name], clamps.get(name, NO_CLAMP))
                                for name in (INPUT, *layers)})
    for name, source in input_points.items():
        module = layers[name]
        if isinstance(module, ConvBNAct):
            layer, weight_quant = module.conv, WeightFakeQuant(weight_bits)
        elif isinstance(module, Classifier):
            layer = module.linear
            weight_quant = WeightFakeQuant(weight_bits if int4_fc else 8, fc_per_channel)
        else:  # pragma: no cover - layer_modules maps weighted ops to these two kinds only
            raise TypeError(f"{name}: unexpected layer {type(module).__name__}")
        parametrize.register_parametrization(layer, "weight", weight_quant)
        parametrize.register_parametrization(
            layer, "bias", BiasFakeQuant(weight_quant, quantizers[_key(source)], layer))
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


def _graph_facts(model: SpecNet) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """From the spec's int8 graph: the fused clamp of every op, and for every weighted op the name
    of the point whose quantisation its input has (through AVERAGE_POOL_2D, which keeps it)."""
    graph = build_graph(model.spec)
    producers = graph.producers()
    clamps = {op.name: getattr(op.attrs, "clamp", NO_CLAMP) for op in graph.ops}
    input_points: dict[str, str] = {}
    for op in graph.ops:
        if op.kind not in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED):
            continue
        source = producers.get(op.inputs[0])
        while source is not None and source.kind is OpKind.AVERAGE_POOL_2D:
            source = producers.get(source.inputs[0])
        input_points[op.name] = INPUT if source is None else source.name
    return clamps, input_points


def learned_ranges(model: nn.Module) -> dict[str, tuple[float, float]] | None:
    """The activation ranges of a model prepared by `prepare_qat` (by op name, the input under
    ``"input"``), or None for a plain float model."""
    quantizers = getattr(model, "activation_quantizers", None)
    if quantizers is None:
        return None
    return {key.replace("/", "."): quantizer.range() for key, quantizer in quantizers.items()}

