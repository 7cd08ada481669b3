"""UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations, int8 weights, int32 biases and an int16 cell
state, bit-exact with TFLite Micro's reference kernel (``unidirectional_sequence_lstm.cc`` +
``lstm_eval.h`` / ``lstm_eval.cc`` / ``lstm_eval_common.cc``, ``EvalLstm<int8, int8, int16, int32>``).

The standard (Keras) LSTM only: no peephole, no projection, no layer norm, no CIFG (the .tflite
inputs 9-11, 16-17 and 20-23 must be absent; the reader refuses them in one line).

- IR inputs (13): the input [B, T, I] (or [T, B, I] with ``time_major``), the weights
  input-to-{input, forget, cell, output} [U, I], recurrent-to-{input, forget, cell, output} [U, U]
  (symmetric int8, per tensor), the gate biases {input, forget, cell, output} [U] (int32). The
  .tflite hidden state (input 18) is an int8 variable quantised like the output (TFLM copies it to
  the output); the cell state (input 19) an int16 variable whose power-of-two scale is the
  attribute ``cell_scale``. Both start at TFLM's reset values (the hidden state at its zero point,
  the cell at 0) and carry from one invocation to the next, as TFLM's variable tensors do
  (`run_stateful`; `run` is one sequence from the reset state).
- Prepare (`prepare_lstm`, TFLM's ``PrepareGateParametersInteger``): per gate the input FC
  (input * w / 2^-12, with the bias) and the recurrent FC (hidden * w / 2^-12, no bias), into
  Q3.12 int16; the products forget * cell -> cell (2^-15 * c / c), input * cell gate -> cell
  (2^-30 / c) and tanh(cell) * output gate -> hidden (2^-30 / h, the hidden zero point);
  ``cell_scale_power`` = log2(cell scale); the cell clip quantised to int16 (0: none).
- Kernel, per step (`lstm_int16`): gate = sat16(FC(x) + FC(h)); i, f, o = sigmoid, g = tanh
  (the fused activation, TANH); c = sat16(f*c + i*g), clipped; h = tanh(c) * o in int8; the output
  at this step is h.
- MACs 4 * U * (I + U) per step and batch. Not patchable, no overlap.
- C (`lower`, template ``kernels/lstm.c.j2``): the same steps in int32 C with the zero points
  folded into the FC biases; the hidden and cell state are `StateArray`s (static arrays of model.c
  outside the arena, kept across ``mcuforge_invoke`` calls, reset by ``mcuforge_reset_state``), the
  four gates of a step are arena scratch. .tflite: UnidirectionalSequenceLSTMOptions (TANH, cell
  clip, time major; proj clip 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tflite
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import quantize_multiplier_scalar
from ..errors import InvalidValueError, UnsupportedOpError
from ..ir.ops import OpKind
from ..ir.tensor import DType, QuantParams
from .lowering_types import (Buffer, ConstArray, KernelSpec, LayerCall, StateArray, c_ident,
                             require_int8, unsupported)
from .lstm_int16 import fc_int16, lstm_tanh_int16, mul_elementwise
from .lut16 import INT16_MAX, INT16_MIN, SIGMOID_TABLE_UINT16, sigmoid_int16
from .reference_support import op_location, quant_of, value_of
from .registry import OpDef

GATES = ("input", "forget", "cell", "output")
GATE_INPUT_SCALE = 2.0 ** -12   # the FC outputs: Q3.12
GATE_OUTPUT_SCALE = 2.0 ** -15  # sigmoid / tanh outputs: Q0.15
# .tflite input positions (TFLite's lstm_shared.h).
_INPUT_WEIGHTS = (1, 2, 3, 4)
_RECURRENT_WEIGHTS = (5, 6, 7, 8)
_BIASES = (12, 13, 14, 15)
_HIDDEN_STATE, _CELL_STATE = 18, 19
_VARIANTS = {9: "peephole", 10: "peephole", 11: "peephole", 16: "projection", 17: "projection",
             20: "layer norm", 21: "layer norm", 22: "layer norm", 23: "layer norm"}
_KEPT = (0, *_INPUT_WEIGHTS, *_RECURRENT_WEIGHTS, *_BIASES)


@dataclass(frozen=True)
class LstmAttrs:
    """UNIDIRECTIONAL_SEQUENCE_LSTM: the cell state's scale (a power of two), the cell clip
    (0: none) and whether the input is [time, batch, features]."""

    cell_scale: float = 2.0 ** -11
    cell_clip: float = 0.0
    time_major: bool = False


@dataclass(frozen=True)
class GateParams:
    """One gate's two FC requantisations (multiplier, shift) into Q3.12."""

    input_multiplier: int
    input_shift: int
    recurrent_multiplier: int
    recurrent_shift: int


