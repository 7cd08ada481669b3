"""SUB of two int8 tensors, or two int16 tensors (16x8, zero point 0), as TFLite Micro's
``reference_ops::SubElementwise`` / ``BroadcastQuantSubSlow``, bit-exact with it.

- Prepare (`prepare_sub`, TFLite Micro's ``CalculateOpDataSub``, shared by the reference kernel and
  the C): both operands are offset by their zero points and shifted left by 20 bits, rescaled to
  twice the larger input scale, subtracted, and rescaled to the output: ``t = 2 max(s1, s2)``,
  ``s_i / t`` and ``t / (2^20 s_out)`` from the float32 scales in double arithmetic (what the
  tflite-micro interpreter computes; ties of the output rounding show a float32 variant), each by
  QuantizeMultiplierSmallerThanOneExp (so the output multiplier must be below 1: refused at import
  otherwise); the integer clamp of the fused activation. int16: the same with a left shift of 15
  and the int16 clamp.
- Shape: numpy broadcasting. Spatially pointwise (patchable); ELEMENTWISE overlap.
- C: ``sub``, the broadcast loop (`broadcast`) over int8 or int16 elements, or (int8) a
  256-entry table when one operand is a one-valued constant (`lut`, through `BinaryElementwiseOp`).
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
from ..ir.tensor import DType, QuantParams
from .binary_common import BinaryElementwiseOp, int16_operands
from .broadcast import broadcast_params, loop_args
from .lowering_types import KernelSpec, LayerCall, require_int8

SUB_LEFT_SHIFT = 20
SUB_LEFT_SHIFT_INT16 = 15


@dataclass(frozen=True)
class SubParams:
    """The prepared quantisation of an int8 or int16 SUB (TFLite Micro's ``OpDataSub``)."""

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
    left_shift: int = SUB_LEFT_SHIFT


def real_multipliers(s1: float, s2: float, so: float,
                     left_shift: int = SUB_LEFT_SHIFT) -> tuple[float, float, float]:
    """(input 1, input 2, output) real multipliers: the float32 scales in double arithmetic."""
    s1, s2, so = (float(np.float32(s)) for s in (s1, s2, so))
    twice_max = 2.0 * max(s1, s2)
    return s1 / twice_max, s2 / twice_max, twice_max / ((1 << left_shift) * so)


def prepare_sub(x1_q: QuantParams, x2_q: QuantParams, y_q: QuantParams,
                clamp: tuple[float, float], wide: bool = False) -> SubParams:
    """`SubParams` (``wide``: int16 operands and output, left shift 15); ValueError when a
    multiplier is not in (0, 1)."""
    left_shift = SUB_LEFT_SHIFT_INT16 if wide else SUB_LEFT_SHIFT
    r1, r2, ro = real_multipliers(x1_q.scale[0], x2_q.scale[0], y_q.scale[0], left_shift)
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(r1)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(r2)
    try:
        mo, sho = quantize_multiplier_smaller_than_one_exp(ro)
    except ValueError:
        raise ValueError(f"SUB needs 2 * max(input scales) / (2^{left_shift} * output scale) < 1, "
                         f"got {ro:.6g}") from None
    qmin, qmax = (-32768, 32767) if wide else (-128, 127)
    act_min, act_max = calculate_activation_range_quantized(clamp, y_q.scale[0], y_q.zero_point[0],
                                                            qmin, qmax)
    return SubParams(-int(x1_q.zero_point[0]), -int(x2_q.zero_point[0]), m1, sh1, m2, sh2, mo, sho,
                     int(y_q.zero_point[0]), act_min, act_max, left_shift)


def sub_int8(x1: np.ndarray, x2: np.ndarray, clamp: tuple[float, float], x1_q: QuantParams,
             x2_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """SUB ``x1 - x2`` of two int8 tensors (or, both int16, two int16 tensors giving int16) with
    numpy broadcasting and a fused clamp (real units)."""
    wide = x1.dtype == np.int16
    p = prepare_sub(x1_q, x2_q, y_q, clamp, wide)
    mul = multiply_by_quantized_multiplier_smaller_than_one_exp
    scaled1 = mul((as_int64(x1) + p.input1_offset) << p.left_shift, p.input1_multiplier,
                  p.input1_shift)
    scaled2 = mul((as_int64(x2) + p.input2_offset) << p.left_shift, p.input2_multiplier,
                  p.input2_shift)
    y = mul(scaled1 - scaled2, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(y, p.act_min, p.act_max).astype(np.int16 if wide else np.int8)


class Sub(BinaryElementwiseOp):
    """SUB (see the module docstring)."""

    input_dtypes = frozenset({DType.INT8, DType.INT16})  # int16: 16x8 activations (`ops.wide`)
    output_dtypes = frozenset({DType.INT8, DType.INT16})

    tflite_options = BuiltinOptions.SubOptions
    tflite_option_fields = (tflite.SubOptions, ("FusedActivationFunction",))
    options_functions = (tflite.SubOptionsStart, tflite.SubOptionsAddFusedActivationFunction,
                         tflite.SubOptionsEnd)

    def check_values(self, graph, op, where):
        """The three multipliers `prepare_sub` derives (the output one below 1); an int16 SUB is
        int16 throughout (`binary_common.int16_operands`)."""
        wide = int16_operands(graph, op, where)
        x = quantised_scales(graph, op.inputs[0])
        y = quantised_scales(graph, op.outputs[0])
        if x is None or y is None:
            return
        x2 = quantised_scales(graph, op.inputs[1]) or x
        try:
            prepare_sub(QuantParams.per_tensor(x[0], 0), QuantParams.per_tensor(x2[0], 0),
                        QuantParams.per_tensor(y[0], 0), (-np.inf, np.inf), wide)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: output tensor {op.outputs[0]}: {exc}") from None

    def lower_tensors(self, graph, index, op, target, overlapped) -> LayerCall:
        """SUB with broadcasting and a fused clamp: the broadcast loop, int8 or int16."""
        names = (*op.inputs, op.outputs[0])
        wide = int16_operands(graph, op, f"operator #{index} {op.name} (SUB)")
        if not wide:
            require_int8(graph, index, op, names)
        assert isinstance(op.attrs, ElementwiseAttrs)
        a_t, b_t, y_t = (graph.tensors[n] for n in names)
        p = prepare_sub(a_t.quant, b_t.quant, y_t.quant, op.attrs.clamp, wide)
        ctype = "int16_t" if wide else "int8_t"
        head, note = loop_args(graph, index, op, overlapped, ctype)
        full = int(not wide and p.act_min == -128 and p.act_max == 127)
        spec = KernelSpec(
            f"mf_sub_s{16 if wide else 8}{'_full' if full else ''}", "sub",
            broadcast_params(ctype) + ", int32_t in1_offset, int32_t in2_offset, "
            "int32_t left_shift, int32_t in1_mult, int32_t in1_shift, int32_t in2_mult, "
            "int32_t in2_shift, int32_t out_mult, int32_t out_shift, int32_t out_zp, "
            "int32_t act_min, int32_t act_max", {"full": full, "ctype": ctype})
        args = (*head, p.input1_offset, p.input2_offset, p.left_shift, p.input1_multiplier,
                p.input1_shift, p.input2_multiplier, p.input2_shift, p.output_multiplier,
                p.output_shift, p.output_offset, p.act_min, p.act_max)
        return LayerCall(op.name, op.kind.value, spec, args, note=note)


OP_DEFS = (Sub(OpKind.SUB, sub_int8),)
