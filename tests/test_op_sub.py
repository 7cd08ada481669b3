"""SUB (int8, TFLite semantics, with broadcasting and a fused activation) as one op module:
registered, round-trips through the .tflite writer and reader, bit-exact with the TFLite Micro pip
interpreter on several shapes, scales and activations, and its generated C (the broadcast loop, or a
256-entry table for a one-valued constant operand; sanitised host build) equals the reference
runtime."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import (DType, ElementwiseAttrs, Graph, Op, OpKind, QuantParams, Tensor,
                         infer_output_shape)
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.registry import OverlapRule
from mcuforge.ops.sub import sub_int8
from mcuforge.ops.validation import validate_model

INF = float("inf")
# (shape 1, shape 2, scales, zero points, clamp)
CASES = [
    ((2, 3, 4, 5), (2, 3, 4, 5), (0.05, 0.04, 0.08), (-3, 7, 1), (-INF, INF)),
    ((1, 4, 4, 8), (1, 1, 1, 8), (0.02, 0.1, 0.07), (10, -20, -5), (0.0, INF)),
    ((1, 1, 1, 8), (1, 4, 4, 8), (0.3, 0.01, 0.2), (0, 0, 0), (0.0, 6.0)),
    ((3, 1, 5), (1, 4, 1), (0.004, 0.004, 0.001), (100, -100, 0), (-1.0, 1.0)),
    ((1, 300), (300,), (1.5, 0.7, 0.05), (-128, 127, 3), (-INF, INF)),
]


def sub_graph(shape1, shape2, scales, zero_points, clamp) -> Graph:
    """a, b -> SUB -> y."""
    a = Tensor("a", shape1, DType.INT8, QuantParams.per_tensor(scales[0], zero_points[0]))
    b = Tensor("b", shape2, DType.INT8, QuantParams.per_tensor(scales[1], zero_points[1]))
    op = Op("sub", OpKind.SUB, ("a", "b"), ("y",), ElementwiseAttrs(clamp))
    y = Tensor("y", infer_output_shape(op, [shape1, shape2]), DType.INT8,
               QuantParams.per_tensor(scales[2], zero_points[2]))
    return Graph("sub", {"a": a, "b": b, "y": y}, (op,), ("a", "b"), ("y",))


def test_sub_is_registered_with_its_rules():
    assert OpKind.SUB in implemented_kinds()
    definition = op_def(OpKind.SUB)
    graph = sub_graph(*CASES[1])
    assert definition.output_shape(graph.ops[0], [(1, 4, 4, 8), (1, 1, 1, 8)]) == (1, 4, 4, 8)
    assert definition.has_reference and definition.has_lowering and definition.patchable
    assert definition.overlap is OverlapRule.ELEMENTWISE


def test_sub_round_trips_through_tflite(tmp_path):
    read = read_tflite(write_tflite(sub_graph(*CASES[2]), tmp_path / "sub.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.SUB]
    assert read.ops[0].attrs.clamp == (0.0, 6.0)
    assert read.tensors[read.inputs[1]].shape == (1, 4, 4, 8)


@pytest.mark.parametrize("case", CASES)
def test_sub_matches_tflite_micro(case):
    graph = sub_graph(*case)
    rng = np.random.default_rng(0)
    for extreme in (-128, 127, None):
        inputs = [np.full(s, extreme, np.int8) if extreme is not None
                  else rng.integers(-128, 128, size=s, dtype=np.int8) for s in case[:2]]
        inputs[0].reshape(-1)[:min(256, inputs[0].size)] = np.arange(-128, 128)[:inputs[0].size]
        assert_matches_tflm(graph, inputs)


def test_sub_follows_the_real_difference():
    """Independent of TFLite: within one output step of (a - b) where it fits."""
    a = np.arange(-128, 128, dtype=np.int8)
    b = a[::-1].copy()
    y = sub_int8(a, b, (-INF, INF), q(0.05, 3), q(0.03, -7), q(0.1, 2))
    expected = ((a.astype(np.float64) - 3) * 0.05 - (b.astype(np.float64) + 7) * 0.03) / 0.1 + 2
    inside = (expected > -128) & (expected < 127)
    assert np.max(np.abs(y[inside] - expected[inside])) <= 1


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[2], CASES[3]])
def test_generated_c_equals_the_reference(case, tmp_path):
    """ADD (an arena tensor) -> SUB against a second input, broadcast either way: the sanitised host
    build of the generated C gives the reference runtime's bytes."""
    shape1, shape2, scales, zero_points, clamp = case
    b = Int8Builder("sub", seed=1)
    x = b.x(shape1, 0.05, -3)
    x2 = b.input("x2", shape1, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8,
             quant=q(scales[0], zero_points[0]))
    other = b.input("other", shape2, DType.INT8, q(scales[1], zero_points[1]))
    y = b.op(OpKind.SUB, [s, other], ElementwiseAttrs(clamp), dtype=DType.INT8,
             quant=q(scales[2], zero_points[2]))
    assert differential_run(b.finish([y]), tmp_path, qemu=False, target="host") == {"host-asan": 0}


def test_generated_c_with_constants_equals_the_reference(tmp_path):
    """SUB of a per-channel constant (a const array) and of a one-valued constant (a table)."""
    b = Int8Builder("sub_const", seed=2)
    x = b.x((1, 4, 4, 8), 0.05, -3)
    c = b.constant("c", (8,), DType.INT8, b.rng.integers(-128, 128, size=8, dtype=np.int8),
                   q(0.03, 5))
    s = b.op(OpKind.SUB, [c, x], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.06, 0))
    k = b.constant("k", (1,), DType.INT8, np.array([40], np.int8), q(0.02, -10))
    y = b.op(OpKind.SUB, [s, k], ElementwiseAttrs((0.0, INF)), dtype=DType.INT8, quant=q(0.05, -20))
    assert differential_run(b.finish([y]), tmp_path, qemu=False, target="host") == {"host-asan": 0}


def test_sub_refuses_an_output_multiplier_of_one_or_more_in_one_line():
    graph = sub_graph((1, 8), (1, 8), (0.5, 0.5, 1e-7), (0, 0, 0), (-INF, INF))
    with pytest.raises(InvalidValueError, match="SUB needs .* < 1") as info:
        validate_model(graph)
    assert "\n" not in str(info.value) and "tensor y" in str(info.value)


def test_generated_c_for_cortex_m7_equals_the_reference(tmp_path):
    """The Cortex-M7 build (DSP clamp), under QEMU where the Arm toolchain is installed."""
    shape1, shape2, scales, zero_points, _ = CASES[1]
    b = Int8Builder("sub_m7", seed=3)
    x = b.x(shape1, scales[0], zero_points[0])
    other = b.input("other", shape2, DType.INT8, q(scales[1], zero_points[1]))
    y = b.op(OpKind.SUB, [x, other], ElementwiseAttrs(), dtype=DType.INT8,
             quant=q(scales[2], zero_points[2]))
    runs = differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM, target="cortex-m7")
    assert set(runs.values()) == {0}