@dataclass(frozen=True)
class LstmParams:
    """The prepared integers of an int8x8_16 LSTM (TFLM's ``OpDataLSTM``)."""

    gates: tuple[GateParams, ...]  # input, forget, cell, output
    input_zero_point: int
    hidden_zero_point: int
    forget_cell_mul: tuple[int, int]
    input_mul: tuple[int, int]
    output_mul: tuple[int, int]
    cell_scale_power: int
    quantized_cell_clip: int


def _f32(value: float) -> float:
    return float(np.float32(value))


def cell_scale_power(cell_scale: float) -> int:
    """log2 of the cell state's scale; ValueError unless it is a power of two (TFLM rounds
    log2 and would silently rescale any other)."""
    scale = _f32(cell_scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"cell state scale {cell_scale!r} must be a positive float32")
    mantissa, exponent = math.frexp(scale)
    if mantissa != 0.5:
        raise ValueError(f"cell state scale {cell_scale!r} must be a power of two")
    return exponent - 1


def prepare_lstm(x_q: QuantParams, w_qs: list[QuantParams], h_q: QuantParams,
                 attrs: LstmAttrs) -> LstmParams:
    """`LstmParams` from the input, the 8 weights' (input-to then recurrent-to, gates in
    `GATES` order) and the hidden state's quantisation; ValueError for what TFLM cannot run."""
    for w_q in w_qs:
        if len(w_q.scale) != 1:
            raise ValueError("LSTM weights must be quantised per tensor")
        if any(z != 0 for z in w_q.zero_point):
            raise ValueError("LSTM weights must be symmetric (zero point 0)")
    x_s, h_s = _f32(x_q.scale[0]), _f32(h_q.scale[0])
    gates = []
    for g in range(4):
        m_in, s_in = quantize_multiplier_scalar(x_s * _f32(w_qs[g].scale[0]) / GATE_INPUT_SCALE)
        m_rec, s_rec = quantize_multiplier_scalar(
            h_s * _f32(w_qs[4 + g].scale[0]) / GATE_INPUT_SCALE)
        gates.append(GateParams(m_in, s_in, m_rec, s_rec))
    power = cell_scale_power(attrs.cell_scale)
    c_s = _f32(attrs.cell_scale)
    clip = _f32(attrs.cell_clip)
    if not (math.isfinite(clip) and clip >= 0):
        raise ValueError(f"cell clip {attrs.cell_clip!r} must be a finite float32 >= 0")
    quantized_clip = int(min(max(clip / c_s, -32768.0), 32767.0))
    return LstmParams(
        tuple(gates), int(x_q.zero_point[0]), int(h_q.zero_point[0]),
        quantize_multiplier_scalar(GATE_OUTPUT_SCALE * c_s / c_s),
        quantize_multiplier_scalar(GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / c_s),
        quantize_multiplier_scalar(GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / h_s),
        power, quantized_clip if clip > 0 else 0)


