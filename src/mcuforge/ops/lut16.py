"""TFLite's int16 lookup-table arithmetic, in numpy: one home for what the int16 LOGISTIC, TANH,
SOFTMAX and the integer LSTM (`lstm_int16`) share.

- The sigmoid table (``sigmoid_table_uint16``: sigmoid(i / 24) in Q0.16, 256 entries) read with
  linear interpolation: `sigmoid_int16` / `tanh_int16` are ``reference_integer_ops::Logistic`` and
  ``::Tanh`` on int16 (tanh(x) = 2 sigmoid(2x) - 1). Their input is first scaled by
  ``(x * multiplier + round) >> left_shift`` (a zero multiplier is the power-of-two case: ``3 <<
  left_shift`` and no shift, `effective_scaling`).
- `prepare_sigmoid_int16`: the int16 branch of TFLite Micro's ``CalculateArithmeticOpDataLogistic``
  and tanh's ``CalculateArithmeticOpData``: zero points 0; a power-of-two input scale of exactly
  2^-12 (LOGISTIC; TANH also 2^-11) keeps the multiplier 0, any other scale becomes an integer
  multiplier of ``s_in * 3 * 4096`` doubled until it passes 32767 / 2, with one left shift per
  doubling (at most 31); the output scale must be 2^-15 (``CheckedLog2``, within 1e-3 in log2).
- `lut_populate_int16` / `lut_lookup_int16`: ``LUTPopulate<int16_t>`` (513 entries: 512 samples of
  the function over the input range, each corrected by half the error of the interpolated midpoint,
  and the end point; float32 arithmetic throughout, as TFLite Micro computes it) and ``LUTLookup``
  (the top 9 bits index, the low 7 interpolate), the tables of the int16 SOFTMAX.
- `SigmoidTableOp`: LOGISTIC and TANH, int8 through the 256-entry table of `lut`, int16 through the
  sigmoid table (in the C too: ``sigmoid_s16``, the table baked into the kernel, element i read
  before it is written, so the ELEMENTWISE overlap holds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..arith.fixedpoint import as_int64, round_half_away
from ..errors import InvalidValueError
from ..ir.ops import Op, OpKind
from ..ir.tensor import DType, QuantParams
from .lowering_types import Buffer, KernelSpec, LayerCall, require_activations, unsupported
from .lut import UnaryTableOp
from .reference_support import check_int8_or_int16, quant_of, value_of

INT16_MIN, INT16_MAX = -32768, 32767
LUT16_SIZE = 513

# sigmoid(i / 24) in 0.16 fixed point, the table TFLite (``sigmoid_table_uint16`` in
# tensorflow/lite/kernels/internal/common.h) and CMSIS-NN share. Its values are TensorFlow's:
# Copyright The TensorFlow Authors, licensed under the Apache License, Version 2.0
# (https://www.apache.org/licenses/LICENSE-2.0). It is not the plain rounding of
# 65536 * sigmoid(i / 24) (44 entries differ by one), so it is kept as data.
SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535], dtype=np.int64)
assert SIGMOID_TABLE_UINT16.size == 256

SIGMOID_INPUT_INTEGER_BITS = 3    # the table's input is Q3.12 (times 3/4: +-10.7 over +-2^15)
SIGMOID_OUTPUT_FRACTION_BITS = 15  # Q0.15 out
MAX_SIGMOID_MULTIPLIER = 32767     # TFLite asserts it (the int32 product then cannot overflow)


@dataclass(frozen=True)
class SigmoidScaling:
    """The prepared input scaling of an int16 LOGISTIC or TANH (TFLite Micro's ``OpData``)."""

    input_multiplier: int
    input_left_shift: int


def effective_scaling(multiplier: int, left_shift: int) -> tuple[int, int]:
    """The (multiplier, shift) the kernels apply: a zero multiplier (the power-of-two case) is
    ``3 << left_shift`` with no shift."""
    if multiplier == 0:
        return 3 << left_shift, 0
    return multiplier, left_shift


def _scaled(x, multiplier: int, left_shift: int) -> np.ndarray:
    """``(x * multiplier + round) >> shift`` as the int16 Logistic and Tanh scale their input."""
    multiplier, left_shift = effective_scaling(multiplier, left_shift)
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    return (as_int64(x) * multiplier + rounding) >> left_shift


def _interpolate(magnitude: np.ndarray, fraction_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(saturated, interpolated table value scaled by 2^fraction_bits) at |input|."""
    index = magnitude >> fraction_bits
    saturated = index >= 255
    safe = np.minimum(index, 254)
    low, high = SIGMOID_TABLE_UINT16[safe], SIGMOID_TABLE_UINT16[safe + 1]
    fraction = magnitude & ((1 << fraction_bits) - 1)
    return saturated, (low << fraction_bits) + fraction * (high - low)


def sigmoid_int16(x, input_multiplier: int = 0, input_left_shift: int = 0) -> np.ndarray:
    """TFLite's int16 ``reference_integer_ops::Logistic``: Q3.12 in (with the default scaling),
    Q0.15 out."""
    value = _scaled(x, input_multiplier, input_left_shift)
    saturated, result = _interpolate(np.abs(value), 9)
    result = np.where(saturated, 0x7FFF << 10, result)
    result = np.where(value >= 0, result + (1 << 9), (1 << (16 + 9)) - result + (1 << 9) - 1)
    return (result >> 10).astype(np.int16)


def tanh_int16(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """TFLite's int16 ``reference_integer_ops::Tanh`` (Q0.15 out)."""
    value = _scaled(x, input_multiplier, input_left_shift)
    saturated, result = _interpolate(np.abs(value), 8)
    result = np.where(saturated, 0xFFFF << 8, result)
    result = np.where(value >= 0, result - (1 << 23) + (1 << 7), -result + (1 << 23) + (1 << 7) - 1)
    return (result >> 8).astype(np.int16)


def checked_log2(x: float) -> tuple[bool, int]:
    """TFLite ``CheckedLog2`` (float arithmetic): (whether ``x`` is a power of two within 1e-3 in
    log2, the rounded log2)."""
    inverse_log_2 = np.float32(1.0) / np.float32(math.log(2.0))
    x_log2 = np.float32(math.log(float(np.float32(x)))) * inverse_log_2
    rounded = round_half_away(np.float32(x_log2))
    return bool(abs(np.float32(x_log2 - rounded)) < np.float32(1e-3)), int(rounded)


def prepare_sigmoid_int16(x_q: QuantParams, y_q: QuantParams, tanh: bool) -> SigmoidScaling:
    """`SigmoidScaling` of an int16 LOGISTIC (``tanh`` False) or TANH; ValueError naming the field
    for a zero point other than 0, an output scale other than 2^-15, or an input scale whose
    multiplier leaves TFLite's range."""
    for role, q in (("input", x_q), ("output", y_q)):
        if int(q.zero_point[0]) != 0:
            raise ValueError(f"{role} zero point {q.zero_point[0]}; an int16 "
                             f"{'TANH' if tanh else 'LOGISTIC'} needs 0")
    pot, log2 = checked_log2(x_q.scale[0])
    left_shift = (15 - SIGMOID_INPUT_INTEGER_BITS) + log2
    pot = pot and (left_shift in (0, 1) if tanh else left_shift == 0)
    if pot:
        multiplier = 0
    else:
        real = float(np.float32(x_q.scale[0])) * 4096.0 * 3.0
        left_shift = 0
        while real <= 32767.0 / 2.0 and left_shift <= 30:
            left_shift += 1
            real *= 2.0
        multiplier = int(real)
        if not 0 < multiplier <= MAX_SIGMOID_MULTIPLIER:
            raise ValueError(f"input scale {x_q.scale[0]:.6g} gives the input multiplier "
                             f"{real:.6g} (s_in * 3 * 4096), outside TFLite's [1, 32767]")
    is_pot, out_log2 = checked_log2(y_q.scale[0])
    if not is_pot or out_log2 != -SIGMOID_OUTPUT_FRACTION_BITS:
        raise ValueError(f"output scale {y_q.scale[0]:.6g}; an int16 "
                         f"{'TANH' if tanh else 'LOGISTIC'} needs 2^-15 (1/32768)")
    return SigmoidScaling(multiplier, left_shift)


def lut_populate_int16(transform: Callable[[np.ndarray], np.ndarray], input_scale: float,
                       input_zero_point: int, output_scale: float,
                       output_zero_point: int) -> np.ndarray:
    """TFLite ``LUTPopulate<int16_t>`` (float32 arithmetic): the 513-entry table of ``transform``
    (float32 in, float32 out) from the int16 input quantisation to the int16 output's."""
    f32 = np.float32
    input_min = f32(input_scale) * f32(INT16_MIN - input_zero_point)
    input_max = f32(input_scale) * f32(INT16_MAX - input_zero_point)
    output_min = f32(output_scale) * f32(INT16_MIN - output_zero_point)
    output_max = f32(output_scale) * f32(INT16_MAX - output_zero_point)
    steps = LUT16_SIZE - 1
    step = (input_max - input_min) / f32(steps)
    half_step = step / f32(2)
    scaling_inv = f32(INT16_MAX - INT16_MIN + 1) / (output_max - output_min)
    i = np.arange(steps, dtype=np.float32)
    at = input_min + i * step
    val = transform(at).astype(np.float32)
    val_midpoint = transform(at + half_step).astype(np.float32)
    val_next = transform(input_min + (i + f32(1)) * step).astype(np.float32)
    sample = round_half_away(val * scaling_inv)
    midpoint_interpolated = round_half_away((val_next * scaling_inv + sample) / f32(2))
    midpoint = round_half_away(val_midpoint * scaling_inv)
    bias = round_half_away((midpoint_interpolated - midpoint) / f32(2))
    last = round_half_away(transform(np.array([input_max], np.float32)).astype(np.float32)
                           * scaling_inv)
    table = np.concatenate([sample - bias, last])
    return np.clip(table, INT16_MIN, INT16_MAX).astype(np.int16)


def exp_float32(x: np.ndarray) -> np.ndarray:
    """``std::exp`` of float32 values, correctly rounded to float32."""
    return np.exp(np.asarray(x, np.float64)).astype(np.float32)


def lut_lookup_int16(x, lut: np.ndarray) -> np.ndarray:
    """TFLite ``LUTLookup(int16_t, lut)``: ``lut[256 + (x >> 7)]`` plus the slope to the next entry
    times the low 7 bits, rounded (int16 arithmetic, as TFLite's)."""
    x = as_int64(x)
    table = as_int64(lut)
    index = 256 + (x >> 7)
    base = table[index]
    slope = ((table[index + 1] - base - INT16_MIN) & 0xFFFF) + INT16_MIN  # an int16_t difference
    delta = (slope * (x & 0x7F) + 64) >> 7
    return (((base + delta - INT16_MIN) & 0xFFFF) + INT16_MIN).astype(np.int16)


# --- LOGISTIC and TANH on int8 (a 256-entry table) or int16 (the sigmoid table) ------------------

def lower_sigmoid_int16(graph, index: int, op: Op, scaling: SigmoidScaling, tanh: bool,
                        overlapped: bool) -> LayerCall:
    """The int16 LOGISTIC / TANH layer: ``sigmoid_s16``'s kernel (the sigmoid table baked into the
    kernel) with the effective input multiplier and shift."""
    multiplier, left_shift = effective_scaling(scaling.input_multiplier, scaling.input_left_shift)
    spec = KernelSpec(f"mf_{'tanh' if tanh else 'logistic'}_s16", "sigmoid_s16",
                      "const int16_t *in, int16_t *out, int32_t n, int32_t multiplier, "
                      "int32_t left_shift",
                      {"tanh": tanh, "table": [int(v) for v in SIGMOID_TABLE_UINT16]})
    x_name, y_name = op.inputs[0], op.outputs[0]
    args = (Buffer("tensor", x_name, "int16_t"), Buffer("tensor", y_name, "int16_t"),
            graph.tensors[x_name].num_elements, multiplier, left_shift)
    return LayerCall(op.name, op.kind.value, spec, args,
                     note="int16 sigmoid table" + (", in place" if overlapped else ""))


class SigmoidTableOp(UnaryTableOp):
    """LOGISTIC or TANH: int8 as a `UnaryTableOp` (the 256-entry table of ``kernel``), int16 (16x8)
    through TFLite's interpolated sigmoid table (`prepare_sigmoid_int16`, `sigmoid_int16` /
    `tanh_int16`). Subclasses give the int8 import checks (`check_int8_values`)."""

    input_dtypes = frozenset({DType.INT8, DType.INT16})  # int16: 16x8 activations (`ops.wide`)
    output_dtypes = frozenset({DType.INT8, DType.INT16})

    def __init__(self, kind: OpKind, kernel: Callable[..., np.ndarray], tanh: bool):
        super().__init__(kind, kernel)
        self.tanh = tanh

    def prepare_int16(self, x_q: QuantParams, y_q: QuantParams) -> SigmoidScaling:
        """`prepare_sigmoid_int16` of this kind."""
        return prepare_sigmoid_int16(x_q, y_q, self.tanh)

    def kernel_int16(self, x, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
        """The int16 kernel: TFLite's ``reference_integer_ops::Logistic`` / ``::Tanh`` (int16)."""
        p = self.prepare_int16(x_q, y_q)
        function = tanh_int16 if self.tanh else sigmoid_int16
        return function(x, p.input_multiplier, p.input_left_shift)

    @staticmethod
    def _wide(graph, op) -> bool:
        return graph.tensors[op.inputs[0]].dtype is DType.INT16

    def check_values(self, graph, op, where):
        """int16: `prepare_sigmoid_int16` accepts the quantisation; int8: `check_int8_values`."""
        if not self._wide(graph, op):
            self.check_int8_values(graph, op, where)
            return
        check_int8_or_int16(graph, op, (op.inputs[0], op.outputs[0]))
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if x_t.quant is None or y_t.quant is None:
            return
        try:
            self.prepare_int16(x_t.quant, y_t.quant)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: tensor {x_t.name} -> {y_t.name}: {exc}") from None

    def check_int8_values(self, graph, op, where) -> None:
        """The int8 import checks (default: the input's requantisation)."""
        super().check_values(graph, op, where)

    def run(self, graph, op, env):
        """The int8 kernel, or the int16 one."""
        if not self._wide(graph, op):
            return super().run(graph, op, env)
        x_name, y_name = op.inputs[0], op.outputs[0]
        check_int8_or_int16(graph, op, (x_name, y_name))
        return self.kernel_int16(value_of(graph, env, x_name), quant_of(graph, op, x_name),
                                 quant_of(graph, op, y_name))

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """int8: the 256-entry table; int16: `lower_sigmoid_int16`."""
        if not self._wide(graph, op):
            return super().lower(graph, index, op, target, overlapped, row_ring)
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_activations(graph, index, op, (x_t.name, y_t.name), DType.INT16)
        try:
            scaling = self.prepare_int16(x_t.quant, y_t.quant)
        except ValueError as exc:
            raise unsupported(graph, index, op, str(exc)) from None
        return lower_sigmoid_int16(graph, index, op, scaling, self.tanh, overlapped)
