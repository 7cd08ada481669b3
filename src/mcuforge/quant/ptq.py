"""Post-training quantisation of a `SpecNet` to an int8 IR graph with real constant data.

The scheme is TFLite's full-integer one:

- weights: per-output-channel symmetric int8 (zero point 0, ``scale = max|w| / 127``; quantised
  dimension 0 for CONV_2D and FULLY_CONNECTED, 3 for DEPTHWISE_CONV_2D), after batch-norm folding;
  optionally int4 (``weight_bits=4``: values in [-7, 7], dtype ``DType.INT4`` with the unpacked
  values in ``Tensor.data``; the per-channel range is searched for the least squared error, see
  `quant/weights.py`);
- biases: int32, ``scale = input_scale * weight_scale[c]``, zero point 0;
- activations: per-tensor asymmetric int8 from calibrated real ranges (`quant/observers.py`):
  real 0 is exactly representable, zero points lie in [-128, 127]; a fused activation is the op's
  ``clamp`` (the range is also cut to the clamp, so ReLU6 outputs never exceed [0, 6]);
- the residual ADD has its own output quantisation; the global pool is AVERAGE_POOL_2D with its
  input's quantisation (TFLite requires equal input and output parameters); the classifier is a
  FULLY_CONNECTED producing int8 logits;
- MobileNetV3's ops: HARD_SWISH gets the calibrated range of the activation's output (its input is
  the conv's output, calibrated before the activation); squeeze-excite's MEAN, its reduce and
  expand convs (plain biased convs, no batch norm) and the gating MUL get calibrated ranges. The
  hard sigmoid ``relu6(s + 3) * (1/6)`` is ADD of a constant 3 (fused RELU6) and MUL by a constant
  1/6; each constant is a one-element int8 tensor quantised as an activation of range [0, v]
  (scale ``v / 255``, zero point -128, value 127: exact up to float32), and the two outputs have
  the fixed ranges [0, 6] (scale 6/255) and [0, 1] (scale 1/255), zero point -128, so that the
  MUL by 1/6 maps codes one to one and the sigmoid's whole range is kept whatever calibration saw.

The graph has the structure and names of the analytic graph of the same spec
(`models/spec_graph.build_graph`): every op of that graph gets its weights, bias and output
quantisation here. The graph input is int8; its quantisation (the tensor ``input``'s ``quant``) is
how callers turn float images into model input (`quant/inference.quantize_input`).

Ranges come, in this order, from the ``ranges`` argument, from the learned ranges of a model
prepared for quantisation-aware training (`quant/qat.py`), or from calibrating on
``calibration_batches``.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from ..errors import McuforgeError, UnsupportedOpError
from ..models.spec_graph import build_graph
from ..models.spec_torch import Classifier, ConvBNAct, SpecNet
from ..ir import DType, Graph, Op, OpKind, QuantParams, Tensor, validate
from .bn_fold import fold_weights, folded_conv
from .calibrate import INPUT, calibrate, weight_modules
from .inference import with_batch
from .observers import activation_quant_params, clamp_range
from .qat import learned_ranges
from .weights import bias_weight_scale_floor, quantize_bias, quantize_weights, weight_dtype

_WEIGHTED = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED)
# Ops whose output quantisation comes from their calibrated range (cut to a fused clamp).
_CALIBRATED = (OpKind.ADD, OpKind.MUL, OpKind.MEAN, OpKind.HARD_SWISH)
# The hard sigmoid's ops with a constant operand (by the last part of the op name): the constant's
# real value and the op's fixed output range.
_CONSTANT_OPERAND_OPS = {"hsig_add": (3.0, (0.0, 6.0)), "hsig_scale": (1.0 / 6.0, (0.0, 1.0))}


def activation_ranges(model: SpecNet, calibration_batches: Iterable[object] | None,
                      ranges: Mapping[str, tuple[float, float]] | None = None,
                      observer: str = "minmax") -> dict[str, tuple[float, float]]:
    """The activation ranges PTQ uses: ``ranges`` if given, else a QAT model's learned ranges, else
    calibration on ``calibration_batches``."""
    if ranges is not None:
        return dict(ranges)
    learned = learned_ranges(model)
    if learned is not None:
        return learned
    if calibration_batches is None:
        raise McuforgeError("post-training quantisation needs calibration batches (or ranges)")
    return calibrate(model, calibration_batches, observer)


def _torch_to_ir_weights(kind: OpKind, weight: torch.Tensor, ir_shape: tuple[int, ...],
                         in_shape: tuple[int, ...]) -> np.ndarray:
    """Torch layout -> IR layout: conv [O, I, kh, kw] -> OHWI; depthwise [C, 1, kh, kw] ->
    [1, kh, kw, C]; FC [out, in] with the input flattened NHWC instead of NCHW."""
    w = weight.detach().cpu().double().numpy()
    if kind is OpKind.CONV_2D:
        w = w.transpose(0, 2, 3, 1)
    elif kind is OpKind.DEPTHWISE_CONV_2D:
        w = w.transpose(1, 2, 3, 0)
    elif len(in_shape) == 4 and in_shape[1] * in_shape[2] > 1:
        _, h, wd, c = in_shape
        w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
    if tuple(w.shape) != tuple(ir_shape):
        raise McuforgeError(f"weights of shape {w.shape} do not match the graph's {ir_shape}")
    return w


def _float_layer(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Folded float (weight, bias) of a conv block, a plain squeeze-excite conv or a classifier."""
    if isinstance(module, ConvBNAct):
        return folded_conv(module)
    if isinstance(module, nn.Conv2d):
        with torch.no_grad():
            weight, bias = fold_weights(module.weight, module.bias, None)
        return weight.detach().float().clone(), bias.detach().float().clone()
    if isinstance(module, Classifier):
        linear = module.linear
        bias = linear.bias if linear.bias is not None else torch.zeros(linear.out_features)
        return linear.weight.detach().float().clone(), bias.detach().float().clone()
    raise McuforgeError(f"no weights in module {type(module).__name__}")


