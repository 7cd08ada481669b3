"""SOFTMAX over the last axis, int8 in and int8 out (TFLite Micro ``SoftmaxPrepare`` +
``reference_ops::Softmax``; the int16 lookup tables are only built for int16 input).

- Prepare (`prepare_softmax`, shared by the reference kernel and the C): beta * s_in becomes a
  Q5.26 input multiplier and left shift (``PreprocessSoftmaxScaling``) and ``diff_min``, the most
  negative difference x - max(x) still representable; the output must be scale 1/256, zero point -128.
- Reference kernel: per row, the differences are rescaled into Q5.26, exponentiated with gemmlowp's
  ``exp_on_negative_values``, summed in Q12.19, and each exp is multiplied by the reciprocal of the
  sum (``GetReciprocal``) and shifted to the output scale. Differences below ``diff_min`` contribute
  nothing and give -128.
- Shape unchanged; not patchable; no overlap. C: ``softmax``. .tflite: SoftmaxOptions (beta).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith import gemmlowp
from ..arith.fixedpoint import (as_int64, calculate_input_radius,
                                multiply_by_quantized_multiplier_greater_than_one,
                                preprocess_softmax_scaling, rounding_divide_by_pot,
                                saturating_rounding_doubling_high_mul)
from ..errors import InvalidValueError
from ..ir.checks import quantised_scales
from ..ir.ops import OpKind, SoftmaxAttrs
from ..ir.tensor import DType
from ..ir.tensor import QuantParams
from .lowering_types import KernelSpec, LayerCall, io_buffers, require_int8, unsupported
from .reference_support import unary_int8_with_attrs
from .registry import OpDef

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


@dataclass(frozen=True)
class SoftmaxParams:
    """The prepared input scaling of an int8 SOFTMAX."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int


def prepare_softmax(attrs: SoftmaxAttrs, x_q: QuantParams, y_q: QuantParams) -> SoftmaxParams:
    """`SoftmaxParams`; ValueError unless the output is quantised with scale 1/256, zero point -128."""
    if y_q.zero_point[0] != -128 or np.float32(y_q.scale[0]) != np.float32(1.0 / 256):
        raise ValueError("int8 SOFTMAX needs output scale 1/256 and zero point -128 "
                         f"(got {y_q.scale[0]}, {y_q.zero_point[0]})")
    multiplier, left_shift = preprocess_softmax_scaling(attrs.beta, x_q.scale[0],
                                                        SCALED_DIFF_INTEGER_BITS)
    diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
    return SoftmaxParams(multiplier, left_shift, diff_min)


def softmax_int8(x: np.ndarray, attrs: SoftmaxAttrs, x_q: QuantParams,
                 y_q: QuantParams) -> np.ndarray:
    """SOFTMAX over the last axis, int8 -> int8 (output quantisation must be 1/256, -128)."""
    p = prepare_softmax(attrs, x_q, y_q)
    values = as_int64(x)
    diff = values - values.max(axis=-1, keepdims=True)
    in_range = diff >= p.diff_min
    rescaled = multiply_by_quantized_multiplier_greater_than_one(diff, p.input_multiplier,
                                                                 p.input_left_shift)
    exp_q0 = gemmlowp.exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
    summands = gemmlowp.rescale(exp_q0, 0, ACCUMULATION_INTEGER_BITS)
    sum_of_exps = np.where(in_range, summands, 0).sum(axis=-1, keepdims=True)
    shifted_scale, num_bits_over_unit = gemmlowp.get_reciprocal(sum_of_exps,
                                                                ACCUMULATION_INTEGER_BITS)
    unsaturated = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, exp_q0),
                                         num_bits_over_unit + 31 - 8)
    y = np.clip(unsaturated - 128, -128, 127)
    return np.where(in_range, y, -128).astype(np.int8)


class Softmax(OpDef):
    """SOFTMAX (see the module docstring)."""

    kinds = (OpKind.SOFTMAX,)
    attrs_type = SoftmaxAttrs
    tflite_options = BuiltinOptions.SoftmaxOptions
    tflite_option_fields = (tflite.SoftmaxOptions, ("Beta",))
    _run = staticmethod(unary_int8_with_attrs(softmax_int8))

    def check_values(self, graph, op, where):
        """beta * input scale * 2^26 > 1 (TFLite's Q5.26 input scaling), and an int8 output
        quantised as `prepare_softmax` requires (scale 1/256, zero point -128)."""
        x = quantised_scales(graph, op.inputs[0])
        if x is None:
            return
        beta = op.attrs.beta
        real = min(beta * x[0] * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)), float((1 << 31) - 1))
        if not real > 1.0:
            raise InvalidValueError(f"{where}: beta {beta:.6g} * input scale {x[0]:.6g} is too "
                                    "small (TFLite needs beta * scale * 2^26 > 1)")
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if y_t.dtype is DType.INT8 and y_t.quant is not None:
            try:
                prepare_softmax(op.attrs, x_t.quant, y_t.quant)
            except ValueError:
                raise InvalidValueError(
                    f"{where}: output tensor {y_t.name}: int8 SOFTMAX needs scale 1/256 and zero "
                    f"point -128, got {y_t.quant.scale[0]:.6g}, {y_t.quant.zero_point[0]}") from None

    def run(self, graph, op, env):
        """`softmax_int8`."""
        return self._run(graph, op, env)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """``softmax`` over rows of the last axis."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        if y_t.quant.zero_point[0] != -128 or np.float32(y_t.quant.scale[0]) != np.float32(1 / 256):
            raise unsupported(graph, index, op,
                              "int8 SOFTMAX needs output scale 1/256, zero point -128")
        assert isinstance(op.attrs, SoftmaxAttrs)
        p = prepare_softmax(op.attrs, x_t.quant, y_t.quant)
        depth = x_t.shape[-1]
        spec = KernelSpec(
            "mf_softmax_s8", "softmax",
            "const int8_t *in, int8_t *out, int32_t rows, int32_t depth, int32_t multiplier, "
            "int32_t left_shift, int32_t diff_min")
        args = (*io_buffers(op), x_t.num_elements // depth, depth, p.input_multiplier,
                p.input_left_shift, p.diff_min)
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """beta."""
        return SoftmaxAttrs(float(rop.options.get("Beta", 0.0)))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """SoftmaxOptions."""
        tflite.SoftmaxOptionsStart(builder)
        tflite.SoftmaxOptionsAddBeta(builder, attrs.beta)
        return tflite.SoftmaxOptionsEnd(builder)


OP_DEFS = (Softmax(),)
