"""PRELU (int8, TFLite semantics; alpha a constant tensor that broadcasts against the input) as one
op module: registered, round-trips through the .tflite writer and reader with its alpha, bit-exact
with the TFLite Micro pip interpreter on several shapes and scales, and its generated C (the
broadcast loop; sanitised host build) equals the reference runtime."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import (DType, ElementwiseAttrs, Graph, NoAttrs, Op, OpKind, QuantParams, Tensor,
                         infer_output_shape)
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.prelu import prelu_int8
from mcuforge.ops.registry import OverlapRule
from mcuforge.ops.validation import validate_model

# (input shape, alpha shape, input q, alpha q, output q)
CASES = [
    ((1, 8, 8, 4), (1, 1, 4), (0.05, -3), (0.01, 0), (0.04, 5)),
    ((1, 6, 6, 16), (16,), (0.1, 20), (0.004, -128), (0.1, 20)),
    ((2, 3, 5), (3, 5), (0.02, -128), (0.02, 10), (0.01, -100)),
    ((1, 300), (1,), (0.5, 0), (0.003, 60), (0.3, 1)),
    ((1, 4, 4, 8), (1, 4, 4, 8), (0.003, 100), (0.05, -7), (0.002, -30)),
]


def prelu_graph(x_shape, alpha_shape, x_q, alpha_q, y_q, seed: int = 0) -> Graph:
    """x -> PRELU (constant random alpha) -> y."""
    alpha_data = np.random.default_rng(seed).integers(-128, 128, size=alpha_shape, dtype=np.int8)
    x = Tensor("x", x_shape, DType.INT8, QuantParams.per_tensor(*x_q))
    alpha = Tensor("alpha", alpha_shape, DType.INT8, QuantParams.per_tensor(*alpha_q), True,
                   alpha_data)
    op = Op("prelu", OpKind.PRELU, ("x", "alpha"), ("y",), NoAttrs())
    y = Tensor("y", infer_output_shape(op, [x_shape, alpha_shape]), DType.INT8,
               QuantParams.per_tensor(*y_q))
    return Graph("prelu", {"x": x, "alpha": alpha, "y": y}, (op,), ("x",), ("y",))


def inputs_of(shape, seed: int) -> list[np.ndarray]:
    """Random int8 values with every int8 value at the front when there is room."""
    values = np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)
    flat = values.reshape(-1)
    flat[:min(256, flat.size)] = np.arange(-128, 128, dtype=np.int8)[:flat.size]
    return [values]


def test_prelu_is_registered_with_its_rules():
    assert OpKind.PRELU in implemented_kinds()
    definition = op_def(OpKind.PRELU)
    graph = prelu_graph(*CASES[0])
    assert definition.output_shape(graph.ops[0], [(1, 8, 8, 4), (1, 1, 4)]) == (1, 8, 8, 4)
    assert definition.has_reference and definition.has_lowering and definition.patchable
    assert definition.overlap is OverlapRule.ELEMENTWISE
    with pytest.raises(ValueError, match="rank <= 4"):
        definition.output_shape(graph.ops[0], [(1, 2, 3, 4, 5), (5,)])


def test_prelu_round_trips_through_tflite(tmp_path):
    graph = prelu_graph(*CASES[0])
    read = read_tflite(write_tflite(graph, tmp_path / "prelu.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.PRELU]
    alpha = read.tensors[read.ops[0].inputs[1]]
    assert alpha.constant and np.array_equal(alpha.data, graph.tensors["alpha"].data)
    assert alpha.quant.zero_point == (0,)


@pytest.mark.parametrize("case", CASES)
def test_prelu_matches_tflite_micro(case):
    for seed in (0, 1):
        assert_matches_tflm(prelu_graph(*case, seed=seed), inputs_of(case[0], seed))


def test_prelu_follows_the_real_function():
    """Independent of TFLite: within one output step of x >= 0 ? x : alpha x where it fits."""
    x = np.arange(-128, 128, dtype=np.int8)
    alpha = np.full(256, 40, np.int8)
    y = prelu_int8(x, alpha, q(0.05, 3), q(0.01, 0), q(0.04, -10))
    real = (x.astype(np.float64) - 3) * 0.05
    expected = np.where(real >= 0, real, 0.4 * real) / 0.04 - 10
    inside = (expected > -128) & (expected < 127)
    assert np.max(np.abs(y[inside] - expected[inside])) <= 1


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[2], CASES[4]])
def test_generated_c_equals_the_reference(case, tmp_path):
    """x -> ADD (an arena tensor) -> PRELU (constant alpha, in place): the sanitised host build of
    the generated C gives the reference runtime's bytes."""
    x_shape, alpha_shape, x_q, alpha_q, y_q = case
    b = Int8Builder("prelu", seed=1)
    x = b.x(x_shape, 0.05, -3)
    x2 = b.input("x2", x_shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(*x_q))
    alpha = b.constant("alpha", alpha_shape, DType.INT8,
                       b.rng.integers(-128, 128, size=alpha_shape, dtype=np.int8), q(*alpha_q))
    y = b.op(OpKind.PRELU, [s, alpha], dtype=DType.INT8, quant=q(*y_q))
    assert differential_run(b.finish([y]), tmp_path, qemu=False, target="host") == {"host-asan": 0}


def test_prelu_refuses_bad_values_in_one_line():
    graph = prelu_graph(*CASES[0])
    per_axis = QuantParams((0.01, 0.02, 0.01, 0.03), (0, 0, 0, 0), 2)
    bad_alpha = Graph(graph.name, {**graph.tensors, "alpha": Tensor(
        "alpha", (1, 1, 4), DType.INT8, per_axis, True, graph.tensors["alpha"].data)},
        graph.ops, graph.inputs, graph.outputs)
    with pytest.raises(InvalidValueError, match="alpha tensor alpha: quantised per axis") as info:
        validate_model(bad_alpha)
    assert "\n" not in str(info.value)
    tiny_out = Graph(graph.name, {**graph.tensors, "y": Tensor("y", (1, 8, 8, 4), DType.INT8,
                                                               q(1e-19, 0))},
                     graph.ops, graph.inputs, graph.outputs)
    with pytest.raises(InvalidValueError, match="identity .* not representable"):
        validate_model(tiny_out)


def test_generated_c_for_cortex_m7_equals_the_reference(tmp_path):
    """The Cortex-M7 build (DSP clamp), under QEMU where the Arm toolchain is installed."""
    x_shape, alpha_shape, x_q, alpha_q, y_q = CASES[0]
    b = Int8Builder("prelu_m7", seed=3)
    x = b.x(x_shape, *x_q)
    alpha = b.constant("alpha", alpha_shape, DType.INT8,
                       b.rng.integers(-128, 128, size=alpha_shape, dtype=np.int8), q(*alpha_q))
    y = b.op(OpKind.PRELU, [x, alpha], dtype=DType.INT8, quant=q(*y_q))
    runs = differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM, target="cortex-m7")
    assert set(runs.values()) == {0}