class _Quantizer:
    """Walks the analytic graph and fills in data and quantisation, op by op."""

    def __init__(self, graph: Graph, model: SpecNet, ranges: Mapping[str, tuple[float, float]],
                 weight_bits: int, fc_per_channel: bool, int4_fc: bool, weight_clip: str | None):
        self.graph = graph
        self.weight_clip = weight_clip
        self.int4_fc = int4_fc
        self.layers = weight_modules(model)
        self.ranges = ranges
        self.weight_bits = weight_bits
        self.fc_per_channel = fc_per_channel
        self.tensors: dict[str, Tensor] = dict(graph.tensors)

    def _range(self, op_name: str) -> tuple[float, float]:
        if op_name not in self.ranges:
            raise McuforgeError(f"no activation range recorded for {op_name}")
        return self.ranges[op_name]

    def _set(self, name: str, quant: QuantParams, dtype: DType = DType.INT8,
             data: np.ndarray | None = None) -> None:
        old = self.tensors[name]
        self.tensors[name] = Tensor(name, old.shape, dtype, quant, old.constant or data is not None,
                                    data)

    def run(self) -> dict[str, Tensor]:
        """Quantise every tensor of the graph, op by op; returns the tensors of the int8 graph."""
        (input_name,) = self.graph.inputs
        self._set(input_name, activation_quant_params(*self._range(INPUT)))
        for op in self.graph.ops:
            if op.kind in _WEIGHTED:
                self._weighted(op)
            elif op.kind is OpKind.AVERAGE_POOL_2D:
                self._set(op.outputs[0], self.tensors[op.inputs[0]].quant)
            elif op.kind in (OpKind.ADD, OpKind.MUL) and self._constant_operand(op) is not None:
                self._with_constant(op)
            elif op.kind in _CALIBRATED:
                self._calibrated(op)
            else:
                raise UnsupportedOpError(f"post-training quantisation does not handle "
                                         f"{op.kind.value} ({op.name})")
        return self.tensors

    def _calibrated(self, op: Op) -> None:
        """Output quantisation from the op's calibrated range, cut to its fused clamp."""
        clamp = getattr(op.attrs, "clamp", None)
        low, high = self._range(op.name)
        if clamp is not None:
            low, high = clamp_range(low, high, clamp)
        self._set(op.outputs[0], activation_quant_params(low, high))

    def _constant_operand(self, op: Op) -> str | None:
        """The name of a constant operand of an ADD or MUL, if it has one."""
        constants = [name for name in op.inputs if self.tensors[name].constant]
        return constants[0] if constants else None

    def _with_constant(self, op: Op) -> None:
        """The hard sigmoid's ADD 3 / MUL 1/6: the constant's data and quantisation, and the op's
        fixed output quantisation (see the module doc)."""
        role = op.name.rsplit(".", 1)[-1]
        if role not in _CONSTANT_OPERAND_OPS:
            raise UnsupportedOpError(f"post-training quantisation does not handle "
                                     f"{op.kind.value} with a constant operand ({op.name})")
        value, (low, high) = _CONSTANT_OPERAND_OPS[role]
        name = self._constant_operand(op)
        tensor = self.tensors[name]
        quant = activation_quant_params(min(value, 0.0), max(value, 0.0))
        code = round(value / quant.scale[0]) + quant.zero_point[0]
        data = np.full(tensor.shape, int(np.clip(code, -128, 127)), dtype=np.int8)
        self._set(name, quant, DType.INT8, data)
        low, high = clamp_range(low, high, op.attrs.clamp)
        self._set(op.outputs[0], activation_quant_params(low, high))

    def _weighted(self, op: Op) -> None:
        x_name, w_name, b_name = op.inputs
        module = self.layers.get(op.name)
        if module is None:
            raise McuforgeError(f"no torch layer for op {op.name}")
        weight, bias = _float_layer(module)
        w_tensor = self.tensors[w_name]
        w_ir = _torch_to_ir_weights(op.kind, weight, w_tensor.shape, self.tensors[x_name].shape)
        int4 = self.weight_bits == 4 or w_tensor.dtype is DType.INT4
        if op.kind is OpKind.FULLY_CONNECTED and not self.int4_fc:
            int4 = False
        bits = 4 if int4 else 8
        if op.kind is OpKind.DEPTHWISE_CONV_2D:
            axis: int | None = 3
        elif op.kind is OpKind.FULLY_CONNECTED and not self.fc_per_channel:
            axis = None
        else:
            axis = 0
        clip = self.weight_clip or ("mse" if bits == 4 else "max")
        x_quant = self.tensors[x_name].quant
        q_weights, w_quant = quantize_weights(
            w_ir, axis, bits, clip, bias_weight_scale_floor(bias.numpy(), x_quant.scale[0]))
        self._set(w_name, w_quant, weight_dtype(bits), q_weights)
        q_bias, b_quant = quantize_bias(bias.numpy(), x_quant.scale[0], w_quant)
        self._set(b_name, b_quant, DType.INT32, q_bias)
        low, high = clamp_range(*self._range(op.name), op.attrs.clamp)
        self._set(op.outputs[0], activation_quant_params(low, high))


