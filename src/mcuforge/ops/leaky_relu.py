"""LEAKY_RELU on int8 or int16 (``reference_ops::QuantizeLeakyRelu``), bit-exact with TFLite Micro.

- Prepare (`prepare_leaky_relu`, TFLite Micro's ``CalculateOpDataLeakyRelu``): two multipliers from
  the float32 scales and alpha in double arithmetic, ``identity = s_in / s_out`` and ``alpha = s_in *
  alpha / s_out``, each through QuantizeMultiplier.
- Kernel: ``v = x - z_in``; ``y = z_out + MultiplyByQuantizedMultiplier(v, identity)`` for v >= 0,
  else with the alpha multiplier; clamped to int8 (int16 for 16x8: zero points 0, the same
  arithmetic). A negative alpha (a negative multiplier) is
  applied as TFLite Micro does: ``-MultiplyByQuantizedMultiplier(v, |alpha multiplier|)`` (its
  ties round the other way than a negative multiplier would).
- alpha must be a finite float32 (refused at import otherwise).
- Shape unchanged, no MACs; spatially pointwise (patchable); ELEMENTWISE overlap.
- C: int8, the 256-entry table of the reference kernel (`lut`); int16, ``leaky_relu_s16`` (the
  prepared multipliers, element by element). .tflite: LeakyReluOptions (alpha).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import as_int64, multiply_by_quantized_multiplier, quantize_multiplier_scalar
from ..errors import InvalidValueError
from ..ir.checks import check_multiplier, quantised_scales
from ..ir.ops import OpKind
from ..ir.tensor import DType, QuantParams
from .lowering_types import Buffer, KernelSpec, LayerCall, require_activations
from .lut import UnaryTableOp, lower_unary_table
from .reference_support import check_int8_or_int16, unary_int8_with_attrs


@dataclass(frozen=True)
class LeakyReluAttrs:
    """LEAKY_RELU: ``y = x`` for x >= 0, ``alpha * x`` below (alpha is a float32 in .tflite)."""

    alpha: float = 0.2


@dataclass(frozen=True)
class LeakyReluParams:
    """The prepared quantisation of an int8 LEAKY_RELU (TFLite Micro's ``LeakyReluOpData``)."""

    input_zero_point: int
    output_zero_point: int
    identity_multiplier: int
    identity_shift: int
    alpha_multiplier: int
    alpha_shift: int


def _real_multipliers(x_scale: float, y_scale: float, alpha: float) -> tuple[float, float]:
    """(identity, alpha) real multipliers: the float32 scales and alpha in double arithmetic."""
    s_in, s_out, a = (float(np.float32(v)) for v in (x_scale, y_scale, alpha))
    return s_in / s_out, s_in * a / s_out


def prepare_leaky_relu(x_q: QuantParams, y_q: QuantParams, alpha: float) -> LeakyReluParams:
    """`LeakyReluParams` from the input and output quantisation and alpha."""
    identity, alpha_real = _real_multipliers(x_q.scale[0], y_q.scale[0], alpha)
    m_id, s_id = quantize_multiplier_scalar(identity)
    m_alpha, s_alpha = quantize_multiplier_scalar(alpha_real)
    return LeakyReluParams(int(x_q.zero_point[0]), int(y_q.zero_point[0]), m_id, s_id, m_alpha,
                           s_alpha)


def leaky_relu_int8(x: np.ndarray, attrs: LeakyReluAttrs, x_q: QuantParams,
                    y_q: QuantParams) -> np.ndarray:
    """LEAKY_RELU of an int8 (or int16, giving int16) tensor (TFLite's ``QuantizeLeakyRelu``)."""
    p = prepare_leaky_relu(x_q, y_q, attrs.alpha)
    v = as_int64(x) - p.input_zero_point
    positive = multiply_by_quantized_multiplier(v, p.identity_multiplier, p.identity_shift)
    # A negative alpha: TFLite Micro scales by |multiplier| and negates (its
    # MultiplyByQuantizedMultiplier takes non-negative multipliers only).
    sign = -1 if p.alpha_multiplier < 0 else 1
    negative = sign * multiply_by_quantized_multiplier(v, abs(p.alpha_multiplier), p.alpha_shift)
    y = np.where(v >= 0, positive, negative) + p.output_zero_point
    dtype = np.int16 if np.asarray(x).dtype == np.int16 else np.int8
    return np.clip(y, np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)


class LeakyRelu(UnaryTableOp):
    """LEAKY_RELU (see the module docstring): a unary table op with an alpha attribute."""

    attrs_type = LeakyReluAttrs
    input_dtypes = frozenset({DType.INT8, DType.INT16})  # int16: 16x8 activations (`ops.wide`)
    output_dtypes = frozenset({DType.INT8, DType.INT16})
    tflite_options = BuiltinOptions.LeakyReluOptions
    tflite_option_fields = (tflite.LeakyReluOptions, ("Alpha",))

    def __init__(self):
        super().__init__(OpKind.LEAKY_RELU, leaky_relu_int8)
        self._run = unary_int8_with_attrs(leaky_relu_int8, check_int8_or_int16)

    def check_values(self, graph, op, where):
        """alpha a finite float32, int8 or int16 throughout, and the identity and alpha
        multipliers `prepare_leaky_relu` derives."""
        check_int8_or_int16(graph, op, (op.inputs[0], op.outputs[0]))
        alpha = op.attrs.alpha
        if not (math.isfinite(alpha) and abs(alpha) <= float(np.finfo(np.float32).max)):
            raise InvalidValueError(f"{where}: alpha {alpha!r} (must be a finite float32)")
        x = quantised_scales(graph, op.inputs[0])
        y = quantised_scales(graph, op.outputs[0])
        if x is not None and y is not None:
            identity, alpha_real = _real_multipliers(x[0], y[0], alpha)
            check_multiplier(where, f"identity (tensor {op.inputs[0]} / output)", identity)
            check_multiplier(where, f"alpha (tensor {op.inputs[0]} * alpha / output)", alpha_real)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """int8: the 256-entry table of the reference kernel with the op's alpha; int16:
        ``leaky_relu_s16``."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if x_t.dtype is DType.INT16:
            require_activations(graph, index, op, (x_t.name, y_t.name), DType.INT16)
            p = prepare_leaky_relu(x_t.quant, y_t.quant, op.attrs.alpha)
            spec = KernelSpec("mf_leaky_relu_s16", "leaky_relu_s16",
                              "const int16_t *in, int16_t *out, int32_t n, int32_t in_zp, "
                              "int32_t out_zp, int32_t id_mult, int32_t id_shift, "
                              "int32_t alpha_mult, int32_t alpha_shift, int32_t alpha_sign")
            args = (Buffer("tensor", x_t.name, "int16_t"), Buffer("tensor", y_t.name, "int16_t"),
                    x_t.num_elements, p.input_zero_point, p.output_zero_point,
                    p.identity_multiplier, p.identity_shift, abs(p.alpha_multiplier),
                    p.alpha_shift, -1 if p.alpha_multiplier < 0 else 1)
            return LayerCall(op.name, op.kind.value, spec, args,
                             note="in place" if overlapped else "")

        def kernel(x, x_q, y_q):
            return leaky_relu_int8(x, op.attrs, x_q, y_q)
        return lower_unary_table(graph, index, op, kernel, overlapped)

    def decode_attrs(self, kind, reader, rop, where):
        """alpha."""
        return LeakyReluAttrs(float(rop.options.get("Alpha", 0.0)))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """LeakyReluOptions with alpha."""
        tflite.LeakyReluOptionsStart(builder)
        tflite.LeakyReluOptionsAddAlpha(builder, float(attrs.alpha))
        return tflite.LeakyReluOptionsEnd(builder)


OP_DEFS = (LeakyRelu(),)
