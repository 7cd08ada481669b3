"""LOG_SOFTMAX (int8, TFLite semantics), added as one op module: it is registered, round-trips
through the .tflite writer and reader, runs bit-exact with the TFLite Micro pip interpreter on
several shapes and input scales, and its generated C (sanitised host build) equals the reference
runtime bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codegen_support import Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError, McuforgeError, UnsupportedOpError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import (DType, ElementwiseAttrs, Graph, NoAttrs, Op, OpKind, QuantParams, Tensor,
                         infer_output_shape)
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.log_softmax import log_softmax_int8, log_x_for_x_greater_than_or_equal_to_1
from mcuforge.ops.validation import validate_model
from mcuforge.runtime.reference import Interpreter

OUT_Q = QuantParams.per_tensor(16 / 256, 127)
# (input scale, zero point, shape): small and large rows, ranks 2 to 4, a scale that saturates the
# Q5.26 range for most differences (0.5) and one that keeps every difference in range (0.01).
CASES = [
    (0.1, 5, (1, 10)),
    (0.02, -20, (3, 7)),
    (0.35, 0, (1, 1000)),
    (0.0625, 12, (2, 4, 12)),
    (0.5, -3, (1, 2, 3, 16)),
    (0.01, 100, (4, 33)),
    (0.2, 0, (5, 1)),
]


def log_softmax_graph(in_scale: float, zero_point: int, shape) -> Graph:
    """x -> LOG_SOFTMAX -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, QuantParams.per_tensor(in_scale, zero_point))
    op = Op("log_softmax", OpKind.LOG_SOFTMAX, ("x",), ("y",), NoAttrs())
    y = Tensor("y", infer_output_shape(op, [x.shape]), DType.INT8, OUT_Q)
    return Graph("log_softmax", {"x": x, "y": y}, (op,), ("x",), ("y",))


def inputs_of(shape, seed: int) -> list[np.ndarray]:
    """Random int8 values, with the first row spanning all of int8 when it is long enough."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-128, 128, size=shape, dtype=np.int8)
    flat = values.reshape(-1, shape[-1])
    if shape[-1] >= 256:
        flat[0, :256] = np.arange(-128, 128, dtype=np.int8)
    return [values]


def test_log_softmax_is_registered_with_its_rules():
    assert OpKind.LOG_SOFTMAX in implemented_kinds()
    definition = op_def(OpKind.LOG_SOFTMAX)
    graph = log_softmax_graph(0.1, 0, (2, 9))
    assert definition.output_shape(graph.ops[0], [(2, 9)]) == (2, 9)
    assert definition.macs(graph, graph.ops[0]) == 0
    assert definition.has_reference and definition.has_lowering
    assert not definition.patchable


def test_log_softmax_round_trips_through_tflite(tmp_path):
    graph = log_softmax_graph(0.1, 5, (1, 10))
    path = write_tflite(graph, tmp_path / "log_softmax.tflite")
    read = read_tflite(path)
    assert [op.kind for op in read.ops] == [OpKind.LOG_SOFTMAX]
    assert read.tensors[read.outputs[0]].quant.zero_point == (127,)


def test_log_of_sums_follows_the_real_logarithm():
    """The fixed-point log (Q12.19 in, Q5.26 out) is within 2^-20 of log(x) for 1 <= x < 4096."""
    real = np.array([1.0, 1.5, 2.0, math.e, 10.0, 100.5, 1000.0, 4095.0])
    raw = np.round(real * 2 ** 19).astype(np.int64)
    log_q5 = log_x_for_x_greater_than_or_equal_to_1(raw, 12, 5)
    assert np.max(np.abs(log_q5 / 2 ** 26 - np.log(raw / 2 ** 19))) < 2 ** -20


@pytest.mark.parametrize("in_scale, zero_point, shape", CASES)
def test_log_softmax_matches_tflite_micro(in_scale, zero_point, shape):
    graph = log_softmax_graph(in_scale, zero_point, shape)
    for seed in (0, 1):
        assert_matches_tflm(graph, inputs_of(shape, seed))


def test_log_softmax_approximates_the_real_log_softmax():
    """Independent of TFLite: outputs are log-probabilities on the 16/256 grid (within 2 steps
    wherever the true value lies inside the representable range)."""
    x = np.random.default_rng(3).integers(-128, 128, size=(6, 20), dtype=np.int8)
    x_q = QuantParams.per_tensor(0.05, 3)
    y = log_softmax_int8(x, x_q, OUT_Q)
    real = (x.astype(np.float64) - 3) * 0.05
    expected = real - real.max(axis=1, keepdims=True)
    expected -= np.log(np.exp(expected).sum(axis=1, keepdims=True))
    inside = expected > -15.5
    got = (y.astype(np.float64) - 127) * 16 / 256
    assert np.max(np.abs(got - expected)[inside]) <= 2 * 16 / 256
    assert np.all(y[~inside] <= -120)


def test_log_softmax_refuses_other_output_quantisation():
    graph = log_softmax_graph(0.1, 0, (1, 10))
    bad = Graph(graph.name, {**graph.tensors, "y": Tensor("y", (1, 10), DType.INT8, q(1 / 256, -128))},
                graph.ops, graph.inputs, graph.outputs)
    with pytest.raises(McuforgeError, match="16/256"):
        Interpreter(bad).invoke([np.zeros((1, 10), np.int8)])
    with pytest.raises(UnsupportedOpError, match="16/256"):
        op_def(OpKind.LOG_SOFTMAX).lower(bad, 0, bad.ops[0], _HostTarget(), False)


class _HostTarget:
    name = "host"
    dsp = False


@pytest.mark.parametrize("in_scale, zero_point, shape", [CASES[0], CASES[2], CASES[4], CASES[5]])
def test_generated_c_equals_the_reference(in_scale, zero_point, shape, tmp_path):
    """x -> ADD (an arena tensor) -> LOG_SOFTMAX: the sanitised host build of the generated C gives
    the reference runtime's bytes on random and extreme inputs."""
    b = Int8Builder("log_softmax", seed=1)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(in_scale, zero_point))
    y = b.op(OpKind.LOG_SOFTMAX, [s], dtype=DType.INT8, quant=OUT_Q)
    graph = b.finish([y])
    mismatches = differential_run(graph, tmp_path, qemu=False, target="host")
    assert mismatches == {"host-asan": 0}


def test_log_softmax_output_quantisation_is_checked() -> None:
    """Validation at import refuses a LOG_SOFTMAX output quantisation the op cannot write."""
    x = Tensor("x", (1, 10), DType.INT8, QuantParams.per_tensor(0.1, 0))
    op = Op("log_softmax", OpKind.LOG_SOFTMAX, ("x",), ("y",), NoAttrs())

    def graph_with_output(scale: float, zero_point: int) -> Graph:
        y = Tensor("y", (1, 10), DType.INT8, QuantParams.per_tensor(scale, zero_point))
        return Graph("log_softmax", {"x": x, "y": y}, (op,), ("x",), ("y",))

    good = graph_with_output(16 / 256, 127)
    assert validate_model(good) is good
    with pytest.raises(InvalidValueError, match="LOG_SOFTMAX needs scale 16/256 and zero point 127"):
        validate_model(graph_with_output(1 / 256, -128))
