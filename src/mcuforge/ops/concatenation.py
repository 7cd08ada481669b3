"""CONCATENATION along an axis.

The reference copies when every input shares the output's quantisation (all TFLite int8 models:
TFLite Micro copies raw bytes in every case); inputs with other parameters are requantised with
MultiplyByQuantizedMultiplier(s_in / s_out), as QUANTIZE int8 -> int8 does. Shape: the inputs'
sizes along the axis add up. Not patchable; no overlap. C: ``concat`` (a byte copy; inputs needing
requantisation and fused activations are refused). .tflite: ConcatenationOptions.
"""

from __future__ import annotations

import math

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import calculate_activation_range_quantized
from ..ir.checks import check_requantisation
from ..ir.ops import ConcatAttrs, OpKind
from ..ir.tensor import QuantParams
from . import reference_support as ref
from .lowering_types import Buffer, KernelSpec, LayerCall, require_int8, unsupported
from .quantize import quantize
from .registry import OpDef
from .tflite_common import fused_activation


def concatenation_int8(xs: list[np.ndarray], attrs: ConcatAttrs, x_qs: list[QuantParams | None],
                       y_q: QuantParams | None) -> np.ndarray:
    """CONCATENATION along ``attrs.axis``, requantising inputs whose quantisation differs."""
    parts = []
    for x, x_q in zip(xs, x_qs):
        same = (x_q is None or y_q is None
                or (x_q.zero_point[0] == y_q.zero_point[0]
                    and np.float32(x_q.scale[0]) == np.float32(y_q.scale[0])))
        parts.append(x if same else quantize(x, x_q, y_q, x.dtype))
    y = np.concatenate(parts, axis=attrs.axis)
    if y_q is not None and attrs.clamp != (-np.inf, np.inf):
        act_min, act_max = calculate_activation_range_quantized(attrs.clamp, y_q.scale[0],
                                                                y_q.zero_point[0])
        y = np.clip(y, act_min, act_max).astype(y.dtype)
    return y


class Concatenation(OpDef):
    """CONCATENATION (see the module docstring)."""

    kinds = (OpKind.CONCATENATION,)
    attrs_type = ConcatAttrs
    tflite_options = BuiltinOptions.ConcatenationOptions
    tflite_option_fields = (tflite.ConcatenationOptions, ("Axis", "FusedActivationFunction"))
    input_count = (1, 1 << 16)

    def check_values(self, graph, op, where):
        """The requantisation ``in / out`` of every input."""
        check_requantisation(graph, op, where, op.inputs)

    def output_shape(self, op, input_shapes):
        """The first input's shape with the axis summed over the inputs."""
        a = op.attrs
        x = input_shapes[0]
        axis = a.axis % len(x)
        for s in input_shapes[1:]:
            if len(s) != len(x) or any(p != q for i, (p, q) in enumerate(zip(s, x)) if i != axis):
                raise ValueError(f"cannot concatenate {input_shapes} on axis {a.axis}")
        return tuple(sum(s[axis] for s in input_shapes) if i == axis else d for i, d in enumerate(x))

    def run(self, graph, op, env):
        """`concatenation_int8` (any dtype)."""
        xs = [ref.value_of(graph, env, name) for name in op.inputs]
        x_qs = [graph.tensor(name).quant for name in op.inputs]
        return concatenation_int8(xs, op.attrs, x_qs, graph.tensor(op.outputs[0]).quant)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """Inputs that share the output's quantisation, as a byte copy."""
        y_t = graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (*op.inputs, y_t.name))
        attrs = op.attrs
        assert isinstance(attrs, ConcatAttrs)
        for name in op.inputs:
            q = graph.tensors[name].quant
            if q.zero_point[0] != y_t.quant.zero_point[0] or \
                    np.float32(q.scale[0]) != np.float32(y_t.quant.scale[0]):
                raise unsupported(graph, index, op, f"input {name} needs requantisation")
        if attrs.clamp != (-math.inf, math.inf):
            raise unsupported(graph, index, op, "a fused activation on CONCATENATION")
        axis = attrs.axis % len(y_t.shape)
        outer = math.prod(y_t.shape[:axis])
        n = len(op.inputs)
        params = ", ".join([f"const int8_t *in{i}" for i in range(n)]
                           + ["int8_t *out", "int32_t outer"]
                           + [f"int32_t inner{i}" for i in range(n)])
        spec = KernelSpec(f"mf_concat{n}_s8", "concat", params, {"n_inputs": n})
        inners = [math.prod(graph.tensors[name].shape[axis:]) for name in op.inputs]
        args = (*(Buffer("tensor", name) for name in op.inputs), Buffer("tensor", y_t.name), outer,
                *inners)
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """The axis and the fused activation."""
        return ConcatAttrs(int(rop.options.get("Axis", 0)), reader.clamp(rop, where))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """ConcatenationOptions."""
        tflite.ConcatenationOptionsStart(builder)
        tflite.ConcatenationOptionsAddAxis(builder, attrs.axis)
        tflite.ConcatenationOptionsAddFusedActivationFunction(
            builder, fused_activation(kind, attrs.clamp, output_name))
        return tflite.ConcatenationOptionsEnd(builder)


OP_DEFS = (Concatenation(),)
