"""SPACE_TO_DEPTH and DEPTH_TO_SPACE, added as one op module: registered, round-trip through the
.tflite writer and reader (block_size in their options), run bit-exact with the TFLite Micro pip
interpreter on several shapes and block sizes, are each other's inverse, their generated C
(sanitised host build) equals the reference runtime, and bad shapes or quantisations are refused
at import in one line."""

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
from mcuforge.ops.space_depth import BlockAttrs, depth_to_space, space_to_depth
from mcuforge.ops.validation import validate_model

S2D, D2S = OpKind.SPACE_TO_DEPTH, OpKind.DEPTH_TO_SPACE
QX = QuantParams.per_tensor(0.1, 4)
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}
CASES = [(S2D, (1, 4, 6, 3), 2), (S2D, (2, 6, 9, 2), 3), (S2D, (1, 8, 8, 1), 4),
         (S2D, (1, 3, 5, 7), 1), (D2S, (1, 2, 3, 12), 2), (D2S, (2, 3, 2, 18), 3),
         (D2S, (1, 2, 2, 16), 4), (D2S, (1, 4, 4, 5), 1)]


def block_graph(kind, shape, block, y_q=QX) -> Graph:
    """x -> kind(block) -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, QX)
    op = Op(kind.value.lower(), kind, ("x",), ("y",), BlockAttrs(block))
    y = Tensor("y", op_def(kind).output_shape(op, [x.shape]), DType.INT8, y_q)
    return Graph("block", {"x": x, "y": y}, (op,), ("x",), ("y",))


def test_registered_with_their_shapes():
    assert {S2D, D2S} <= set(implemented_kinds())
    for kind in (S2D, D2S):
        definition = op_def(kind)
        assert definition.has_reference and definition.has_lowering and not definition.patchable
    assert block_graph(S2D, (1, 4, 6, 3), 2).tensors["y"].shape == (1, 2, 3, 12)
    assert block_graph(D2S, (1, 2, 3, 12), 2).tensors["y"].shape == (1, 4, 6, 3)


def test_they_are_inverse_and_follow_the_dcr_order():
    x = np.arange(2 * 4 * 6 * 3).reshape(2, 4, 6, 3)
    y = space_to_depth(x, 2)
    # output channel (by * 2 + bx) * C + c holds x[n, 2h + by, 2w + bx, c]
    assert y[1, 1, 2, (1 * 2 + 0) * 3 + 2] == x[1, 3, 4, 2]
    assert np.array_equal(depth_to_space(y, 2), x)


@pytest.mark.parametrize("kind, shape, block", [CASES[0], CASES[4], CASES[1]])
def test_round_trip_through_tflite(kind, shape, block, tmp_path):
    graph = block_graph(kind, shape, block)
    read = read_tflite(write_tflite(graph, tmp_path / "block.tflite"))
    assert [op.kind for op in read.ops] == [kind]
    assert read.ops[0].attrs == BlockAttrs(block)
    assert read.tensors[read.outputs[0]].shape == graph.tensors["y"].shape


@pytest.mark.parametrize("kind, shape, block", CASES)
def test_matches_tflite_micro(kind, shape, block):
    rng = np.random.default_rng(sum(shape) + block)
    x = rng.integers(-128, 128, size=shape, dtype=np.int8)
    x.reshape(-1)[:2] = (-128, 127)
    assert_matches_tflm(block_graph(kind, shape, block), [x])


@pytest.mark.parametrize("kind, shape, block", [(S2D, (1, 6, 4, 5), 2), (D2S, (1, 3, 2, 18), 3)])
def test_generated_c_equals_the_reference(kind, shape, block, tmp_path):
    """ADD (an arena tensor) -> the op -> ADD: the sanitised host build gives the reference's
    bytes."""
    b = Int8Builder("block", seed=3)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
    z = b.op(kind, [s], BlockAttrs(block), quant=q(0.08, 2))
    x3 = b.input("x3", b.shape(z), DType.INT8, q(0.03, -1))
    y = b.op(OpKind.ADD, [z, x3], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.1, 0))
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


@pytest.mark.parametrize("kind, shape, block, message", [
    (S2D, (1, 5, 6, 3), 2, "height 5 and width 6 must be multiples of block_size 2"),
    (D2S, (1, 2, 2, 6), 2, "depth 6 must be a multiple of block_size"),
    (S2D, (4, 6, 3), 2, "expected 4-D NHWC"),
    (D2S, (1, 2, 2, 4), 0, "block_size is 0"),
])
def test_refuses_bad_shapes(kind, shape, block, message):
    x = Tensor("x", shape, DType.INT8, QX)
    op = Op("op", kind, ("x",), ("y",), BlockAttrs(block))
    graph = Graph("bad", {"x": x, "y": Tensor("y", (1, 1, 1, 1), DType.INT8, QX)}, (op,),
                  ("x",), ("y",))
    with pytest.raises(InvalidValueError, match=message) as info:
        validate_model(graph)
    assert str(info.value).startswith(f"graph bad: operator #0 op ({kind.value}): {kind.value}")
    assert "\n" not in str(info.value)


def test_refuses_a_requantisation():
    graph = block_graph(S2D, (1, 4, 4, 2), 2, y_q=QuantParams.per_tensor(0.2, 4))
    with pytest.raises(InvalidValueError, match="moves values unchanged") as info:
        validate_model(graph)
    assert "\n" not in str(info.value)
