"""SOFTMAX over the last axis, int8 in and int8 out (TFLite Micro ``SoftmaxPrepare`` +
``reference_ops::Softmax``), or int16 in and int16 out (16x8: ``reference_ops::SoftmaxInt16``).

- Prepare (`prepare_softmax`, shared by the reference kernel and the C): beta * s_in becomes a
  Q5.26 input multiplier and left shift (``PreprocessSoftmaxScaling``) and ``diff_min``, the most
  negative difference x - max(x) still representable; the output must be scale 1/256, zero point -128.
- Reference kernel: per row, the differences are rescaled into Q5.26, exponentiated with gemmlowp's
  ``exp_on_negative_values``, summed in Q12.19, and each exp is multiplied by the reciprocal of the
  sum (``GetReciprocal``) and shifted to the output scale. Differences below ``diff_min`` contribute
  nothing and give -128.
- int16 (`prepare_softmax_int16`, `softmax_int16`): beta * s_in / (10 / 65535) becomes one
  QuantizeMultiplier (so the differences [-65535, 0] span [-10, 0]); the output must be zero point 0,
  scale 1/32768 (within 0.1 %). Per row: exp of each rescaled difference, recentred by +32767, from
  the interpolated 513-entry table of exp over [-10, 0] (`lut16.lut_populate_int16`); the sum is
  normalised (its leading zeros), recentred and looked up in the table of 1 / (1 + x) over [0, 1];
  each exp times that reciprocal, shifted back by 31 - leading zeros, clamped to [0, 32767].
- Shape unchanged; not patchable; no overlap. C: ``softmax`` (int8), ``softmax_s16`` (int16, the
  two tables baked into the kernel; the output row caches the exps, as TFLite Micro's does).
  .tflite: SoftmaxOptions (beta).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith import gemmlowp
from ..arith.fixedpoint import (as_int64, calculate_input_radius, multiply_by_quantized_multiplier,
                                multiply_by_quantized_multiplier_greater_than_one,
                                preprocess_softmax_scaling, quantize_multiplier_scalar,
                                rounding_divide_by_pot, saturating_rounding_doubling_high_mul)
from ..errors import InvalidValueError
from ..ir.checks import quantised_scales
from ..ir.ops import OpKind, SoftmaxAttrs
from ..ir.tensor import DType
from ..ir.tensor import QuantParams
from .lowering_types import (Buffer, KernelSpec, LayerCall, io_buffers, require_activations,
                             require_int8, unsupported)
from .lut16 import INT16_MAX, INT16_MIN, exp_float32, lut_lookup_int16, lut_populate_int16
from .reference_support import check_int8_or_int16, unary_int8_with_attrs
from .registry import OpDef

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12
INT16_DIFF_RANGE = 65535  # int16: differences [-65535, 0] are rescaled to [-10, 0]
MAX_INT16_LEFT_SHIFT = 15  # 65535 << 15 still fits the int32 MultiplyByQuantizedMultiplier
MAX_INT16_DEPTH = (1 << 31) // INT16_MAX  # the int32 sum of exps (each at most 32767)


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


@dataclass(frozen=True)
class Softmax16Params:
    """The prepared input scaling of an int16 SOFTMAX."""

    input_multiplier: int
    input_left_shift: int


def prepare_softmax_int16(attrs: SoftmaxAttrs, x_q: QuantParams,
                          y_q: QuantParams) -> Softmax16Params:
    """`Softmax16Params`; ValueError unless the output is quantised with zero point 0 and scale
    1/32768 (within 0.1 %, TFLite's ``TF_LITE_ENSURE_NEAR``) and the left shift stays within
    int32."""
    off_scale = abs(np.float32(y_q.scale[0]) - np.float32(1 / 32768)) > np.float32(0.001 / 32768)
    if int(y_q.zero_point[0]) != 0 or off_scale:
        raise ValueError(f"an int16 SOFTMAX needs output scale 1/32768 and zero point 0, got scale "
                         f"{y_q.scale[0]:.6g}, zero point {y_q.zero_point[0]}")
    real = (float(np.float32(x_q.scale[0])) * float(np.float32(attrs.beta))
            / (10.0 / INT16_DIFF_RANGE))
    multiplier, shift = quantize_multiplier_scalar(real)
    if shift > MAX_INT16_LEFT_SHIFT:
        raise ValueError(f"beta {attrs.beta:.6g} * input scale {x_q.scale[0]:.6g} is too large for "
                         f"the int16 input rescaling (left shift {shift} > {MAX_INT16_LEFT_SHIFT})")
    return Softmax16Params(multiplier, shift)


@lru_cache(maxsize=1)
def softmax_int16_tables() -> tuple[np.ndarray, np.ndarray]:
    """TFLite Micro's two int16 SOFTMAX tables (513 entries each): exp over [-10, 0] and
    1 / (1 + x) over [0, 1], both to [-1, 1]."""
    f32, span = np.float32, np.float32(INT16_DIFF_RANGE)
    exp_lut = lut_populate_int16(exp_float32, f32(10.0) / span, INT16_MAX, f32(2.0) / span, 0)
    reciprocal_lut = lut_populate_int16(lambda v: f32(1.0) / (f32(1.0) + v), f32(1.0) / span,
                                        INT16_MIN, f32(2.0) / span, 0)
    return exp_lut, reciprocal_lut


def softmax_int16(x: np.ndarray, attrs: SoftmaxAttrs, x_q: QuantParams,
                  y_q: QuantParams) -> np.ndarray:
    """SOFTMAX over the last axis, int16 -> int16 (output quantisation 1/32768, 0)."""
    p = prepare_softmax_int16(attrs, x_q, y_q)
    exp_lut, reciprocal_lut = softmax_int16_tables()
    values = as_int64(x)
    diff = values - values.max(axis=-1, keepdims=True)
    scaled = multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_left_shift)
    exps = as_int64(lut_lookup_int16(np.clip(scaled + INT16_MAX, INT16_MIN, INT16_MAX), exp_lut))
    sum_of_exps = exps.sum(axis=-1, keepdims=True)
    headroom_plus_one = 32 - np.frexp(sum_of_exps.astype(np.float64))[1]  # leading zeros (int32)
    shifted_sum = ((sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    reciprocal = lut_lookup_int16(
        np.clip(shifted_sum - ((1 << 15) + (1 << 16)), INT16_MIN, INT16_MAX), reciprocal_lut)
    right_shift = 31 - headroom_plus_one
    result = (exps * as_int64(reciprocal) + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(result, 0, INT16_MAX).astype(np.int16)


def softmax(x: np.ndarray, attrs: SoftmaxAttrs, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """`softmax_int16` for int16 input, else `softmax_int8`."""
    kernel = softmax_int16 if x.dtype == np.int16 else softmax_int8
    return kernel(x, attrs, x_q, y_q)


class Softmax(OpDef):
    """SOFTMAX (see the module docstring)."""

    kinds = (OpKind.SOFTMAX,)
    attrs_type = SoftmaxAttrs
    tflite_options = BuiltinOptions.SoftmaxOptions
    tflite_option_fields = (tflite.SoftmaxOptions, ("Beta",))
    input_dtypes = frozenset({DType.INT8, DType.INT16})  # int16: 16x8 activations (`ops.wide`)
    output_dtypes = frozenset({DType.INT8, DType.INT16})
    _run = staticmethod(unary_int8_with_attrs(softmax, check_int8_or_int16))

    def check_values(self, graph, op, where):
        """int8: beta * input scale * 2^26 > 1 (TFLite's Q5.26 input scaling), and an output
        quantised as `prepare_softmax` requires (scale 1/256, zero point -128). int16: int16 in
        and out, as `prepare_softmax_int16` requires, rows of at most `MAX_INT16_DEPTH`."""
        x = quantised_scales(graph, op.inputs[0])
        if x is None:
            return
        if graph.tensors[op.inputs[0]].dtype is DType.INT16:
            self._check_int16_values(graph, op, where)
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

    @staticmethod
    def _check_int16_values(graph, op, where) -> None:
        check_int8_or_int16(graph, op, (op.inputs[0], op.outputs[0]))
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if x_t.shape and x_t.shape[-1] > MAX_INT16_DEPTH:
            raise InvalidValueError(f"{where}: input tensor {x_t.name}: rows of {x_t.shape[-1]} "
                                    f"values overflow the int16 SOFTMAX's int32 sum (at most "
                                    f"{MAX_INT16_DEPTH})")
        if y_t.quant is None:
            return
        try:
            prepare_softmax_int16(op.attrs, x_t.quant, y_t.quant)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: output tensor {y_t.name}: {exc}") from None

    def run(self, graph, op, env):
        """`softmax_int8`, or `softmax_int16` on int16 tensors."""
        return self._run(graph, op, env)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """``softmax`` (int8) or ``softmax_s16`` (int16) over rows of the last axis."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if x_t.dtype is DType.INT16:
            return self._lower_int16(graph, index, op)
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

    def _lower_int16(self, graph, index, op) -> LayerCall:
        """``softmax_s16`` with the prepared input multiplier and shift."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_activations(graph, index, op, (x_t.name, y_t.name), DType.INT16)
        assert isinstance(op.attrs, SoftmaxAttrs)
        try:
            p = prepare_softmax_int16(op.attrs, x_t.quant, y_t.quant)
        except ValueError as exc:
            raise unsupported(graph, index, op, str(exc)) from None
        exp_lut, reciprocal_lut = softmax_int16_tables()
        spec = KernelSpec(
            "mf_softmax_s16", "softmax_s16",
            "const int16_t *in, int16_t *out, int32_t rows, int32_t depth, int32_t multiplier, "
            "int32_t shift",
            {"exp_lut": [int(v) for v in exp_lut],
             "reciprocal_lut": [int(v) for v in reciprocal_lut]})
        depth = x_t.shape[-1]
        args = (Buffer("tensor", x_t.name, "int16_t"), Buffer("tensor", y_t.name, "int16_t"),
                x_t.num_elements // depth, depth, p.input_multiplier, p.input_left_shift)
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