def lstm_int8(x: np.ndarray, weights: list[np.ndarray], biases: list[np.ndarray],
              params: LstmParams, time_major: bool,
              state: tuple[np.ndarray, np.ndarray] | None = None
              ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The LSTM over a sequence: x int8 [B, T, I] ([T, B, I] with ``time_major``), weights the 8
    int8 matrices, biases the 4 int32 vectors (`GATES` order), ``state`` the (hidden, cell) state
    [B, U] to start from (None: TFLM's reset values). Returns the int8 hidden state at every step,
    [B, T, U] ([T, B, U]), and the (hidden int8, cell int16) state after the last step."""
    steps = x if time_major else np.swapaxes(x, 0, 1)  # [T, B, I]
    units, batch = weights[0].shape[0], steps.shape[1]
    if state is None:
        hidden = np.full((batch, units), params.hidden_zero_point, dtype=np.int64)
        cell = np.zeros((batch, units), dtype=np.int64)
    else:
        hidden, cell = (np.asarray(a, dtype=np.int64) for a in state)
    outputs = []
    for x_t in steps:
        gate = []
        for g, p in enumerate(params.gates):
            from_input = fc_int16(x_t, params.input_zero_point, weights[g], biases[g],
                                  p.input_multiplier, p.input_shift)
            from_hidden = fc_int16(hidden, params.hidden_zero_point, weights[4 + g], None,
                                   p.recurrent_multiplier, p.recurrent_shift)
            total = np.clip(from_input + from_hidden, INT16_MIN, INT16_MAX)
            gate.append(lstm_tanh_int16(total, -12) if GATES[g] == "cell"
                        else sigmoid_int16(total))
        i_gate, f_gate, g_gate, o_gate = gate
        cell = mul_elementwise(f_gate, cell, *params.forget_cell_mul, 0, INT16_MIN, INT16_MAX)
        update = mul_elementwise(i_gate, g_gate, *params.input_mul, 0, INT16_MIN, INT16_MAX)
        cell = np.clip(cell + update, INT16_MIN, INT16_MAX)
        if params.quantized_cell_clip > 0:
            cell = np.clip(cell, -params.quantized_cell_clip, params.quantized_cell_clip)
        hidden = mul_elementwise(lstm_tanh_int16(cell, params.cell_scale_power), o_gate,
                                 *params.output_mul, params.hidden_zero_point, -128, 127)
        outputs.append(hidden.astype(np.int8))
    result = np.stack(outputs)  # [T, B, U]
    final = (hidden.astype(np.int8), cell.astype(np.int16))
    return (result if time_major else np.swapaxes(result, 0, 1)), final


class UnidirectionalSequenceLstm(OpDef):
    """UNIDIRECTIONAL_SEQUENCE_LSTM (see the module docstring)."""

    kinds = (OpKind.UNIDIRECTIONAL_SEQUENCE_LSTM,)
    attrs_type = LstmAttrs
    input_count = (13, 13)
    input_roles = ("input", *(f"input-to-{g} weights" for g in GATES),
                   *(f"recurrent-to-{g} weights" for g in GATES), *(f"{g} gate bias" for g in GATES))
    tflite_options = BuiltinOptions.UnidirectionalSequenceLSTMOptions
    tflite_option_fields = (tflite.UnidirectionalSequenceLSTMOptions, (
        "FusedActivationFunction", "CellClip", "ProjClip", "TimeMajor", "AsymmetricQuantizeInputs",
        "DiagonalRecurrentTensors"))

    def output_shape(self, op, input_shapes):
        """The input's [B, T] (or [T, B]) and the units."""
        x, w = input_shapes[0], input_shapes[1]
        if len(x) != 3:
            raise ValueError(f"LSTM input must be 3-D, got {list(x)}")
        units, features = w
        if x[2] != features:
            raise ValueError(f"LSTM input features {x[2]} != weights' {features}")
        for shape in input_shapes[2:5]:
            if tuple(shape) != (units, features):
                raise ValueError(f"LSTM input weights {list(shape)} != {[units, features]}")
        for shape in input_shapes[5:9]:
            if tuple(shape) != (units, units):
                raise ValueError(f"LSTM recurrent weights {list(shape)} != {[units, units]}")
        for shape in input_shapes[9:13]:
            if tuple(shape) != (units,):
                raise ValueError(f"LSTM bias {list(shape)} != {[units]}")
        return (x[0], x[1], units)

    def _params(self, graph, op) -> LstmParams:
        quants = [graph.tensors[name].quant for name in op.inputs[:9]]
        return prepare_lstm(quants[0], quants[1:], graph.tensors[op.outputs[0]].quant, op.attrs)

    def check_values(self, graph, op, where):
        """Constant int8 weights and int32 biases, and what `prepare_lstm` refuses (per-axis or
        asymmetric weights, a cell scale that is not a power of two, a negative cell clip)."""
        for position in range(1, 13):
            t = graph.tensors[op.inputs[position]]
            dtype = DType.INT8 if position < 9 else DType.INT32
            if not t.constant or t.dtype is not dtype:
                raise InvalidValueError(f"{where}: {self.input_roles[position]} (tensor {t.name}) "
                                        f"must be a constant {dtype.value}")
        for name in (op.inputs[0], *op.inputs[1:9], op.outputs[0]):
            if graph.tensors[name].quant is None:
                raise InvalidValueError(f"{where}: tensor {name} has no quantisation")
        try:
            self._params(graph, op)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {exc} (tensor {op.outputs[0]})") from None

    def macs(self, graph, op):
        """4 gates * U * (I + U) per step and sequence."""
        b, t, features = graph.tensors[op.inputs[0]].shape
        units = graph.tensors[op.inputs[1]].shape[0]
        return b * t * 4 * units * (features + units)

    def weight_output_channels(self, graph, op):
        """4 gates of U units."""
        return 4 * graph.tensors[op.inputs[1]].shape[0]

    def run(self, graph, op, env):
        """`lstm_int8` on the op's operands from TFLM's reset state."""
        return self.run_stateful(graph, op, env, None)[0]

    def run_stateful(self, graph, op, env, state):
        """`lstm_int8` from ``state`` (hidden, cell), or from the reset state; the state after it."""
        x = value_of(graph, env, op.inputs[0])
        if x.dtype != np.int8:
            raise UnsupportedOpError(f"{op_location(graph, op)}: the LSTM takes int8 activations")
        quant_of(graph, op, op.outputs[0])
        weights = [value_of(graph, env, name) for name in op.inputs[1:9]]
        biases = [value_of(graph, env, name) for name in op.inputs[9:13]]
        return lstm_int8(x, weights, biases, self._params(graph, op), op.attrs.time_major, state)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """`mf_lstm_*` (template ``lstm``): folded biases, the 8 requantisations, the two states as
        persistent `StateArray`s and 4 * U int16 of scratch for the gates."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        params = self._params(graph, op)
        (b, t, features), units = x_t.shape, y_t.shape[2]
        batch, steps = (t, b) if op.attrs.time_major else (b, t)
        left_shift = 12 + params.cell_scale_power  # lstm_tanh_int16's scaling of the cell state
        tanh_multiplier, tanh_shift = (3 << left_shift, 0) if left_shift >= 0 else (3, -left_shift)
        if tanh_multiplier * 32768 >= 2 ** 31:
            raise unsupported(graph, index, op, f"cell state scale 2^{params.cell_scale_power} "
                              "is above 4 (the C scales tanh's input in int32)")
        weights = [graph.tensors[name].data.astype(np.int64) for name in op.inputs[1:9]]
        biases = [graph.tensors[name].data.astype(np.int64) for name in op.inputs[9:13]]
        w_in, w_rec = np.concatenate(weights[:4]), np.concatenate(weights[4:])
        bias_in = np.concatenate(biases) - params.input_zero_point * w_in.sum(axis=1)
        bias_rec = -params.hidden_zero_point * w_rec.sum(axis=1)
        for bias, w in ((bias_in, w_in), (bias_rec, w_rec)):
            if np.max(np.abs(bias) + 128 * np.abs(w).sum(axis=1)) >= 2 ** 31:
                raise unsupported(graph, index, op, "a gate's accumulator could overflow int32")
        gates = params.gates
        mults = [g.input_multiplier for g in gates] + [g.recurrent_multiplier for g in gates]
        shifts = [g.input_shift for g in gates] + [g.recurrent_shift for g in gates]
        clip = params.quantized_cell_clip
        name = (f"mf_lstm_b{batch}_t{steps}_i{features}_u{units}{'_tm' if op.attrs.time_major else ''}"
                f"_c{clip}_p{-params.cell_scale_power}")
        table = ",\n".join("    " + ", ".join(str(v) for v in SIGMOID_TABLE_UINT16[i:i + 16])
                            for i in range(0, 256, 16))
        spec = KernelSpec(name, "lstm", (
            "const int8_t *in, int8_t *out, const int8_t *w_in, const int8_t *w_rec, "
            "const int32_t *bias_in, const int32_t *bias_rec, const int32_t *mult, "
            "const int32_t *shift, int8_t *hidden, int16_t *cell, int16_t *gates, "
            "int32_t hidden_zp, int32_t forget_m, int32_t forget_s, int32_t input_m, "
            "int32_t input_s, int32_t output_m, int32_t output_s"),
            {"batch": batch, "steps": steps, "features": features, "units": units,
             "time_major": op.attrs.time_major, "clip": clip, "tanh_multiplier": tanh_multiplier,
             "tanh_shift": tanh_shift, "table": table})
        args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name),
                ConstArray(c_ident(index, "w_in"), "int8_t", w_in.astype(np.int8)),
                ConstArray(c_ident(index, "w_rec"), "int8_t", w_rec.astype(np.int8)),
                ConstArray(c_ident(index, "bias_in"), "int32_t", bias_in.astype(np.int32)),
                ConstArray(c_ident(index, "bias_rec"), "int32_t", bias_rec.astype(np.int32)),
                ConstArray(c_ident(index, "mult"), "int32_t", np.array(mults, dtype=np.int32)),
                ConstArray(c_ident(index, "shift"), "int32_t", np.array(shifts, dtype=np.int32)),
                StateArray(c_ident(index, "hidden"), "int8_t", batch * units,
                           params.hidden_zero_point),
                StateArray(c_ident(index, "cell"), "int16_t", batch * units),
                Buffer("scratch", op.name, "int16_t"), params.hidden_zero_point,
                *params.forget_cell_mul, *params.input_mul, *params.output_mul)
        return LayerCall(op.name, op.kind.value, spec, args, 4 * units * 2, self.macs(graph, op),
                         note="state kept across invocations")

    # --- .tflite ---------------------------------------------------------------------------------

    def tflite_kept_inputs(self, kind, inputs):
        """Input, the 8 weights and the 4 biases (the states are variables, the variants absent:
        `decode_attrs` refuses them)."""
        return tuple(inputs[i] for i in _KEPT if i < len(inputs))

    def decode_attrs(self, kind, reader, rop, where):
        """Cell clip and time major from the options, the cell scale from the cell state tensor;
        refuses the LSTM variants, a non-TANH activation and a hidden state quantised other than
        the output."""
        inputs = rop.inputs
        if len(inputs) != 24:
            raise UnsupportedOpError(f"{where} has {len(inputs)} inputs, expected 24")
        for position, variant in _VARIANTS.items():
            if inputs[position] >= 0:
                raise UnsupportedOpError(f"unsupported LSTM variant ({variant}, input {position}) "
                                         f"in {where}")
        if any(inputs[i] < 0 for i in _KEPT) or inputs[_HIDDEN_STATE] < 0 or inputs[_CELL_STATE] < 0:
            raise UnsupportedOpError(f"{where}: CIFG or a missing LSTM input is not supported")
        activation = int(rop.options.get("FusedActivationFunction", 0))
        if activation != ActivationFunctionType.TANH:
            raise UnsupportedOpError(f"unsupported LSTM cell activation {activation} in {where} "
                                     "(TANH only)")
        if float(rop.options.get("ProjClip", 0.0)) != 0:
            raise UnsupportedOpError(f"unsupported projection clip in {where}")
        hidden = reader.raw.tensors[inputs[_HIDDEN_STATE]]
        cell = reader.raw.tensors[inputs[_CELL_STATE]]
        output = reader.raw.tensors[rop.outputs[0]]
        if reader.dtype(cell) is not DType.INT16 or reader.quant(cell) is None:
            raise UnsupportedOpError(f"{where}: the cell state (tensor {reader.names[cell.index]}) "
                                     "must be quantised int16")
        if reader.quant(hidden) != reader.quant(output):
            raise UnsupportedOpError(f"{where}: the hidden state (tensor "
                                     f"{reader.names[hidden.index]}) must be quantised like the "
                                     "output")
        return LstmAttrs(float(reader.quant(cell).scale[0]),
                         float(rop.options.get("CellClip", 0.0)),
                         bool(rop.options.get("TimeMajor", False)))

    def tflite_variable_tensors(self, graph, op):
        """The hidden state (int8, the output's quantisation) and the cell state (int16)."""
        y = graph.tensors[op.outputs[0]]
        batch = y.shape[1] if op.attrs.time_major else y.shape[0]
        shape = (batch, y.shape[2])
        return (("hidden_state", shape, DType.INT8, y.quant),
                ("cell_state", shape, DType.INT16, QuantParams((op.attrs.cell_scale,), (0,))))

    def tflite_inputs(self, kind, inputs, folded):
        """The 24 TFLite inputs: the op's 13 in their places, the two states at 18 and 19, the
        others absent (-1)."""
        slots = [-1] * 24
        for position, tensor in zip(_KEPT, inputs):
            slots[position] = tensor
        slots[_HIDDEN_STATE], slots[_CELL_STATE] = folded
        return slots

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """UnidirectionalSequenceLSTMOptions: TANH, cell clip, time major."""
        tflite.UnidirectionalSequenceLSTMOptionsStart(builder)
        tflite.UnidirectionalSequenceLSTMOptionsAddFusedActivationFunction(
            builder, ActivationFunctionType.TANH)
        tflite.UnidirectionalSequenceLSTMOptionsAddCellClip(builder, float(attrs.cell_clip))
        tflite.UnidirectionalSequenceLSTMOptionsAddProjClip(builder, 0.0)
        tflite.UnidirectionalSequenceLSTMOptionsAddTimeMajor(builder, bool(attrs.time_major))
        return tflite.UnidirectionalSequenceLSTMOptionsEnd(builder)


OP_DEFS = (UnidirectionalSequenceLstm(),)
