"""EXPAND_DIMS, added as one op module: registered with an ALIAS overlap, round-trips through the
.tflite writer and reader, runs bit-exact with the TFLite Micro pip interpreter for every axis
(negative ones included), its generated C (sanitised host build) equals the reference runtime, and
an axis out of range is refused at import in one line."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.analysis.overlap import OverlapKind, OverlapOptions, find_overlap
from mcuforge.errors import InvalidValueError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, ElementwiseAttrs, Graph, Op, OpKind, QuantParams, Tensor
from mcuforge.ops import OverlapRule, implemented_kinds, op_def
from mcuforge.ops.expand_dims import ExpandDimsAttrs
from mcuforge.ops.validation import validate_model

QX = QuantParams.per_tensor(0.05, -3)
CASES = [((2, 3), 0), ((2, 3), 1), ((2, 3), 2), ((2, 3), -1), ((2, 3), -3),
         ((1, 4, 5), 3), ((3, 1, 2, 4), -2), ((7,), 0)]

# The sanitised host build, and the Cortex-M7 build under QEMU where the Arm toolchain is installed.
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}


def expand_graph(shape, axis: int) -> Graph:
    """x -> EXPAND_DIMS(axis) -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, QX)
    op = Op("expand", OpKind.EXPAND_DIMS, ("x",), ("y",), ExpandDimsAttrs(axis))
    y = Tensor("y", op_def(OpKind.EXPAND_DIMS).output_shape(op, [x.shape]), DType.INT8, QX)
    return Graph("expand_dims", {"x": x, "y": y}, (op,), ("x",), ("y",))


def test_expand_dims_is_registered_with_its_rules():
    assert OpKind.EXPAND_DIMS in implemented_kinds()
    definition = op_def(OpKind.EXPAND_DIMS)
    assert definition.overlap is OverlapRule.ALIAS
    assert definition.has_reference and definition.has_lowering and not definition.patchable
    graph = expand_graph((2, 3), -1)
    assert graph.tensors["y"].shape == (2, 3, 1)
    assert expand_graph((2, 3), 0).tensors["y"].shape == (1, 2, 3)
    overlap = find_overlap(graph, graph.ops[0], {"x"}, OverlapOptions(False, False, False))
    assert overlap is not None and overlap.kind is OverlapKind.ALIAS


@pytest.mark.parametrize("shape, axis", [((2, 3), -1), ((1, 4, 5), 1)])
def test_expand_dims_round_trips_through_tflite(shape, axis, tmp_path):
    graph = expand_graph(shape, axis)
    read = read_tflite(write_tflite(graph, tmp_path / "expand_dims.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.EXPAND_DIMS]
    assert read.ops[0].attrs == ExpandDimsAttrs(axis)
    assert read.tensors[read.outputs[0]].shape == graph.tensors["y"].shape


@pytest.mark.parametrize("shape, axis", CASES)
def test_expand_dims_matches_tflite_micro(shape, axis):
    rng = np.random.default_rng(axis + 10)
    x = rng.integers(-128, 128, size=shape, dtype=np.int8)
    x.reshape(-1)[:2] = (-128, 127)
    y = assert_matches_tflm(expand_graph(shape, axis), [x])
    assert np.array_equal(y.reshape(-1), x.reshape(-1))


@pytest.mark.parametrize("before", [True, False])
def test_generated_c_equals_the_reference(before, tmp_path):
    """EXPAND_DIMS on a graph input feeding an ADD, and on an ADD's output (an arena tensor) as the
    graph output: the sanitised host build gives the reference runtime's bytes."""
    b = Int8Builder("expand_dims", seed=2)
    x = b.x((4, 6), 0.05, -3)
    x2 = b.input("x2", (4, 1, 6) if before else (4, 6), DType.INT8, q(0.04, 7))
    if before:
        e = b.op(OpKind.EXPAND_DIMS, [x], ExpandDimsAttrs(1), quant=q(0.05, -3))
        y = b.op(OpKind.ADD, [e, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
    else:
        s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
        y = b.op(OpKind.EXPAND_DIMS, [s], ExpandDimsAttrs(-1), quant=q(0.08, 2))
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


@pytest.mark.parametrize("axis", [3, -4, 100])
def test_expand_dims_refuses_an_axis_out_of_range(axis):
    x = Tensor("x", (2, 3), DType.INT8, QX)
    op = Op("expand", OpKind.EXPAND_DIMS, ("x",), ("y",), ExpandDimsAttrs(axis))
    y = Tensor("y", (2, 3, 1), DType.INT8, QX)
    graph = Graph("bad", {"x": x, "y": y}, (op,), ("x",), ("y",))
    with pytest.raises(InvalidValueError,
                       match=r"EXPAND_DIMS\): EXPAND_DIMS axis .* out of range") as info:
        validate_model(graph)
    assert "\n" not in str(info.value)
