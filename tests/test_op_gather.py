"""GATHER with constant indices, added as one op module: registered, round-trips through the
.tflite writer and reader (indices as a constant input, GatherOptions), runs bit-exact with the
TFLite Micro pip interpreter on several axes, index shapes (a scalar included) and batch_dims, its
generated C (sanitised host build) equals the reference runtime, and bad axes and indices out of
range are refused at import in one line."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, ElementwiseAttrs, Graph, Op, OpKind, QuantParams, Tensor
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.gather import GatherAttrs, gather
from mcuforge.ops.validation import validate_model

QX = QuantParams.per_tensor(0.02, -7)

# The sanitised host build, and the Cortex-M7 build under QEMU where the Arm toolchain is installed.
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}


def G(indices, axis=0, batch_dims=0) -> GatherAttrs:
    """GatherAttrs of an index array."""
    array = np.asarray(indices)
    return GatherAttrs(tuple(int(v) for v in array.reshape(-1)), array.shape, axis, batch_dims)


CASES = [
    ((10,), G([3, 0, 9, 9, 2])),
    ((10, 4), G(7)),
    ((5, 6), G([[0, 5], [2, 2], [1, 4]], axis=1)),
    ((5, 6), G([4, 0, 1], axis=-2)),
    ((2, 3, 4, 5), G([3, 1], axis=2)),
    ((2, 3, 4, 5), G([[1, 0, 2], [2, 2, 0]], axis=1, batch_dims=1)),
    ((3, 4, 6), G([[5], [0], [3]], axis=2, batch_dims=-1)),
]


def gather_graph(shape, attrs: GatherAttrs) -> Graph:
    """x -> GATHER -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, QX)
    op = Op("gather", OpKind.GATHER, ("x",), ("y",), attrs)
    y = Tensor("y", op_def(OpKind.GATHER).output_shape(op, [x.shape]), DType.INT8, QX)
    return Graph("gather", {"x": x, "y": y}, (op,), ("x",), ("y",))


def test_gather_is_registered_with_its_rules():
    assert OpKind.GATHER in implemented_kinds()
    definition = op_def(OpKind.GATHER)
    assert definition.has_reference and definition.has_lowering and not definition.patchable
    assert gather_graph(*CASES[1]).tensors["y"].shape == (4,)
    assert gather_graph(*CASES[2]).tensors["y"].shape == (5, 3, 2)
    assert gather_graph(*CASES[5]).tensors["y"].shape == (2, 3, 4, 5)


@pytest.mark.parametrize("shape, attrs", CASES)
def test_gather_is_numpy_take(shape, attrs):
    """Independent of TFLite: without batch_dims GATHER is ``np.take``; with them, a take per
    batch."""
    x = np.arange(np.prod(shape), dtype=np.int32).reshape(shape)
    indices = np.asarray(attrs.indices).reshape(attrs.indices_shape)
    if attrs.batch_dims == 0:
        expected = np.take(x, indices, axis=attrs.axis)
    else:
        expected = np.stack([np.take(x[b], indices[b], axis=attrs.axis % x.ndim - 1)
                             for b in range(shape[0])])
    assert np.array_equal(gather(x, attrs), expected)


@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[5]])
def test_gather_round_trips_through_tflite(case, tmp_path):
    shape, attrs = case
    graph = gather_graph(shape, attrs)
    read = read_tflite(write_tflite(graph, tmp_path / "gather.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.GATHER]
    assert read.ops[0].attrs == attrs
    assert read.tensors[read.outputs[0]].shape == graph.tensors["y"].shape


@pytest.mark.parametrize("shape, attrs", CASES)
def test_gather_matches_tflite_micro(shape, attrs):
    x = np.random.default_rng(len(attrs.indices)).integers(-128, 128, size=shape, dtype=np.int8)
    x.reshape(-1)[:2] = (-128, 127)
    assert_matches_tflm(gather_graph(shape, attrs), [x])


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[5]])
def test_generated_c_equals_the_reference(case, tmp_path):
    """ADD (an arena tensor) -> GATHER: the sanitised host build gives the reference runtime's
    bytes."""
    shape, attrs = case
    b = Int8Builder("gather", seed=6)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
    y = b.op(OpKind.GATHER, [s], attrs, quant=q(0.08, 2))
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


@pytest.mark.parametrize("attrs, message", [
    (G([0, 6]), "index 6 out of range \\[0, 5\\) along axis 0"),
    (G([-1]), "index -1 out of range"),
    (G([0], axis=2), "GATHER axis 2 out of range for a rank-2 input"),
    (G([[0], [1]], axis=0, batch_dims=1), "batch_dims 1 out of range"),
    (GatherAttrs((0, 1), (3,)), "2 indices for an indices shape \\[3\\]"),
])
def test_gather_refuses_bad_attributes(attrs, message):
    x = Tensor("x", (5, 6), DType.INT8, QX)
    op = Op("gather", OpKind.GATHER, ("x",), ("y",), attrs)
    graph = Graph("bad", {"x": x, "y": Tensor("y", (2, 6), DType.INT8, QX)}, (op,), ("x",), ("y",))
    with pytest.raises(InvalidValueError, match=message) as info:
        validate_model(graph)
    assert str(info.value).startswith("graph bad: operator #0 gather (GATHER): ")
    assert "\n" not in str(info.value)
