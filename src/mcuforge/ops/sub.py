"""SUB of two int8 tensors (``reference_ops::SubElementwise`` / ``BroadcastQuantSubSlow``),
bit-exact with TFLite Micro.

- Prepare (`prepare_sub`, TFLite Micro's ``CalculateOpDataSub``, shared by the reference kernel and
  the C): both operands are offset by their zero points and shifted left by 20 bits, rescaled to
  twice the larger input scale, subtracted, and rescaled to the output: ``t = 2 max(s1, s2)``,
  ``s_i / t`` and ``t / (2^20 s_out)`` from the float32 scales in double arithmetic (what the
  tflite-micro interpreter computes; ties of the output rounding show a float32 variant), each by
  QuantizeMultiplierSmallerThanOneExp (so the output multiplier must be below 1: refused at import
  otherwise); the integer clamp of the fused activation.
- Shape: numpy broadcasting. Spatially pointwise (patchable); ELEMENTWISE overlap.
- C: ``sub``, the 4-D broadcast loop (`broadcast`), or a 256-entry table when one operand is a
  one-valued constant (`lut`, through `BinaryElementwiseOp`).
- .tflite: SubOptions (fused activation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import (as_int64, calculate_activation_range_quantized,
                                multiply_by_quantized_multiplier_smaller_than_one_exp,
                                quantize_multiplier_smaller_than_one_exp)
from ..errors import InvalidValueError
from ..ir.checks import quantised_scales
from ..ir.ops import ElementwiseAttrs, OpKind
from ..ir.tensor import QuantParams
from .binary_common import BinaryElementwiseOp
from .broadcast import BROADCAST_PARAMS, loop_args
from .lowering_types import KernelSpec, LayerCall, require_int8

SUB_LEFT_SHIFT = 20


@dataclass(frozen=True)
class SubParams:
    """The prepared quantisation of an int8 SUB (TFLite Micro's ``OpDataSub``)."""

    input1_offset: int
    input2_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    output_offset: int
    act_min: int
    act_max: int


def real_multipliers(s1: float, s2: float, so: float) -> tuple[float, float, float]:
    """(input 1, input 2, output) real multipliers: the float32 scales in double arithmetic."""
    s1, s2, so = (float(np.float32(s)) for s in (s1, s2, so))
    twice_max = 2.0 * max(s1, s2)
    return s1 / twice_max, s2 / twice_max, twice_max / ((1 << SUB_LEFT_SHIFT) * so)


def prepare_sub(x1_q: QuantParams, x2_q: QuantParams, y_q: QuantParams,
                clamp: tuple[float, float]) -> SubParams:
    """`SubParams`; ValueError when a multiplier is not in (0, 1)."""
    r1, r2, ro = real_multipliers(x1_q.scale[0], x2_q.scale[0], y_q.scale[0])
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(r1)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(r2)
    try:
        mo, sho = quantize_multiplier_smaller_than_one_exp(ro)
    except ValueError:
        raise ValueError(f"SUB needs 2 * max(input scales) / (2^20 * output scale) < 1, got "
                         f"{ro:.6g}") from None
    act_min, act_max = calculate_activation_range_quantized(clamp, y_q.scale[0], y_q.zero_point[0])
    return SubParams(-int(x1_q.zero_point[0]), -int(x2_q.zero_point[0]), m1, sh1, m2, sh2, mo, sho,
                     int(y_q.zero_point[0]), act_min, act_max)


def sub_int8(x1: np.ndarray, x2: np.ndarray, clamp: tuple[float, float], x1_q: QuantParams,
             x2_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """SUB ``x1 - x2`` of two int8 tensors with numpy broadcasting and a fused clamp (real units)."""
    p = prepare_sub(x1_q, x2_q, y_q, clamp)
    mul = multiply_by_quantized_multiplier_smaller_than_one_exp
    scaled1 = mul((as_int64(x1) + p.input1_offset) << SUB_LEFT_SHIFT, p.input1_multiplier,
                  p.input1_shift)
    scaled2 = mul((as_int64(x2) + p.input2_offset) << SUB_LEFT_SHIFT, p.input2_multiplier,
                  p.input2_shift)
    y = mul(scaled1 - scaled2, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(y, p.act_min, p.act_max).astype(np.int8)


class Sub(BinaryElementwiseOp):
    """SUB (see the module docstring)."""

    tflite_options = BuiltinOptions.SubOptions
    tflite_option_fields = (tflite.SubOptions, ("FusedActivationFunction",))
    options_functions = (tflite.SubOptionsStart, tflite.SubOptionsAddFusedActivationFunction,
                         tflite.SubOptionsEnd)

    def check_values(self, graph, op, where):
        """The three multipliers `prepare_sub` derives (the output one below 1)."""
        x = quantised_scales(graph, op.inputs[0])
        y = quantised_scales(graph, op.outputs[0])
        if x is None or y is None:
            return
        x2 = quantised_scales(graph, op.inputs[1]) or x
        try:
            prepare_sub(QuantParams.per_tensor(x[0], 0), QuantParams.per_tensor(x2[0], 0),
                        QuantParams.per_tensor(y[0], 0), (-np.inf, np.inf))
        except ValueError as exc:
            raise InvalidValueError(f"{where}: output tensor {op.outputs[0]}: {exc}") from None

    def lower_tensors(self, graph, index, op, target, overlapped) -> LayerCall:
        """SUB with broadcasting (rank <= 4) and a fused clamp: the broadcast loop."""
        names = (*op.inputs, op.outputs[0])
        require_int8(graph, index, op, names)
        assert isinstance(op.attrs, ElementwiseAttrs)
        a_t, b_t, y_t = (graph.tensors[n] for n in names)
        p = prepare_sub(a_t.quant, b_t.quant, y_t.quant, op.attrs.clamp)
        head, note = loop_args(graph, index, op, overlapped)
        full = int(p.act_min == -128 and p.act_max == 127)
        spec = KernelSpec(
            f"mf_sub_s8{'_full' if full else ''}", "sub",
            BROADCAST_PARAMS + ", int32_t in1_offset, int32_t in2_offset, int32_t in1_mult, "
            "int32_t in1_shift, int32_t in2_mult, int32_t in2_shift, int32_t out_mult, "
            "int32_t out_shift, int32_t out_zp, int32_t act_min, int32_t act_max", {"full": full})
        args = (*head, p.input1_offset, p.input2_offset, p.input1_multiplier, p.input1_shift,
                p.input2_multiplier, p.input2_shift, p.output_multiplier, p.output_shift,
                p.output_offset, p.act_min, p.act_max)
        return LayerCall(op.name, op.kind.value, spec, args, note=note)


OP_DEFS = (Sub(OpKind.SUB, sub_int8),)