def quantize_spec_net(model: SpecNet, calibration_batches: Iterable[object] | None = None, *,
                      weight_bits: int | None = None, observer: str = "minmax",
                      ranges: Mapping[str, tuple[float, float]] | None = None,
                      fc_per_channel: bool | None = None, int4_fc: bool | None = None,
                      weight_clip: str | None = None, batch_size: int = 1,
                      name: str | None = None) -> Graph:
    """The int8 IR graph of ``model`` (see the module doc).

    ``calibration_batches``: float NCHW model inputs (or (inputs, labels) pairs), a few hundred
    samples in all. ``weight_bits``: 8, or 4 for int4 weights (int8 activations either way).
    ``observer``: ``"minmax"`` or ``"percentile[:Q]"``. ``fc_per_channel``: per-channel or
    per-tensor FULLY_CONNECTED weights. ``int4_fc``: with int4 weights, the FULLY_CONNECTED
    classifier gets int4 weights too (off by default: TFLite Micro's FULLY_CONNECTED rejects int4
    filters with int8 input, and the classifier is a small part of the Flash). ``weight_bits``,
    ``fc_per_channel`` and ``int4_fc`` default to what a QAT model was trained for, else 8 bits,
    per-channel, int8 classifier. ``weight_clip``: the weight range rule of `quant/weights.py`
    ("max" or "mse"); by default "mse" for int4 weights of a float model, "max" otherwise (a QAT
    model's weights already lie on the grid of the "max" rule it was trained with).
    ``batch_size``: the leading dimension of every activation (1 for deployment; larger to evaluate
    many images per interpreter call).
    """
    qat_config = getattr(model, "qat_config", None) or {}
    if weight_bits is None:
        weight_bits = int(qat_config.get("weight_bits", 8))
    if fc_per_channel is None:
        fc_per_channel = bool(qat_config.get("fc_per_channel", True))
    if int4_fc is None:
        int4_fc = bool(qat_config.get("int4_fc", False))
    if weight_bits not in (4, 8):
        raise McuforgeError(f"weights are quantised to 8 or 4 bits, not {weight_bits}")
    spec = model.spec
    template = build_graph(spec, name or spec.name or "net")
    used_ranges = activation_ranges(model, calibration_batches, ranges, observer)
    if weight_clip is None and qat_config:
        weight_clip = "max"
    tensors = _Quantizer(template, model, used_ranges, weight_bits, fc_per_channel, int4_fc,
                         weight_clip).run()
    metadata = dict(template.metadata)
    metadata["quantization"] = {"weight_bits": weight_bits, "activation_bits": 8,
                                "observer": "qat" if learned_ranges(model) else observer,
                                "fc_per_channel": fc_per_channel, "int4_fc": int4_fc,
                                "weight_clip": weight_clip or "mse for int4, max for int8"}
    graph = Graph(template.name, tensors, template.ops, template.inputs, template.outputs,
                  template.blocks, metadata)
    graph = validate(graph)
    return with_batch(graph, batch_size) if batch_size != 1 else graph
