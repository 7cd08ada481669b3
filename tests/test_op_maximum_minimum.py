"""MAXIMUM and MINIMUM (int8, TFLite semantics: raw values compared, one quantisation for operands
and output) as one op module: registered, round-trip through the .tflite writer and reader,
bit-exact with the TFLite Micro pip interpreter with and without broadcasting, and their generated C
(the broadcast loop; sanitised host build) equals the reference runtime."""

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
from mcuforge.ops.maximum_minimum import maximum_minimum_int8
from mcuforge.ops.registry import OverlapRule
from mcuforge.ops.validation import validate_model

KINDS = (OpKind.MAXIMUM, OpKind.MINIMUM)
# (shape 1, shape 2, scale, zero point)
CASES = [
    ((2, 3, 4, 5), (2, 3, 4, 5), 0.05, -3),
    ((1, 4, 4, 8), (1, 1, 8), 0.02, 10),
    ((8,), (1, 4, 4, 8), 0.3, 0),
    ((3, 1, 5), (1, 4, 1), 0.004, 100),
    ((1, 300), (1,), 1.5, -128),
]


def graph_of(kind, shape1, shape2, scale, zero_point, out_q=None) -> Graph:
    """a, b -> MAXIMUM / MINIMUM -> y."""
    quant = QuantParams.per_tensor(scale, zero_point)
    a = Tensor("a", shape1, DType.INT8, quant)
    b = Tensor("b", shape2, DType.INT8, quant)
    op = Op(kind.value.lower(), kind, ("a", "b"), ("y",), NoAttrs())
    y = Tensor("y", infer_output_shape(op, [shape1, shape2]), DType.INT8, out_q or quant)
    return Graph("g", {"a": a, "b": b, "y": y}, (op,), ("a", "b"), ("y",))


@pytest.mark.parametrize("kind", KINDS)
def test_registered_with_their_rules(kind):
    assert kind in implemented_kinds()
    definition = op_def(kind)
    graph = graph_of(kind, *CASES[1])
    assert definition.output_shape(graph.ops[0], [(1, 4, 4, 8), (1, 1, 8)]) == (1, 4, 4, 8)
    assert definition.has_reference and definition.has_lowering and definition.patchable
    assert definition.overlap is OverlapRule.ELEMENTWISE


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_through_tflite(kind, tmp_path):
    read = read_tflite(write_tflite(graph_of(kind, *CASES[1]), tmp_path / "m.tflite"))
    assert [op.kind for op in read.ops] == [kind]
    assert read.tensors[read.outputs[0]].shape == (1, 4, 4, 8)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES)
def test_match_tflite_micro(kind, case):
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        inputs = [rng.integers(-128, 128, size=s, dtype=np.int8) for s in case[:2]]
        assert_matches_tflm(graph_of(kind, *case), inputs)


def test_follow_the_real_maximum_and_minimum():
    a = np.arange(-128, 128, dtype=np.int8)
    b = np.roll(a, 77)
    assert np.array_equal(maximum_minimum_int8(OpKind.MAXIMUM, a, b), np.maximum(a, b))
    assert np.array_equal(maximum_minimum_int8(OpKind.MINIMUM, a, b), np.minimum(a, b))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[2]])
def test_generated_c_equals_the_reference(kind, case, tmp_path):
    """ADD (an arena tensor) -> MAXIMUM / MINIMUM against a second input, and against a constant:
    the sanitised host build of the generated C gives the reference runtime's bytes."""
    shape1, shape2, scale, zero_point = case
    b = Int8Builder("mm", seed=1)
    x = b.x(shape1, 0.05, -3)
    x2 = b.input("x2", shape1, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(scale, zero_point))
    other = b.input("other", shape2, DType.INT8, q(scale, zero_point))
    m = b.op(kind, [s, other], dtype=DType.INT8, quant=q(scale, zero_point))
    c = b.constant("c", shape2, DType.INT8, b.rng.integers(-128, 128, size=shape2, dtype=np.int8),
                   q(scale, zero_point))
    y = b.op(kind, [c, m], dtype=DType.INT8, quant=q(scale, zero_point))
    assert differential_run(b.finish([y]), tmp_path, qemu=False, target="host") == {"host-asan": 0}


@pytest.mark.parametrize("kind", KINDS)
def test_refuse_differing_quantisation_in_one_line(kind):
    with pytest.raises(InvalidValueError, match="needs one quantisation for all three") as info:
        validate_model(graph_of(kind, (1, 8), (1, 8), 0.05, 0, q(0.1, 0)))
    assert "\n" not in str(info.value) and "tensor a" in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_generated_c_for_cortex_m7_equals_the_reference(kind, tmp_path):
    """The Cortex-M7 build, under QEMU where the Arm toolchain is installed."""
    shape1, shape2, scale, zero_point = CASES[1]
    b = Int8Builder("mm_m7", seed=3)
    x = b.x(shape1, scale, zero_point)
    other = b.input("other", shape2, DType.INT8, q(scale, zero_point))
    y = b.op(kind, [x, other], dtype=DType.INT8, quant=q(scale, zero_point))
    runs = differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM, target="cortex-m7")
    assert set(runs.values()) == {0}
