"""LEAKY_RELU (int8, TFLite semantics) as one op module: registered, round-trips through the .tflite
writer and reader with its alpha, bit-exact with the TFLite Micro pip interpreter on several shapes,
scales and alphas (negative ones too), and its generated C (a 256-entry table, sanitised host
build) equals the reference runtime."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, ElementwiseAttrs, Graph, Op, OpKind, QuantParams, Tensor
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.leaky_relu import LeakyReluAttrs, leaky_relu_int8
from mcuforge.ops.registry import OverlapRule
from mcuforge.ops.validation import validate_model

# (input scale, zero point, output scale, zero point, alpha, shape)
CASES = [
    (0.1, 0, 0.05, -10, 0.1, (1, 256)),
    (0.0625, 12, 0.05, -10, 0.2, (2, 8, 8, 3)),
    (0.02, -20, 0.02, -20, 0.3, (4, 33)),
    (0.5, 5, 0.07, 3, 1.7, (1, 4, 4, 16)),
    (0.004, 100, 0.01, -128, 0.01, (3, 7)),
    (0.1, -3, 0.1, -3, 0.5, (1, 300)),       # every odd input a tie of the alpha branch
    (0.15, 4, 0.1, -2, 0.0, (2, 130)),       # identity 1.5 (ties), alpha 0
    (0.1, -3, 0.1, -3, -0.5, (1, 300)),      # a negative alpha: every odd input a tie
    (0.1, 0, 0.1, 0, -0.25, (2, 256)),       # quarter ties
    (0.5, 5, 0.07, 3, -1.7, (1, 4, 4, 16)),
]


def leaky_graph(xs, xz, ys, yz, alpha, shape) -> Graph:
    """x -> LEAKY_RELU -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, QuantParams.per_tensor(xs, xz))
    op = Op("leaky", OpKind.LEAKY_RELU, ("x",), ("y",), LeakyReluAttrs(alpha))
    y = Tensor("y", tuple(shape), DType.INT8, QuantParams.per_tensor(ys, yz))
    return Graph("leaky", {"x": x, "y": y}, (op,), ("x",), ("y",))


def inputs_of(shape, seed: int) -> list[np.ndarray]:
    """Random int8 values with every int8 value at the front when there is room."""
    values = np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)
    flat = values.reshape(-1)
    flat[:min(256, flat.size)] = np.arange(-128, 128, dtype=np.int8)[:flat.size]
    return [values]


def test_leaky_relu_is_registered_with_its_rules():
    assert OpKind.LEAKY_RELU in implemented_kinds()
    definition = op_def(OpKind.LEAKY_RELU)
    graph = leaky_graph(*CASES[0])
    assert definition.output_shape(graph.ops[0], [(1, 256)]) == (1, 256)
    assert definition.has_reference and definition.has_lowering and definition.patchable
    assert definition.overlap is OverlapRule.ELEMENTWISE


def test_leaky_relu_round_trips_through_tflite(tmp_path):
    graph = leaky_graph(*CASES[1])
    read = read_tflite(write_tflite(graph, tmp_path / "leaky.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.LEAKY_RELU]
    assert read.ops[0].attrs.alpha == pytest.approx(0.2, rel=1e-7)


@pytest.mark.parametrize("case", CASES)
def test_leaky_relu_matches_tflite_micro(case):
    for seed in (0, 1):
        assert_matches_tflm(leaky_graph(*case), inputs_of(case[-1], seed))


def test_leaky_relu_follows_the_real_function():
    """Independent of TFLite: within one output step of max(x, alpha x) where it fits (TFLite's
    double rounding can add half a step to the half of a correct rounding)."""
    x = np.arange(-128, 128, dtype=np.int8)
    x_q, y_q = q(0.05, 7), q(0.03, -40)
    y = leaky_relu_int8(x, LeakyReluAttrs(0.2), x_q, y_q)
    real = (x.astype(np.float64) - 7) * 0.05
    expected = np.where(real >= 0, real, 0.2 * real) / 0.03 - 40
    inside = (expected > -128) & (expected < 127)
    error = np.abs(y[inside] - expected[inside])
    assert np.max(error) <= 1 and np.mean(error) < 0.3


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[5], CASES[7]])
def test_generated_c_equals_the_reference(case, tmp_path):
    """x -> ADD (an arena tensor) -> LEAKY_RELU, in place: the sanitised host build of the
    generated C gives the reference runtime's bytes."""
    xs, xz, ys, yz, alpha, shape = case
    b = Int8Builder("leaky", seed=1)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(xs, xz))
    y = b.op(OpKind.LEAKY_RELU, [s], LeakyReluAttrs(alpha), dtype=DType.INT8, quant=q(ys, yz))
    assert differential_run(b.finish([y]), tmp_path, qemu=False, target="host") == {"host-asan": 0}


@pytest.mark.parametrize("alpha, ys, match", [
    (float("nan"), 0.05, "alpha nan"),
    (1e39, 0.05, "alpha 1e\\+39 \\(must be a finite float32\\)"),
    (-1e39, 0.05, "alpha -1e\\+39"),
    (0.1, 1e-19, "identity .* not representable"),
])
def test_leaky_relu_refuses_bad_values_in_one_line(alpha, ys, match):
    with pytest.raises(InvalidValueError, match=match) as info:
        validate_model(leaky_graph(0.1, 0, ys, 0, alpha, (1, 8)))
    assert "\n" not in str(info.value)
