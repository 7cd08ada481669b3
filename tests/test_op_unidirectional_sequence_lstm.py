"""UNIDIRECTIONAL_SEQUENCE_LSTM (int8 activations and weights, int16 cell state), added as one op
module: registered, written by our writer (24 inputs, the two states as variable tensors) and read
back, bit-exact with the TFLite Micro pip interpreter on several shapes, scales, cell clips and both
layouts, its state carried from one invocation to the next as TFLM's variable tensors (and reset
the same way), close to a float LSTM, its value checks and refusals one line each; the generated C
equals the reference runtime and TFLite Micro over several invocations, its state outside the
arena."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from codegen_support import HAVE_ARM, differential_run
from tflm_support import assert_matches_tflm
from mcuforge.analysis.memory import state_bytes
from mcuforge.codegen.build import build, run_host
from mcuforge.codegen.emit import generate, write_project
from mcuforge.codegen.targets import TARGETS
from mcuforge.frontends.tflite_writer import serialize_tflite
from mcuforge.errors import InvalidValueError, UnsupportedOpError
from mcuforge.ops.lowering_types import StateArray
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import (DType, FullyConnectedAttrs, Graph, Op, OpKind, QuantParams, Tensor,
                         infer_output_shape)
from mcuforge.ops.strided_slice import StridedSliceAttrs
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


def tflm_sequence(graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The outputs of one TFLite Micro interpreter invoked on ``inputs`` in turn (no reset)."""
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    model_bytes = serialize_tflite(graph)
    tflm = runtime.Interpreter.from_bytes(model_bytes, arena_size=4 * 1024 * 1024)
    outputs = []
    for x in inputs:
        tflm.set_input(x, 0)
        tflm.invoke()
        outputs.append(tflm.get_output(0).copy())
    del tflm, model_bytes
    return outputs


@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[7]])
def test_lstm_state_carries_across_invocations_as_in_tflite_micro(case):
    """TFLM keeps its variable tensors from one invoke to the next; so does the Interpreter, and
    `reset_state` is TFLM's reset: a fresh start gives the first invocation's output again."""
    batch, steps, features, units, options = case
    graph = lstm_graph(batch, steps, features, units, seed=11, **options)
    inputs = [random_input(graph, seed)[0] for seed in range(4)]
    interpreter = Interpreter(graph)
    ours = [interpreter.invoke([x])[0] for x in inputs]
    for k, (mine, theirs) in enumerate(zip(ours, tflm_sequence(graph, inputs))):
        assert np.array_equal(mine, theirs), f"invocation {k} differs from TFLite Micro"
    assert not np.array_equal(ours[1], Interpreter(graph).invoke([inputs[1]])[0])
    interpreter.reset_state()
    assert np.array_equal(interpreter.invoke([inputs[0]])[0], ours[0])


@pytest.mark.parametrize("batch, steps, features, units, options", CASES)
def test_lstm_c_equals_the_reference(tmp_path, batch, steps, features, units, options):
    """Five invocations in one process (the state carries in both), sanitised host build."""
    graph = lstm_graph(batch, steps, features, units, seed=steps * 31 + units, **options)
    assert differential_run(graph, tmp_path, qemu=False, target="host") == {"host-asan": 0}


def test_lstm_c_equals_tflite_micro_across_invocations(tmp_path):
    graph = lstm_graph(2, 5, 8, 6, seed=4, x_q=(0.05, -7), h_q=(0.01, 5), cell_clip=0.4)
    project = tmp_path / "project"
    write_project(generate(graph, TARGETS["host"]), project)
    inputs = [random_input(graph, seed)[0] for seed in range(5)]
    out_bytes = graph.tensors["y"].nbytes
    got = run_host(build(project, "host-asan"), b"".join(x.tobytes() for x in inputs), out_bytes,
                   len(inputs))
    want = b"".join(y.tobytes() for y in tflm_sequence(graph, inputs))
    assert np.count_nonzero(np.frombuffer(got, np.int8) != np.frombuffer(want, np.int8)) == 0


