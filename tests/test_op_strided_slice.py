"""STRIDED_SLICE, added as one op module: registered, round-trips through the .tflite writer and
reader (begin/end/strides as constant inputs, masks in StridedSliceOptions), runs bit-exact with the
TFLite Micro pip interpreter on ranks 1 to 4 with positive, negative and reversing strides, begin,
end and shrink-axis masks and out-of-range indices, its generated C (sanitised host build) equals
the reference runtime, and bad slices are refused at import in one line."""

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
from mcuforge.ops.strided_slice import StridedSliceAttrs, strided_slice
from mcuforge.ops.validation import validate_model

QX = QuantParams.per_tensor(0.07, -5)
A = StridedSliceAttrs
# (input shape, attrs, the numpy expression the slice stands for)
CASES = [
    ((10,), A((2,), (8,), (2,)), lambda x: x[2:8:2]),
    ((10,), A((-1,), (0,), (-1,)), lambda x: x[-1:0:-1]),
    ((10,), A((0,), (0,), (-3,), begin_mask=1, end_mask=1), lambda x: x[::-3]),
    ((4, 6), A((1, -4), (100, -1), (1, 1)), lambda x: x[1:100, -4:-1]),
    ((4, 6), A((0, 2), (0, 3), (1, 1), begin_mask=1, end_mask=1, shrink_axis_mask=2),
     lambda x: x[:, 2]),
    ((1, 5, 7), A((0, 4, 6), (1, 0, 0), (1, -2, -3), end_mask=6), lambda x: x[0:1, 4::-2, 6::-3]),
    ((1, 6, 6, 3), A((0, 1, 0, 0), (1, 6, 5, 3), (1, 2, 2, 1)), lambda x: x[:, 1:6:2, 0:5:2, :]),
    ((2, 4, 5, 8), A((0, 0, -1, 3), (2, 4, 0, 7), (1, 1, 1, 1), shrink_axis_mask=5),
     lambda x: x[0, :, -1, 3:7]),
    ((3, 4, 5, 6), A((-100, 1, 1, 5), (100, 3, 4, 0), (2, 1, 3, -2)),
     lambda x: x[::2, 1:3, 1:4:3, 5:0:-2]),
]

# The sanitised host build, and the Cortex-M7 build under QEMU where the Arm toolchain is installed.
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}


def slice_graph(shape, attrs: StridedSliceAttrs) -> Graph:
    """x -> STRIDED_SLICE -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, QX)
    op = Op("slice", OpKind.STRIDED_SLICE, ("x",), ("y",), attrs)
    y = Tensor("y", op_def(OpKind.STRIDED_SLICE).output_shape(op, [x.shape]), DType.INT8, QX)
    return Graph("strided_slice", {"x": x, "y": y}, (op,), ("x",), ("y",))


def test_strided_slice_is_registered_with_its_rules():
    assert OpKind.STRIDED_SLICE in implemented_kinds()
    definition = op_def(OpKind.STRIDED_SLICE)
    assert definition.has_reference and definition.has_lowering and not definition.patchable
    assert slice_graph(*CASES[4][:2]).tensors["y"].shape == (4,)


@pytest.mark.parametrize("shape, attrs, expression", CASES)
def test_strided_slice_is_the_numpy_slice(shape, attrs, expression):
    """Independent of TFLite: each case is the numpy slice it stands for."""
    x = np.arange(np.prod(shape), dtype=np.int32).reshape(shape)
    assert np.array_equal(strided_slice(x, attrs), expression(x))


@pytest.mark.parametrize("case", [CASES[2], CASES[5], CASES[7]])
def test_strided_slice_round_trips_through_tflite(case, tmp_path):
    shape, attrs, _ = case
    graph = slice_graph(shape, attrs)
    read = read_tflite(write_tflite(graph, tmp_path / "strided_slice.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.STRIDED_SLICE]
    assert read.ops[0].attrs == attrs
    assert read.tensors[read.outputs[0]].shape == graph.tensors["y"].shape


@pytest.mark.parametrize("shape, attrs, expression", CASES)
def test_strided_slice_matches_tflite_micro(shape, attrs, expression):
    x = np.random.default_rng(len(shape)).integers(-128, 128, size=shape, dtype=np.int8)
    x.reshape(-1)[:2] = (-128, 127)
    assert_matches_tflm(slice_graph(shape, attrs), [x])


@pytest.mark.parametrize("case", [CASES[6], CASES[8], CASES[4]])
def test_generated_c_equals_the_reference(case, tmp_path):
    """ADD (an arena tensor) -> STRIDED_SLICE: the sanitised host build gives the reference
    runtime's bytes."""
    shape, attrs, _ = case
    b = Int8Builder("strided_slice", seed=4)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
    y = b.op(OpKind.STRIDED_SLICE, [s], attrs, quant=q(0.08, 2))
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


@pytest.mark.parametrize("attrs, message", [
    (A((0, 0), (2, 3), (1, 0)), "stride of dimension 1 is 0"),
    (A((0,), (2,), (1,)), "expected 2 \\(the input rank\\)"),
    (A((0, 3), (2, 1), (1, 1)), "dimension 1 selects no element"),
    (A((0, 3), (2, 3), (1, 1), shrink_axis_mask=2), "shrunk dimension 1 starts at 3"),
    (A((0, 1), (2, 3), (1, -1), shrink_axis_mask=2), "a positive stride"),
])
def test_strided_slice_refuses_bad_slices(attrs, message):
    x = Tensor("x", (2, 3), DType.INT8, QX)
    op = Op("slice", OpKind.STRIDED_SLICE, ("x",), ("y",), attrs)
    graph = Graph("bad", {"x": x, "y": Tensor("y", (2, 3), DType.INT8, QX)}, (op,), ("x",), ("y",))
    with pytest.raises(InvalidValueError, match=message) as info:
        validate_model(graph)
    assert str(info.value).startswith("graph bad: operator #0 slice (STRIDED_SLICE): ")
    assert "\n" not in str(info.value)
