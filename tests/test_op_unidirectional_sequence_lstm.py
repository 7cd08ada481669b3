"""UNIDIRECTIONAL_SEQUENCE_LSTM (int8 activations and weights, int16 cell state), added as one op
module: registered, written by our writer (24 inputs, the two states as variable tensors) and read
back, bit-exact with the TFLite Micro pip interpreter on several shapes, scales, cell clips and both
layouts, close to a float LSTM, its value checks and refusals one line each; the C lowering is
refused."""

from __future__ import annotations

import numpy as np
import pytest

from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError, UnsupportedOpError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, Graph, Op, OpKind, QuantParams, Tensor, infer_output_shape
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.support import refusal
from mcuforge.ops.lstm_int16 import lstm_tanh_int16
from mcuforge.ops.lut16 import SIGMOID_TABLE_UINT16, sigmoid_int16
from mcuforge.ops.unidirectional_sequence_lstm import LstmAttrs
from mcuforge.ops.validation import validate_model
from mcuforge.runtime.reference import Interpreter

GATES = ("input", "forget", "cell", "output")


def lstm_graph(batch: int, steps: int, features: int, units: int, seed: int = 0,
               x_q=(0.02, 3), h_q=(1 / 128, 0), w_scale: float = 0.003, cell_scale: float = 2 ** -11,
               cell_clip: float = 0.0, time_major: bool = False, w_zero_point: int = 0) -> Graph:
    """x -> UNIDIRECTIONAL_SEQUENCE_LSTM -> y with random weights and biases."""
    rng = np.random.default_rng(seed)
    shape = (steps, batch, features) if time_major else (batch, steps, features)
    tensors = {"x": Tensor("x", shape, DType.INT8, QuantParams.per_tensor(*x_q))}
    names = ["x"]
    for kind, cols in (("w", features), ("r", units)):
        for g, gate in enumerate(GATES):
            name = f"{kind}_{gate}"
            scale = w_scale * (1 + 0.3 * g) * (1.5 if kind == "r" else 1)
            data = rng.integers(-127, 128, size=(units, cols), dtype=np.int8)
            tensors[name] = Tensor(name, (units, cols), DType.INT8,
                                   QuantParams.per_tensor(scale, w_zero_point), True, data)
            names.append(name)
    for gate in GATES:
        name = f"b_{gate}"
        bias_scale = x_q[0] * tensors[f"w_{gate}"].quant.scale[0]
        data = np.round(rng.normal(0, 0.5, size=units) / bias_scale).astype(np.int32)
        tensors[name] = Tensor(name, (units,), DType.INT32, QuantParams.per_tensor(bias_scale, 0),
                               True, data)
        names.append(name)
    op = Op("lstm", OpKind.UNIDIRECTIONAL_SEQUENCE_LSTM, tuple(names), ("y",),
            LstmAttrs(cell_scale, cell_clip, time_major))
    out_shape = infer_output_shape(op, [tensors[n].shape for n in names])
    tensors["y"] = Tensor("y", out_shape, DType.INT8, QuantParams.per_tensor(*h_q))
    return Graph("lstm", tensors, (op,), ("x",), ("y",))


def random_input(graph: Graph, seed: int) -> list[np.ndarray]:
    """Random int8 input, with int8 extremes in the first step."""
    shape = graph.tensors["x"].shape
    values = np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)
    values.reshape(-1)[:2] = (-128, 127)
    return [values]


# (batch, steps, features, units, options)
CASES = [
    (1, 3, 4, 4, {}),
    (1, 8, 16, 16, {}),
    (1, 5, 10, 7, {"x_q": (0.1, -20), "h_q": (0.01, 10)}),
    (1, 6, 8, 12, {"cell_scale": 2 ** -12, "w_scale": 0.006}),
    (1, 4, 6, 5, {"cell_clip": 0.3, "w_scale": 0.01}),
    (1, 7, 12, 9, {"cell_scale": 2 ** -15, "x_q": (0.05, 0)}),
    (1, 4, 5, 6, {"cell_scale": 2 ** -8, "w_scale": 0.1}),  # saturated gates
    (2, 5, 8, 6, {"time_major": True}),
    (3, 4, 6, 5, {}),
]