def test_lstm_c_state_is_outside_the_arena_and_resets(tmp_path):
    """The two states are static arrays (B * U int8 + B * U int16), not arena tensors; the arena is
    input + output + the gates' scratch; ``mcuforge_reset_state`` brings back the start-up state."""
    graph = lstm_graph(2, 3, 4, 5, x_q=(0.1, -20), h_q=(0.01, 10))
    model = generate(graph, TARGETS["host"])
    (layer,) = model.layers
    assert [(s.ctype, s.length, s.reset_value) for s in layer.states] == [
        ("int8_t", 10, 10), ("int16_t", 10, 0)]
    assert isinstance(layer.args[8], StateArray) and model.state_bytes == 30 == state_bytes(graph)
    assert set(model.plan.placements) == {"x", "y"}
    assert model.plan.arena_bytes == 24 + 30 + 4 * 5 * 2
    project = tmp_path / "project"
    write_project(model, project)
    inputs = [random_input(graph, seed)[0] for seed in range(2)]
    arrays = "\n".join(f"static const int8_t x{k}[{x.size}] = {{{', '.join(map(str, x.ravel()))}}};"
                        for k, x in enumerate(inputs))
    (project / "driver.c").write_text(f"""#include <stdio.h>
#include "model.h"
{arrays}
static int8_t y[MCUFORGE_OUTPUT_BYTES];
static void run(const int8_t *x) {{ mcuforge_invoke(x, y); fwrite(y, 1, sizeof y, stdout); }}
int main(void) {{ run(x0); run(x1); mcuforge_reset_state(); run(x1); run(x0); return 0; }}
""")
    sources = [str(project / "model.c"), *map(str, sorted((project / "kernels").glob("*.c"))),
               str(project / "driver.c")]
    subprocess.run(["gcc", "-std=c99", "-O1", "-I", str(project), *sources, "-o",
                    str(tmp_path / "app")], check=True)
    got = subprocess.run([str(tmp_path / "app")], check=True, capture_output=True).stdout
    interpreter = Interpreter(graph)
    want = [interpreter.invoke([inputs[0]])[0], interpreter.invoke([inputs[1]])[0]]
    interpreter.reset_state()
    want += [interpreter.invoke([inputs[1]])[0], interpreter.invoke([inputs[0]])[0]]
    assert got == b"".join(w.tobytes() for w in want)


def keras_like_graph() -> Graph:
    """Two stacked LSTMs (two sets of state), the last step (STRIDED_SLICE) and a dense head, as
    the converter writes ``LSTM(return_sequences=True) -> LSTM -> Dense``."""
    first = lstm_graph(1, 6, 8, 10, seed=21, x_q=(0.03, 4), h_q=(1 / 128, -2))
    second = lstm_graph(1, 6, 10, 7, seed=22, x_q=(1 / 128, -2), h_q=(0.01, 3), cell_scale=2 ** -12)
    tensors = dict(first.tensors)
    rename = {name: f"{name}2" for name in second.tensors}
    rename["x"] = "y"
    for name, tensor in second.tensors.items():
        if name != "x":
            tensors[rename[name]] = Tensor(rename[name], tensor.shape, tensor.dtype, tensor.quant,
                                           tensor.constant, tensor.data)
    (op1,), (op2,) = first.ops, second.ops
    op2 = Op("lstm2", op2.kind, tuple(rename[n] for n in op2.inputs), ("y2",), op2.attrs)
    tensors["last"] = Tensor("last", (1, 7), DType.INT8, tensors["y2"].quant)
    slice_op = Op("last_step", OpKind.STRIDED_SLICE, ("y2",), ("last",),
                  StridedSliceAttrs((0, -1, 0), (1, 0, 7), (1, 1, 1), end_mask=0b101,
                                    shrink_axis_mask=0b010))
    rng = np.random.default_rng(5)
    tensors["w_fc"] = Tensor("w_fc", (3, 7), DType.INT8, QuantParams.per_tensor(0.01, 0), True,
                             rng.integers(-127, 128, size=(3, 7), dtype=np.int8))
    tensors["b_fc"] = Tensor("b_fc", (3,), DType.INT32, QuantParams.per_tensor(1e-4, 0), True,
                             rng.integers(-500, 500, size=3).astype(np.int32))
    tensors["logits"] = Tensor("logits", (1, 3), DType.INT8, QuantParams.per_tensor(0.02, 1))
    fc = Op("dense", OpKind.FULLY_CONNECTED, ("last", "w_fc", "b_fc"), ("logits",),
            FullyConnectedAttrs())
    return Graph("keras_like", tensors, (op1, op2, slice_op, fc), ("x",), ("logits",))


