"""ADD of two int8 tensors (``reference_integer_ops::Add`` / ``BroadcastAdd6DSlow``), or of two
int16 tensors (16x8, zero point 0: ``reference_ops::Add`` for int16), bit-exact with TFLite Micro.

- Prepare (`prepare_add`, used by the reference kernel and the C alike): both operands are shifted
  left by 20 bits, each rescaled to twice the larger input scale, summed, and rescaled to the output:
  in_mult_i = s_i / (2 max(s1, s2)), out_mult = 2 max(s1, s2) / (2^20 s_out), all via
  QuantizeMultiplier; the integer clamp of the fused activation. int16 (TFLite Micro's add.cc): the
  same with a left shift of 15 and the int16 clamp.
- Shape: numpy broadcasting. Spatially pointwise (patchable); ELEMENTWISE overlap.
- C: ``add`` for two same-shape int8 tensors (the output may overlap either input; the DSP form when
  every shift is <= 0), or a 256-entry table when one operand is a one-valued constant (`lut`);
  int8 with broadcasting and every int16 ADD (constants included): ``add_broadcast`` (the
  broadcast loop of `broadcast`, up to 6 dimensions after merging).
- .tflite: AddOptions (fused activation).
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
from ..ir.tensor import DType, QuantParams
from .binary_common import BinaryElementwiseOp, int16_operands
from .broadcast import broadcast_params, loop_args, operand_arg
from .lowering_types import Buffer, KernelSpec, LayerCall, require_int8

ADD_LEFT_SHIFT = 20
ADD_LEFT_SHIFT_INT16 = 15


@dataclass(frozen=True)
class AddParams:
    """The prepared quantisation of an int8 ADD (TFLite's ``OpData`` of add.cc)."""

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
    left_shift: int = ADD_LEFT_SHIFT


def prepare_add(x1_q: QuantParams, x2_q: QuantParams, y_q: QuantParams,
                clamp: tuple[float, float], wide: bool = False) -> AddParams:
    """`AddParams` from the operands' and the output's quantisation and the fused clamp (``wide``:
    int16 operands and output, left shift 15)."""
    left_shift = ADD_LEFT_SHIFT_INT16 if wide else ADD_LEFT_SHIFT
    qmin, qmax = (-32768, 32767) if wide else (-128, 127)
    s1, s2, so = (float(np.float32(q.scale[0])) for q in (x1_q, x2_q, y_q))
    twice_max_input_scale = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier_scalar(s1 / twice_max_input_scale)
    m2, sh2 = quantize_multiplier_scalar(s2 / twice_max_input_scale)
    mo, sho = quantize_multiplier_scalar(twice_max_input_scale / ((1 << left_shift) * so))
    act_min, act_max = calculate_activation_range_quantized(clamp, y_q.scale[0], y_q.zero_point[0],
                                                            qmin, qmax)
    return AddParams(-int(x1_q.zero_point[0]), -int(x2_q.zero_point[0]), m1, sh1, m2, sh2, mo, sho,
                     int(y_q.zero_point[0]), act_min, act_max, left_shift)


def add_int8(x1: np.ndarray, x2: np.ndarray, clamp: tuple[float, float], x1_q: QuantParams,
             x2_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """ADD of two int8 tensors (or, both int16, two int16 tensors giving int16) with numpy
    broadcasting and a fused clamp (real units)."""
    wide = x1.dtype == np.int16
    p = prepare_add(x1_q, x2_q, y_q, clamp, wide)
    shifted1 = (as_int64(x1) + p.input1_offset) << p.left_shift
    shifted2 = (as_int64(x2) + p.input2_offset) << p.left_shift
    raw_sum = (multiply_by_quantized_multiplier(shifted1, p.input1_multiplier, p.input1_shift)
               + multiply_by_quantized_multiplier(shifted2, p.input2_multiplier, p.input2_shift))
    y = multiply_by_quantized_multiplier(raw_sum, p.output_multiplier, p.output_shift) \
        + p.output_offset
    return np.clip(y, p.act_min, p.act_max).astype(np.int16 if wide else np.int8)


class Add(BinaryElementwiseOp):
    """ADD (see the module docstring)."""

    input_dtypes = frozenset({DType.INT8, DType.INT16})  # int16: 16x8 activations (`ops.wide`)
    output_dtypes = frozenset({DType.INT8, DType.INT16})

    tflite_options = BuiltinOptions.AddOptions
    tflite_option_fields = (tflite.AddOptions, ("FusedActivationFunction",))
    options_functions = (tflite.AddOptionsStart, tflite.AddOptionsAddFusedActivationFunction,
                         tflite.AddOptionsEnd)

    def check_values(self, graph, op, where):
        """The three multipliers `prepare_add` derives, and the first input's requantisation; an
        int16 ADD is int16 throughout (`binary_common.int16_operands`)."""
        left_shift = ADD_LEFT_SHIFT_INT16 if int16_operands(graph, op, where) else ADD_LEFT_SHIFT
        x = quantised_scales(graph, op.inputs[0])
        y = quantised_scales(graph, op.outputs[0])
        if x is not None and y is not None:
            x2 = quantised_scales(graph, op.inputs[1]) or x
            twice_max = 2.0 * max(x[0], x2[0])
            check_multiplier(where, "input 1", x[0] / twice_max)
            check_multiplier(where, "input 2", x2[0] / twice_max)
            check_multiplier(where, "output", twice_max / ((1 << left_shift) * y[0]))
        check_requantisation(graph, op, where, op.inputs[:1])

    def lower_broadcast(self, graph, index, op, overlapped, wide: bool) -> LayerCall:
        """``add_broadcast``: any two broadcastable int8 or int16 operands (constants as const
        arrays of model.c); the output may overlap an operand of its own shape."""
        a_t, b_t, y_t = (graph.tensors[n] for n in (*op.inputs, op.outputs[0]))
        p = prepare_add(a_t.quant, b_t.quant, y_t.quant, op.attrs.clamp, wide)
        ctype = "int16_t" if wide else "int8_t"
        head, note = loop_args(graph, index, op, overlapped, ctype)
        full = int(not wide and p.act_min == -128 and p.act_max == 127)
        spec = KernelSpec(
            f"mf_add_s{16 if wide else 8}_broadcast{'_full' if full else ''}", "add_broadcast",
            broadcast_params(ctype) + ", int32_t in1_offset, int32_t in2_offset, "
            "int32_t left_shift, int32_t in1_mult, int32_t in1_shift, int32_t in2_mult, "
            "int32_t in2_shift, int32_t out_mult, int32_t out_shift, int32_t out_zp, "
            "int32_t act_min, int32_t act_max", {"full": full, "ctype": ctype})
        args = (*head, p.input1_offset, p.input2_offset, p.left_shift, p.input1_multiplier,
                p.input1_shift, p.input2_multiplier, p.input2_shift, p.output_multiplier,
                p.output_shift, p.output_offset, p.act_min, p.act_max)
        return LayerCall(op.name, op.kind.value, spec, args, note=note)

    def lower_tensors(self, graph, index, op, target, overlapped):
        """Two same-shape int8 tensors: ``add`` (either may be a constant, a const array of model.c;
        the output may overlap either activation input; the DSP form when every shift is <= 0).
        int8 with broadcasting, and int16: `lower_broadcast`."""
        a_t, b_t, y_t = (graph.tensors[n] for n in (*op.inputs, op.outputs[0]))
        wide = int16_operands(graph, op, f"operator #{index} {op.name} (ADD)")
        if not wide:
            require_int8(graph, index, op, (a_t.name, b_t.name, y_t.name))
        assert isinstance(op.attrs, ElementwiseAttrs)
        if wide or not a_t.shape == b_t.shape == y_t.shape:
            return self.lower_broadcast(graph, index, op, overlapped, wide)
        p = prepare_add(a_t.quant, b_t.quant, y_t.quant, op.attrs.clamp)
        fast = int(target.dsp and max(p.input1_shift, p.input2_shift, p.output_shift) <= 0)
        full = int(p.act_min == -128 and p.act_max == 127)
        # The fast form takes its three right shifts as compile-time constants (one kernel per
        # shift triple): immediates instead of six live registers keep the loop free of spills.
        rights = tuple(-s for s in (p.input1_shift, p.input2_shift, p.output_shift)) if fast else ()
        spec = KernelSpec(
            f"mf_add_s8{'_fast' if fast else ''}{'_full' if full else ''}"
            + ("_r" + "_".join(map(str, rights)) if rights else ""), "add",
            "const int8_t *in1, const int8_t *in2, int8_t *out, int32_t n, int32_t in1_offset, "
            "int32_t in2_offset, int32_t left_shift, int32_t in1_mult, int32_t in1_shift, "
            "int32_t in2_mult, int32_t in2_shift, int32_t out_mult, int32_t out_shift, "
            "int32_t out_zp, int32_t act_min, int32_t act_max",
            {"fast": fast, "full": full, "rights": rights, "left_shift": ADD_LEFT_SHIFT})
        args = (operand_arg(graph, index, a_t.name, 0), operand_arg(graph, index, b_t.name, 1),
                Buffer("tensor", y_t.name), y_t.num_elements, p.input1_offset, p.input2_offset, ADD_LEFT_SHIFT,
                p.input1_multiplier, p.input1_shift, p.input2_multiplier, p.input2_shift,
                p.output_multiplier, p.output_shift, p.output_offset, p.act_min, p.act_max)
        return LayerCall(op.name, op.kind.value, spec, args, note="in place" if overlapped else "")


OP_DEFS = (Add(OpKind.ADD, add_int8),)
