"""MUL of two int8 tensors, or two int16 tensors (16x8, zero point 0), as TFLite Micro's
``reference_integer_ops::Mul`` / ``BroadcastMul6DSlow``, bit-exact with it.

- Prepare (`prepare_mul`, shared by the reference kernel and the C): (x1 - z1) * (x2 - z2) rescaled
  by MultiplyByQuantizedMultiplier(s1 s2 / s_out), plus the output zero point, clamped (a left shift
  that overflows int32 wraps in both, as the reference's ``wrap_int32`` does). int16: the same
  arithmetic (|product| <= 2^30) with the int16 clamp.
- Shape: numpy broadcasting. Spatially pointwise (patchable); ELEMENTWISE overlap.
- C: ``mul``, the broadcast loop (`broadcast`) with per-operand strides (0 along broadcast
  dimensions); adjacent dimensions that are contiguous for both operands are merged first (`merge_broadcast_dims`), so same-shape MUL
  is one flat loop and the squeeze-excite gate ``[1,H,W,C] * [1,1,1,C]`` is H*W rows of C. The output
  is written in order after its element's operands are read, so it may alias any operand with the
  output's shape; it never aliases a broadcast operand. On Cortex-M with the DSP extension the
  rescale takes the SMMULR form when |product| * 2^max(shift, 0) < 2^29 is proved. A one-valued
  constant operand makes it a 256-entry table (`lut`). int16: the same loop over int16 elements
  (exact form; constants are emitted as int16 arrays, no table).
- .tflite: MulOptions (fused activation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import (as_int64, calculate_activation_range_quantized,
                                multiply_by_quantized_multiplier, quantize_multiplier_scalar)
from ..ir.checks import check_multiplier, check_requantisation, quantised_scales
from ..ir.ops import ElementwiseAttrs, OpKind
from ..ir.tensor import DType, QuantParams, Tensor
from .binary_common import BinaryElementwiseOp, int16_operands
from .broadcast import broadcast_params, loop_args
from .lowering_types import KernelSpec, LayerCall, require_int8


@dataclass(frozen=True)
class MulParams:
    """The prepared quantisation of an int8 MUL."""

    input1_offset: int
    input2_offset: int
    output_multiplier: int
    output_shift: int
    output_offset: int
    act_min: int
    act_max: int


def prepare_mul(x1_q: QuantParams, x2_q: QuantParams, y_q: QuantParams,
                clamp: tuple[float, float], wide: bool = False) -> MulParams:
    """`MulParams` from the operands' and the output's quantisation and the fused clamp (``wide``:
    int16 output)."""
    s1, s2, so = (float(np.float32(q.scale[0])) for q in (x1_q, x2_q, y_q))
    multiplier, shift = quantize_multiplier_scalar(s1 * s2 / so)
    qmin, qmax = (-32768, 32767) if wide else (-128, 127)
    act_min, act_max = calculate_activation_range_quantized(clamp, y_q.scale[0], y_q.zero_point[0],
                                                            qmin, qmax)
    return MulParams(-int(x1_q.zero_point[0]), -int(x2_q.zero_point[0]), multiplier, shift,
                     int(y_q.zero_point[0]), act_min, act_max)


def mul_int8(x1: np.ndarray, x2: np.ndarray, clamp: tuple[float, float], x1_q: QuantParams,
             x2_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """MUL of two int8 tensors (or, both int16, two int16 tensors giving int16) with numpy
    broadcasting and a fused clamp (real units)."""
    wide = x1.dtype == np.int16
    p = prepare_mul(x1_q, x2_q, y_q, clamp, wide)
    product = (as_int64(x1) + p.input1_offset) * (as_int64(x2) + p.input2_offset)
    y = multiply_by_quantized_multiplier(product, p.output_multiplier, p.output_shift) \
        + p.output_offset
    return np.clip(y, p.act_min, p.act_max).astype(np.int16 if wide else np.int8)


def _max_centred(tensor: Tensor) -> int:
    """The largest |x - zero point| of an int8 operand (over its values when it is a constant)."""
    zero_point = tensor.quant.zero_point[0]
    if tensor.constant:
        return int(np.abs(np.asarray(tensor.data).astype(np.int64) - zero_point).max())
    return max(127 - zero_point, zero_point + 128)


class Mul(BinaryElementwiseOp):
    """MUL (see the module docstring)."""

    input_dtypes = frozenset({DType.INT8, DType.INT16})  # int16: 16x8 activations (`ops.wide`)
    output_dtypes = frozenset({DType.INT8, DType.INT16})

    tflite_options = BuiltinOptions.MulOptions
    tflite_option_fields = (tflite.MulOptions, ("FusedActivationFunction",))
    options_functions = (tflite.MulOptionsStart, tflite.MulOptionsAddFusedActivationFunction,
                         tflite.MulOptionsEnd)

    def check_values(self, graph, op, where):
        """The output multiplier ``in1 * in2 / out``, and the first input's requantisation; an int16
        MUL is int16 throughout (`binary_common.int16_operands`)."""
        int16_operands(graph, op, where)
        x = quantised_scales(graph, op.inputs[0])
        y = quantised_scales(graph, op.outputs[0])
        if x is not None and y is not None:
            x2 = quantised_scales(graph, op.inputs[1]) or x
            check_multiplier(where, "output (input 1 * input 2 / output)", x[0] * x2[0] / y[0])
        check_requantisation(graph, op, where, op.inputs[:1])

    def lower_tensors(self, graph, index, op, target, overlapped):
        """MUL with numpy broadcasting and a fused clamp, int8 or int16."""
        a_t, b_t, y_t = (graph.tensors[n] for n in (*op.inputs, op.outputs[0]))
        wide = int16_operands(graph, op, f"operator #{index} {op.name} (MUL)")
        if not wide:
            require_int8(graph, index, op, (a_t.name, b_t.name, y_t.name))
        assert isinstance(op.attrs, ElementwiseAttrs)
        p = prepare_mul(a_t.quant, b_t.quant, y_t.quant, op.attrs.clamp, wide)
        ctype = "int16_t" if wide else "int8_t"
        if wide:
            fast = full = 0
        else:
            bound = _max_centred(a_t) * _max_centred(b_t)
            fast = int(target.dsp and bound << max(p.output_shift, 0) < 1 << 29)
            full = int(p.act_min == -128 and p.act_max == 127)
        head, note = loop_args(graph, index, op, overlapped, ctype)
        spec = KernelSpec(
            f"mf_mul_s{16 if wide else 8}{'_fast' if fast else ''}{'_full' if full else ''}", "mul",
            broadcast_params(ctype) + ", int32_t in1_offset, int32_t in2_offset, "
            "int32_t out_mult, int32_t out_shift, int32_t out_zp, int32_t act_min, int32_t act_max",
            {"fast": fast, "full": full, "ctype": ctype})
        args = (*head, p.input1_offset, p.input2_offset, p.output_multiplier, p.output_shift,
                p.output_offset, p.act_min, p.act_max)
        return LayerCall(op.name, op.kind.value, spec, args, note=note)


OP_DEFS = (Mul(OpKind.MUL, mul_int8),)
