"""LOG_SOFTMAX over the last axis, int8 in and int8 out, bit-exact with TFLite Micro
(``log_softmax.cc`` + ``reference_ops::LogSoftmaxQuantized``, the same integer algorithm as TFLite's
``reference_integer_ops::LogSoftmax``).

- Prepare (`prepare_log_softmax`, shared by the reference kernel and the C): the output must be
  quantised with scale 16/256 and zero point 127 (log-probabilities in [-255/16, 0]). With beta 1,
  ``PreprocessLogSoftmaxScalingExp`` gives the input multiplier and left shift that rescale an input
  difference x - max(x) to Q5.26 (as SOFTMAX's ``PreprocessSoftmaxScaling``), and the "reverse
  scaling" divisor and shift, 2^(31 - left_shift) / multiplier as a multiplier below one, that map a
  Q5.26 value back to input units; ``diff_min`` = -CalculateInputRadius(5, left_shift).
- Kernel, per row: the exps of the differences >= diff_min (gemmlowp's ``exp_on_negative_values``)
  are summed in Q12.19; ``log_x_for_x_greater_than_or_equal_to_1`` of the sum gives log(sum) in
  Q5.26. A difference contributes an output only above
  ``adjusted_diff_min = max(diff_min - 1, reverse(log_sum + INT32_MIN))`` (the smallest difference
  whose log-probability is representable); its output is
  ``RoundingDivideByPOT(diff_q5 - log_sum, 31 - 5 - 4) + 127``, clamped to int8; the others give -128.
- Shape unchanged, no MACs; not patchable; no overlap (each row is read twice).
- C: ``log_softmax`` (codegen/templates/kernels/log_softmax.c.j2, with the gemmlowp helpers it
  shares with SOFTMAX). .tflite: an empty LogSoftmaxOptions table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith import gemmlowp
from ..arith.fixedpoint import (INT32_MAX, INT32_MIN, as_int64, calculate_input_radius,
                                multiply_by_quantized_multiplier, preprocess_softmax_scaling,
                                quantize_multiplier_scalar, rounding_divide_by_pot,
                                saturating_rounding_doubling_high_mul, wrap_int32)
from ..errors import InvalidValueError
from ..ir.checks import quantised_scales
from ..ir.ops import OpKind
from ..ir.tensor import DType, QuantParams
from .lowering_types import KernelSpec, LayerCall, io_buffers, require_int8, unsupported
from .reference_support import unary_int8
from .registry import OpDef
from .tflite_common import empty_table

INPUT_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12
OUTPUT_INTEGER_BITS = 4
OUTPUT_ZERO_POINT = 127
OUTPUT_SCALE = np.float32(16.0 / 256)

# gemmlowp's checked constants of log_x_for_x_greater_than_or_equal_to_1 (Q0.31 raw values).
_LOG_2 = 1488522236
_SQRT_SQRT_HALF = 1805811301
_SQRT_HALF = 1518500250
_ONE_QUARTER = 536870912
_ALPHA_N = 117049297
_ALPHA_D = 127690142
_ALPHA_I = 1057819769
_ALPHA_F = 638450708


@dataclass(frozen=True)
class LogSoftmaxParams:
    """The prepared scaling of an int8 LOG_SOFTMAX (TFLite Micro's ``LogSoftmaxOpData``)."""

    input_multiplier: int
    input_left_shift: int
    reverse_scaling_divisor: int
    reverse_scaling_left_shift: int  # <= 0: a right shift (TFLM stores its negation)
    diff_min: int


def prepare_log_softmax(x_q: QuantParams, y_q: QuantParams) -> LogSoftmaxParams:
    """`LogSoftmaxParams`; ValueError unless the output is quantised with 16/256 and 127."""
    if y_q.zero_point[0] != OUTPUT_ZERO_POINT or np.float32(y_q.scale[0]) != OUTPUT_SCALE:
        raise ValueError("int8 LOG_SOFTMAX needs output scale 16/256 and zero point 127 "
                         f"(got {y_q.scale[0]}, {y_q.zero_point[0]})")
    multiplier, left_shift = preprocess_softmax_scaling(1.0, x_q.scale[0], INPUT_INTEGER_BITS)
    real_reverse_scaling_divisor = float(1 << (31 - left_shift)) / float(multiplier)
    reverse_divisor, reverse_shift = quantize_multiplier_scalar(real_reverse_scaling_divisor)
    diff_min = -calculate_input_radius(INPUT_INTEGER_BITS, left_shift)
    return LogSoftmaxParams(multiplier, left_shift, reverse_divisor, reverse_shift, diff_min)


def _multiply_by_pot_param(x, exponent) -> np.ndarray:
    """TFLite ``SaturatingRoundingMultiplyByPOTParam`` for exponents 0..31 (per element)."""
    x, exponent = as_int64(x), as_int64(exponent)
    threshold = np.left_shift(np.int64(1), 31 - exponent) - 1
    shifted = wrap_int32(np.left_shift(x, exponent))
    shifted = np.where(x > threshold, INT32_MAX, shifted)
    shifted = np.where(x < -threshold, INT32_MIN, shifted)
    return np.where(exponent == 0, x, shifted)


def _saturate_int32(x) -> np.ndarray:
    return np.clip(as_int64(x), INT32_MIN, INT32_MAX)


def _rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp ``RoundingHalfSum``: (a + b) / 2, the odd half away from zero (C division)."""
    total = as_int64(a) + as_int64(b)
    summed = total + np.where(total >= 0, 1, -1)
    return np.where(summed >= 0, summed // 2, -((-summed) // 2))


def log_x_for_x_greater_than_or_equal_to_1(x, input_integer_bits: int,
                                           output_integer_bits: int) -> np.ndarray:
    """TFLite's ``log_x_for_x_greater_than_or_equal_to_1``: log(x) for x >= 1 given in
    Q(input_integer_bits), result in Q(output_integer_bits). x is normalised to r * 2^k with r near
    sqrt(sqrt(1/2)) (two candidate normalisations, the better one kept), and log(r) comes from a
    rational approximation around it."""
    accum_bits = output_integer_bits + 1
    srdhm = saturating_rounding_doubling_high_mul
    shifted_quarter = gemmlowp.rescale(np.int64(_ONE_QUARTER), 0, accum_bits)
    z_a = as_int64(x)
    z_a_headroom_plus_1 = gemmlowp.count_leading_zeros_u32(z_a)
    r_a_tmp = _multiply_by_pot_param(z_a, z_a_headroom_plus_1 - 1)
    r_a_raw = _multiply_by_pot_param(srdhm(r_a_tmp, _SQRT_HALF), 1)
    z_a_pow_2_adj = _saturate_int32(_multiply_by_pot_param(
        input_integer_bits - z_a_headroom_plus_1, 31 - accum_bits) + shifted_quarter)
    z_b = srdhm(z_a, _SQRT_HALF)
    z_b_headroom = gemmlowp.count_leading_zeros_u32(z_b) - 1
    r_b_raw = _multiply_by_pot_param(z_a, z_b_headroom)
    z_b_pow_2_adj = _saturate_int32(_multiply_by_pot_param(
        input_integer_bits - z_b_headroom, 31 - accum_bits) - shifted_quarter)
    r = np.minimum(r_a_raw, r_b_raw)
    z_pow_2_adj = np.maximum(z_a_pow_2_adj, z_b_pow_2_adj)
    p = _rounding_half_sum(r, _SQRT_SQRT_HALF)
    q = wrap_int32(r - _SQRT_SQRT_HALF)
    q = wrap_int32(q + q)
    common_sq = srdhm(q, q)
    num = wrap_int32(srdhm(q, r) + srdhm(srdhm(q, common_sq), _ALPHA_N))
    denom_minus_one = wrap_int32(
        srdhm(p, wrap_int32(wrap_int32(_ALPHA_I + q) + srdhm(_ALPHA_D, common_sq)))
        + srdhm(_ALPHA_F, q))
    recip_denom = gemmlowp.one_over_one_plus_x_for_x_in_0_1(denom_minus_one)
    num_scaled = gemmlowp.rescale(num, 0, accum_bits)
    total = wrap_int32(srdhm(z_pow_2_adj, _LOG_2) + srdhm(num_scaled, recip_denom))
    return gemmlowp.rescale(total, accum_bits, output_integer_bits)


def log_softmax_int8(x: np.ndarray, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """LOG_SOFTMAX over the last axis, int8 -> int8 (output quantisation 16/256, 127)."""
    p = prepare_log_softmax(x_q, y_q)
    values = as_int64(x)
    diff = values - values.max(axis=-1, keepdims=True)
    diff_q5 = multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_left_shift)
    exps = gemmlowp.rescale(gemmlowp.exp_on_negative_values(diff_q5, INPUT_INTEGER_BITS), 0,
                            ACCUMULATION_INTEGER_BITS)
    sum_of_exps = wrap_int32(np.where(diff >= p.diff_min, exps, 0).sum(axis=-1, keepdims=True))
    log_sum = log_x_for_x_greater_than_or_equal_to_1(sum_of_exps, ACCUMULATION_INTEGER_BITS,
                                                     INPUT_INTEGER_BITS)
    adjusted_diff_min = np.maximum(
        p.diff_min - 1, multiply_by_quantized_multiplier(log_sum + INT32_MIN,
                                                         p.reverse_scaling_divisor,
                                                         p.reverse_scaling_left_shift))
    shifted = rounding_divide_by_pot(wrap_int32(diff_q5 - log_sum),
                                     31 - INPUT_INTEGER_BITS - OUTPUT_INTEGER_BITS)
    y = np.clip(shifted + OUTPUT_ZERO_POINT, -128, 127)
    return np.where(diff > adjusted_diff_min, y, -128).astype(np.int8)


class LogSoftmax(OpDef):
    """LOG_SOFTMAX (see the module docstring)."""

    kinds = (OpKind.LOG_SOFTMAX,)
    tflite_options = BuiltinOptions.LogSoftmaxOptions
    _run = staticmethod(unary_int8(log_softmax_int8))

    def check_values(self, graph, op, where):
        """Input scale * 2^26 > 1 (beta is 1), and an int8 output quantised as
        `prepare_log_softmax` requires (scale 16/256, zero point 127)."""
        x = quantised_scales(graph, op.inputs[0])
        if x is None:
            return
        if not x[0] * float(1 << (31 - INPUT_INTEGER_BITS)) > 1.0:
            raise InvalidValueError(f"{where}: input scale {x[0]:.6g} is too small (TFLite needs "
                                    "scale * 2^26 > 1)")
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if y_t.dtype is DType.INT8 and y_t.quant is not None:
            try:
                prepare_log_softmax(x_t.quant, y_t.quant)
            except ValueError:
                raise InvalidValueError(
                    f"{where}: output tensor {y_t.name}: int8 LOG_SOFTMAX needs scale 16/256 and "
                    f"zero point 127, got {y_t.quant.scale[0]:.6g}, "
                    f"{y_t.quant.zero_point[0]}") from None

    def run(self, graph, op, env):
        """`log_softmax_int8`."""
        return self._run(graph, op, env)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """``log_softmax`` over rows of the last axis."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        try:
            p = prepare_log_softmax(x_t.quant, y_t.quant)
        except ValueError as exc:
            raise unsupported(graph, index, op, str(exc)) from None
        depth = x_t.shape[-1]
        spec = KernelSpec(
            "mf_log_softmax_s8", "log_softmax",
            "const int8_t *in, int8_t *out, int32_t rows, int32_t depth, int32_t multiplier, "
            "int32_t left_shift, int32_t reverse_divisor, int32_t reverse_shift, int32_t diff_min")
        args = (*io_buffers(op), x_t.num_elements // depth, depth, p.input_multiplier,
                p.input_left_shift, p.reverse_scaling_divisor, p.reverse_scaling_left_shift,
                p.diff_min)
        return LayerCall(op.name, op.kind.value, spec, args)

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """An empty LogSoftmaxOptions table."""
        return empty_table(builder, tflite.LogSoftmaxOptionsStart, tflite.LogSoftmaxOptionsEnd)


OP_DEFS = (LogSoftmax(),)