def test_lstm_is_registered_with_its_rules():
    assert OpKind.UNIDIRECTIONAL_SEQUENCE_LSTM in implemented_kinds()
    graph = lstm_graph(1, 3, 4, 5)
    definition = op_def(OpKind.UNIDIRECTIONAL_SEQUENCE_LSTM)
    assert graph.tensors["y"].shape == (1, 3, 5)
    assert definition.macs(graph, graph.ops[0]) == 3 * 4 * 5 * (4 + 5)
    assert definition.has_reference and not definition.patchable


@pytest.mark.parametrize("batch, steps, features, units, options", CASES)
def test_lstm_matches_tflite_micro(batch, steps, features, units, options):
    graph = lstm_graph(batch, steps, features, units, seed=steps * 31 + units, **options)
    validate_model(graph, "test")
    for seed in range(2):
        assert_matches_tflm(graph, random_input(graph, seed))


def test_lstm_round_trips_through_tflite(tmp_path):
    graph = lstm_graph(2, 4, 6, 5, cell_clip=0.5, cell_scale=2 ** -12, time_major=True)
    read = read_tflite(write_tflite(graph, tmp_path / "lstm.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.UNIDIRECTIONAL_SEQUENCE_LSTM]
    attrs = read.ops[0].attrs
    assert attrs == LstmAttrs(2 ** -12, 0.5, True)
    assert len(read.ops[0].inputs) == 13
    x = random_input(graph, 3)
    assert np.array_equal(Interpreter(read).invoke(x)[0], Interpreter(graph).invoke(x)[0])


def test_lstm_follows_a_float_lstm():
    """The int8 outputs dequantised stay within a few hidden-state steps of a float LSTM on the
    dequantised weights."""
    graph = lstm_graph(1, 6, 8, 6, seed=5)
    x = random_input(graph, 1)[0]
    ours = Interpreter(graph).invoke([x])[0]
    t = graph.tensors
    deq = {n: (t[n].data.astype(np.float64) - t[n].quant.zero_point[0]) * t[n].quant.scale[0]
           for n in t if t[n].constant}
    xs = (x.astype(np.float64) - 3) * 0.02
    h, c = np.zeros(6), np.zeros(6)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    expected = []
    for x_t in xs[0]:
        pre = {g: deq[f"w_{g}"] @ x_t + deq[f"r_{g}"] @ h + deq[f"b_{g}"] for g in GATES}
        c = sig(pre["forget"]) * c + sig(pre["input"]) * np.tanh(pre["cell"])
        h = sig(pre["output"]) * np.tanh(c)
        expected.append(h)
    assert np.max(np.abs(ours[0] / 128 - np.array(expected))) < 4 / 128


def test_int16_activations_follow_the_real_functions():
    q312 = np.arange(-32768, 32768, 7)
    assert np.max(np.abs(sigmoid_int16(q312) / 2 ** 15 - 1 / (1 + np.exp(-q312 / 4096)))) < 2e-4
    assert np.max(np.abs(lstm_tanh_int16(q312, -12) / 2 ** 15 - np.tanh(q312 / 4096))) < 4e-4
    assert SIGMOID_TABLE_UINT16[0] == 32768 and np.all(np.diff(SIGMOID_TABLE_UINT16) >= 0)


def test_lstm_value_checks_refuse_in_one_line():
    with pytest.raises(InvalidValueError, match="power of two") as info:
        validate_model(lstm_graph(1, 3, 4, 4, cell_scale=0.001), "m")
    assert "\n" not in str(info.value)
    with pytest.raises(InvalidValueError, match="symmetric"):
        validate_model(lstm_graph(1, 3, 4, 4, w_zero_point=2), "m")
    with pytest.raises(InvalidValueError, match="cell clip"):
        validate_model(lstm_graph(1, 3, 4, 4, cell_clip=-1.0), "m")


def test_lstm_c_lowering_is_refused_in_one_line():
    graph = lstm_graph(1, 3, 4, 4)
    assert not op_def(OpKind.UNIDIRECTIONAL_SEQUENCE_LSTM).has_lowering
    why = refusal(graph, c_code=True)
    assert why is not None and "UNIDIRECTIONAL_SEQUENCE_LSTM" in why and "\n" not in why
    assert refusal(graph, c_code=False) is None
