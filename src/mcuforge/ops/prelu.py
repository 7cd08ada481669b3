"""PRELU on int8 (``reference_ops::BroadcastPrelu4DSlow``), bit-exact with TFLite Micro.

- Prepare (`prepare_prelu`, TFLite Micro's ``CalculatePreluParams``, shared by the reference kernel
  and the C): in double arithmetic, ``m1 = s_in / s_out`` and ``m2 = s_in * s_alpha / s_out``, each by
  QuantizeMultiplier; the zero points of input, alpha and output.
- Kernel: ``v = x - z_in``; ``y = MultiplyByQuantizedMultiplier(v, m1)`` for v >= 0, else
  ``MultiplyByQuantizedMultiplier(v * (alpha - z_alpha), m2)``; plus the output zero point, clamped
  to int8. alpha (the second input, usually a constant such as ``[1, 1, C]``) broadcasts against the
  input (numpy rules, rank <= 4 as in TFLite); it must be int8 with per-tensor quantisation.
- Shape: the broadcast shape. Spatially pointwise (patchable); ELEMENTWISE overlap (the output may be
  written over the input, never over a broadcast alpha).
- C: ``prelu``, the broadcast loop (`broadcast`; a constant alpha is a const array of model.c).
  No .tflite options table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith.fixedpoint import as_int64, multiply_by_quantized_multiplier, quantize_multiplier_scalar
from ..errors import InvalidValueError
from ..ir.checks import check_multiplier, quantised_scales
from ..ir.ops import OpKind
from ..ir.shapes import broadcast_shape
from ..ir.tensor import QuantParams
from .broadcast import BROADCAST_PARAMS, loop_args
from .lowering_types import KernelSpec, LayerCall, require_int8
from .reference_support import check_int8, quant_of, value_of
from .registry import OpDef, OverlapRule


@dataclass(frozen=True)
class PreluParams:
    """The prepared quantisation of an int8 PRELU (TFLite's ``PreluParams``)."""

    input_offset: int
    alpha_offset: int
    output_offset: int
    output_multiplier_1: int
    output_shift_1: int
    output_multiplier_2: int
    output_shift_2: int


def _real_multipliers(x_scale: float, alpha_scale: float, y_scale: float) -> tuple[float, float]:
    """(identity, alpha) real multipliers: the float32 scales in double arithmetic."""
    s_in, s_alpha, s_out = (float(np.float32(s)) for s in (x_scale, alpha_scale, y_scale))
    return s_in / s_out, s_in * s_alpha / s_out


def prepare_prelu(x_q: QuantParams, alpha_q: QuantParams, y_q: QuantParams) -> PreluParams:
    """`PreluParams` from the input, alpha and output quantisation."""
    r1, r2 = _real_multipliers(x_q.scale[0], alpha_q.scale[0], y_q.scale[0])
    m1, s1 = quantize_multiplier_scalar(r1)
    m2, s2 = quantize_multiplier_scalar(r2)
    return PreluParams(-int(x_q.zero_point[0]), -int(alpha_q.zero_point[0]), int(y_q.zero_point[0]),
                       m1, s1, m2, s2)


def prelu_int8(x: np.ndarray, alpha: np.ndarray, x_q: QuantParams, alpha_q: QuantParams,
               y_q: QuantParams) -> np.ndarray:
    """PRELU of an int8 tensor with an int8 alpha that broadcasts against it."""
    p = prepare_prelu(x_q, alpha_q, y_q)
    v, a = np.broadcast_arrays(as_int64(x) + p.input_offset, as_int64(alpha) + p.alpha_offset)
    positive = multiply_by_quantized_multiplier(v, p.output_multiplier_1, p.output_shift_1)
    negative = multiply_by_quantized_multiplier(v * a, p.output_multiplier_2, p.output_shift_2)
    y = np.where(v >= 0, positive, negative) + p.output_offset
    return np.clip(y, -128, 127).astype(np.int8)


class Prelu(OpDef):
    """PRELU (see the module docstring)."""

    kinds = (OpKind.PRELU,)
    overlap = OverlapRule.ELEMENTWISE
    input_count = (2, 2)
    input_roles = ("input", "alpha")
    spatially_pointwise = True

    def output_shape(self, op, input_shapes):
        """The broadcast shape of input and alpha (rank <= 4)."""
        shape = broadcast_shape(input_shapes[0], input_shapes[1])
        if len(shape) > 4:
            raise ValueError(f"PRELU supports rank <= 4, got shape {shape}")
        return shape

    def check_values(self, graph, op, where):
        """alpha quantised per tensor, and the two multipliers `prepare_prelu` derives."""
        alpha_t = graph.tensors[op.inputs[1]]
        if alpha_t.quant is not None and alpha_t.quant.per_axis:
            raise InvalidValueError(f"{where}: alpha tensor {alpha_t.name}: quantised per axis; "
                                    "PRELU needs one scale and zero point for alpha")
        x = quantised_scales(graph, op.inputs[0])
        a = quantised_scales(graph, op.inputs[1])
        y = quantised_scales(graph, op.outputs[0])
        if x is not None and a is not None and y is not None:
            identity, alpha = _real_multipliers(x[0], a[0], y[0])
            check_multiplier(where, f"identity (tensor {op.inputs[0]} / output)", identity)
            check_multiplier(where, f"alpha (tensor {op.inputs[0]} * alpha / output)", alpha)

    def window(self, graph, op, axis):
        """Kernel 1, stride 1, no padding."""
        return 1, 1, 0

    def run(self, graph, op, env):
        """The int8 kernel on the input and alpha."""
        x, alpha = op.inputs
        y = op.outputs[0]
        check_int8(graph, op, [x, alpha, y])
        return prelu_int8(value_of(graph, env, x), value_of(graph, env, alpha),
                          quant_of(graph, op, x), quant_of(graph, op, alpha), quant_of(graph, op, y))

    def lower(self, graph, index, op, target, overlapped, row_ring=False) -> LayerCall:
        """The broadcast loop with the two prepared multipliers."""
        names = (*op.inputs, op.outputs[0])
        require_int8(graph, index, op, names)
        x_t, a_t, y_t = (graph.tensors[n] for n in names)
        p = prepare_prelu(x_t.quant, a_t.quant, y_t.quant)
        head, note = loop_args(graph, index, op, overlapped)
        spec = KernelSpec(
            "mf_prelu_s8", "prelu",
            BROADCAST_PARAMS + ", int32_t in_offset, int32_t alpha_offset, int32_t mult1, "
            "int32_t shift1, int32_t mult2, int32_t shift2, int32_t out_zp")
        args = (*head, p.input_offset, p.alpha_offset, p.output_multiplier_1, p.output_shift_1,
                p.output_multiplier_2, p.output_shift_2, p.output_offset)
        return LayerCall(op.name, op.kind.value, spec, args, note=note)


OP_DEFS = (Prelu(),)
