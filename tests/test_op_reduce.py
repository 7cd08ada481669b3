"""SUM and REDUCE_MAX (ops/reduce.py), and MEAN over any axes: registered, round-trip through the
.tflite writer and reader (axes and keep_dims), bit-exact with the TFLite Micro pip interpreter
over one, two and three axes (negative, repeated, none), with and without keep_dims, at saturating
scales; their generated C (sanitised host build) equals the reference runtime; bad axes and
quantisations are refused at import in one line."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, ElementwiseAttrs, Graph, MeanAttrs, Op, OpKind, QuantParams, Tensor
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.validation import validate_model

SUM, MAX, MEAN = OpKind.SUM, OpKind.REDUCE_MAX, OpKind.MEAN
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}
QX = q(0.02, -7)


def reduce_graph(kind, shape, axes, keep_dims, x_q=QX, y_q=QX) -> Graph:
    """x -> kind(axes, keep_dims) -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, x_q)
    op = Op("reduce", kind, ("x",), ("y",), MeanAttrs(tuple(axes), keep_dims))
    y = Tensor("y", op_def(kind).output_shape(op, [x.shape]), DType.INT8, y_q)
    return Graph("reduce", {"x": x, "y": y}, (op,), ("x",), ("y",))


def test_registered_with_their_shapes():
    assert {SUM, MAX} <= set(implemented_kinds())
    for kind in (SUM, MAX):
        definition = op_def(kind)
        assert definition.has_reference and definition.has_lowering and not definition.patchable
    assert reduce_graph(SUM, (2, 3, 4, 5), (0, -1), True).tensors["y"].shape == (1, 3, 4, 1)
    assert reduce_graph(MAX, (2, 3, 4, 5), (1, 2, 1), False).tensors["y"].shape == (2, 5)


@pytest.mark.parametrize("kind", [SUM, MAX])
@pytest.mark.parametrize("axes, keep_dims", [((1, 2), True), ((-1,), False)])
def test_round_trip_through_tflite(kind, axes, keep_dims, tmp_path):
    graph = reduce_graph(kind, (1, 4, 5, 3), axes, keep_dims)
    read = read_tflite(write_tflite(graph, tmp_path / "reduce.tflite"))
    assert [op.kind for op in read.ops] == [kind]
    assert read.ops[0].attrs == MeanAttrs(axes, keep_dims)
    assert read.tensors[read.outputs[0]].shape == graph.tensors["y"].shape


SUM_CASES = [
    ((1, 4, 5, 3), (1, 2), True, q(0.05, 3), q(0.9, -2)),
    ((1, 4, 5, 3), (2,), False, q(0.05, 3), q(0.3, 10)),
    ((2, 3, 8), (-1,), False, QX, QX),                        # one quantisation: saturates
    ((2, 3, 8), (0, 2), True, QX, q(0.5, 1)),
    ((2, 3, 4, 5), (0, 1, 3), False, QX, q(0.5, 1)),
    ((2, 3, 4, 5), (3, -1, 1), True, q(0.1, 100), q(2.0, -120)),
    ((3, 7), (), False, q(0.1, 4), q(0.07, -3)),               # no axes: a requantisation
    ((16, 16), (0, 1), False, q(0.01, -128), q(2.5, 0)),
]


@pytest.mark.parametrize("shape, axes, keep_dims, x_q, y_q", SUM_CASES)
def test_sum_matches_tflite_micro(shape, axes, keep_dims, x_q, y_q):
    rng = np.random.default_rng(sum(shape) + len(axes))
    x = rng.integers(-128, 128, size=shape, dtype=np.int8)
    x.reshape(-1)[:2] = (-128, 127)
    assert_matches_tflm(reduce_graph(SUM, shape, axes, keep_dims, x_q, y_q), [x])


@pytest.mark.parametrize("shape, axes, keep_dims", [
    ((1, 4, 5, 3), (1, 2), True), ((2, 3, 4, 5), (1, 3), False), ((2, 3, 4, 5), (0, 1, 3), True),
    ((2, 3, 8), (-1, 2), False), ((3, 7), (), True), ((9,), (0,), False)])
def test_reduce_max_matches_tflite_micro(shape, axes, keep_dims):
    rng = np.random.default_rng(sum(shape) + 7)
    for x in (rng.integers(-128, 128, size=shape, dtype=np.int8), np.full(shape, -128, np.int8)):
        y = assert_matches_tflm(reduce_graph(MAX, shape, axes, keep_dims), [x])
        resolved = tuple(sorted({a % len(shape) for a in axes}))
        assert np.array_equal(y, np.max(x, axis=resolved, keepdims=keep_dims) if axes else x)


@pytest.mark.parametrize("shape, axes, keep_dims", [
    ((2, 3, 4, 5), (0, 1, 3), False), ((2, 3, 4, 5), (0, 1, 2, 3), True), ((1, 6, 5), (0, -1), True),
    ((2, 3, 4, 5), (-3, 1), False)])
def test_mean_over_any_axes_matches_tflite_micro(shape, axes, keep_dims):
    rng = np.random.default_rng(sum(shape) + 11)
    graph = reduce_graph(MEAN, shape, axes, keep_dims, q(0.05, 6), q(0.03, -4))
    assert_matches_tflm(graph, [rng.integers(-128, 128, size=shape, dtype=np.int8)])


@pytest.mark.parametrize("kind, axes, keep_dims, y_q", [
    (SUM, (1, 3), True, q(0.3, 5)), (SUM, (0, 1, 2), False, q(1.5, -9)),
    (MAX, (1, 2), False, q(0.08, 2)), (MAX, (0, 3), True, q(0.08, 2)),
    (MEAN, (0, 2, 3), False, q(0.05, 1)), (MEAN, (1,), True, q(0.05, 1))])
def test_generated_c_equals_the_reference(kind, axes, keep_dims, y_q, tmp_path):
    """ADD (an arena tensor) -> the reduction -> ADD: the sanitised host build gives the
    reference's bytes."""
    b = Int8Builder("reduce", seed=5)
    shape = (2, 3, 4, 5)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
    z = b.op(kind, [s], MeanAttrs(axes, keep_dims), quant=y_q)
    x3 = b.input("x3", b.shape(z), DType.INT8, q(0.03, -1))
    y = b.op(OpKind.ADD, [z, x3], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.1, 0))
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


@pytest.mark.parametrize("kind, axes, y_q, message", [
    (MAX, (1,), q(0.03, -7), r"REDUCE_MAX needs one quantisation for both"),
    (MAX, (1,), q(0.02, 0), r"zero point 0 differs from the input's"),
    (SUM, (4,), QX, r"axis"),
    (SUM, (1,), q(1e-12, 0), r"requantisation \(tensor x / output\)"),
])
def test_refusals(kind, axes, y_q, message):
    x = Tensor("x", (2, 3, 4), DType.INT8, QX)
    op = Op("reduce", kind, ("x",), ("y",), MeanAttrs(axes, False))
    graph = Graph("bad", {"x": x, "y": Tensor("y", (2, 4), DType.INT8, y_q)}, (op,), ("x",),
                  ("y",))
    with pytest.raises(InvalidValueError, match=message) as info:
        validate_model(graph)
    assert str(info.value).startswith(f"graph bad: operator #0 reduce ({kind.value})")
    assert "\n" not in str(info.value)
