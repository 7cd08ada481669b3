"""RESIZE_BILINEAR (ops/resize_bilinear.py): registered, round-trips through the .tflite writer and
reader (size, align_corners, half_pixel_centers), bit-exact with the TFLite Micro pip interpreter
when upsampling, downsampling and keeping the size with each corner option, its generated C
(sanitised host build) equals the reference runtime, and bad options or quantisations are refused
at import in one line."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, ElementwiseAttrs, Graph, Op, OpKind, QuantParams, ResizeAttrs, Tensor
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.resize_bilinear import axis_table
from mcuforge.ops.validation import validate_model

KIND = OpKind.RESIZE_BILINEAR
QX = QuantParams.per_tensor(0.05, -3)
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}
OPTIONS = [(False, False), (True, False), (False, True)]


def resize_graph(shape, size, align, half, y_q=QX) -> Graph:
    """x -> RESIZE_BILINEAR(size) -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, QX)
    op = Op("resize", KIND, ("x",), ("y",), ResizeAttrs(tuple(size), align, half))
    y = Tensor("y", op_def(KIND).output_shape(op, [x.shape]), DType.INT8, y_q)
    return Graph("resize", {"x": x, "y": y}, (op,), ("x",), ("y",))


def test_registered_with_its_shape_and_tables():
    assert KIND in implemented_kinds()
    definition = op_def(KIND)
    assert definition.has_reference and definition.has_lowering and not definition.patchable
    assert resize_graph((2, 3, 4, 5), (7, 2), False, False).tensors["y"].shape == (2, 7, 2, 5)
    lower, upper, weight = axis_table(2, 4, False, True)    # half pixel: the first weight < 0
    assert list(lower) == [0, 0, 0, 1] and list(upper) == [0, 1, 1, 1]
    assert list(weight) == [-256, 256, 768, 256]


@pytest.mark.parametrize("align, half", OPTIONS)
def test_round_trip_through_tflite(align, half, tmp_path):
    graph = resize_graph((1, 3, 4, 2), (6, 9), align, half)
    read = read_tflite(write_tflite(graph, tmp_path / "resize.tflite"))
    assert [op.kind for op in read.ops] == [KIND]
    assert read.ops[0].attrs == ResizeAttrs((6, 9), align, half)
    assert read.tensors[read.outputs[0]].shape == (1, 6, 9, 2)


@pytest.mark.parametrize("align, half", OPTIONS)
@pytest.mark.parametrize("shape, size", [((1, 3, 4, 2), (6, 8)), ((2, 5, 7, 3), (13, 4)),
                                         ((1, 8, 8, 4), (3, 5)), ((1, 4, 4, 3), (4, 4)),
                                         ((1, 1, 5, 2), (3, 10)), ((1, 6, 3, 1), (1, 1))])
def test_matches_tflite_micro(shape, size, align, half):
    rng = np.random.default_rng(sum(shape) + sum(size))
    x = rng.integers(-128, 128, size=shape, dtype=np.int8)
    x.reshape(-1)[:4] = (-128, 127, -128, 127)
    assert_matches_tflm(resize_graph(shape, size, align, half), [x])
    assert_matches_tflm(resize_graph(shape, size, align, half), [np.full(shape, -128, np.int8)])


def test_keeps_a_constant_image_and_the_corners():
    x = np.full((1, 3, 5, 2), 37, np.int8)
    from mcuforge.runtime.reference import Interpreter
    y = Interpreter(resize_graph(x.shape, (7, 9), True, False)).invoke([x])[0]
    assert np.all(y == 37)
    x = np.arange(-60, 60, 4, dtype=np.int8).reshape(1, 3, 5, 2)
    y = Interpreter(resize_graph(x.shape, (7, 9), True, False)).invoke([x])[0]
    assert np.array_equal(y[0, ::6, ::8], x[0, ::2, ::4])   # align_corners keeps the corners


@pytest.mark.parametrize("align, half", OPTIONS)
def test_generated_c_equals_the_reference(align, half, tmp_path):
    """ADD (an arena tensor) -> RESIZE_BILINEAR -> ADD: the sanitised host build gives the
    reference's bytes."""
    b = Int8Builder("resize", seed=6)
    shape = (2, 5, 4, 3)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
    z = b.op(KIND, [s], ResizeAttrs((9, 7), align, half), quant=q(0.08, 2))
    x3 = b.input("x3", b.shape(z), DType.INT8, q(0.03, -1))
    y = b.op(OpKind.ADD, [z, x3], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.1, 0))
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


@pytest.mark.parametrize("align, half, y_q, message", [
    (True, True, QX, "align_corners and half_pixel_centers are both set"),
    (False, False, QuantParams.per_tensor(0.1, -3), "interpolates raw values"),
])
def test_refusals(align, half, y_q, message):
    graph = resize_graph((1, 3, 4, 2), (6, 8), align, half, y_q)
    with pytest.raises(InvalidValueError, match=message) as info:
        validate_model(graph)
    assert str(info.value).startswith("graph resize: operator #0 resize (RESIZE_BILINEAR)")
    assert "\n" not in str(info.value)