def test_stacked_lstms_with_a_head_c_equals_the_reference_and_tflite_micro(tmp_path):
    graph = keras_like_graph()
    validate_model(graph, "test")
    inputs = [random_input(graph, seed)[0] for seed in range(4)]
    interpreter = Interpreter(graph)
    ours = [interpreter.invoke([x])[0] for x in inputs]
    for mine, theirs in zip(ours, tflm_sequence(graph, inputs)):
        assert np.array_equal(mine, theirs)
    model = generate(graph, TARGETS["host"])
    assert model.state_bytes == 10 * 3 + 7 * 3
    assert differential_run(graph, tmp_path, qemu=False, target="host") == {"host-asan": 0}


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[7]])
def test_lstm_c_equals_the_reference_under_qemu(tmp_path, case):
    """The Cortex-M4 build (the SMLAD paths; an odd unit count takes the one-row tail)."""
    batch, steps, features, units, options = case
    graph = lstm_graph(batch, steps, features, units, seed=2, **options)
    assert differential_run(graph, tmp_path, qemu=True, target="cortex-m4") == {"host-asan": 0,
                                                                               "qemu": 0}


def test_lstm_c_refuses_a_cell_scale_it_cannot_scale_in_one_line():
    graph = lstm_graph(1, 3, 4, 4, cell_scale=8.0)
    with pytest.raises(UnsupportedOpError, match="cell state scale") as info:
        generate(graph, TARGETS["host"])
    assert "\n" not in str(info.value) and "operator #0" in str(info.value)
    assert refusal(graph, c_code=True) is None


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_lstm_state_is_counted_in_the_measured_sram(tmp_path):
    """The Cortex-M build's .data + .bss hold the state, so the measured SRAM counts it."""
    from mcuforge.codegen.project import compile_model
    graph = lstm_graph(2, 4, 8, 6, seed=3, h_q=(0.01, 5))
    report = compile_model(graph, tmp_path / "out", "cortex-m4")
    assert report["state_bytes"] == 2 * 6 * 3
    assert report["data_bytes"] + report["bss_bytes"] >= report["state_bytes"]
    assert report["measured_sram_bytes"] >= report["arena_bytes"] + report["state_bytes"]


def test_bench_counts_the_state_beside_our_arena(tmp_path):
    from mcuforge.commands.bench import bench_against_tflm
    graph = lstm_graph(2, 3, 4, 5)
    result = bench_against_tflm(write_tflite(graph, tmp_path / "lstm.tflite"))
    assert result.state_bytes == 2 * 5 * 3 == result.to_json()["ours"]["state_bytes"]
    assert result.tflm.total > result.arena_bytes + result.state_bytes


def test_the_sram_budget_counts_the_state(tmp_path):
    from mcuforge.codegen.project import compile_model
    from mcuforge.errors import DoesNotFitError
    graph = lstm_graph(1, 3, 4, 5)
    model = generate(graph, TARGETS["cortex-m4"])
    needed = model.plan.arena_bytes + model.state_bytes
    with pytest.raises(DoesNotFitError, match="arena \\+ state") as info:
        compile_model(graph, tmp_path / "out", "cortex-m4", sram_bytes=needed - 1, measure=False)
    assert info.value.needed_bytes == needed and not (tmp_path / "out").exists()
