"""SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND (ops/space_batch.py): registered, round-trip through the
.tflite writer and reader (block shape, paddings, crops), bit-exact with the TFLite Micro pip
interpreter on 3-D and 4-D tensors with and without padding or crops (except the padding, which
TFLite Micro leaves indeterminate), inverse of each other, the
generated C (sanitised host build) equal to the reference runtime, and bad blocks, paddings, crops
or quantisations refused at import in one line."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import serialize_tflite, write_tflite
from mcuforge.ir import DType, ElementwiseAttrs, Graph, Op, OpKind, QuantParams, Tensor
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.space_batch import SpaceBatchAttrs, batch_to_space, space_to_batch
from mcuforge.ops.validation import validate_model
from mcuforge.runtime.reference import Interpreter

S2B, B2S = OpKind.SPACE_TO_BATCH_ND, OpKind.BATCH_TO_SPACE_ND
QX = QuantParams.per_tensor(0.05, -9)
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}
CASES = [
    (S2B, (1, 4, 6, 3), (2, 2), ((0, 0), (0, 0))),
    (S2B, (1, 5, 7, 2), (2, 3), ((1, 0), (1, 1))),
    (S2B, (2, 4, 4, 3), (2, 2), ((2, 2), (2, 2))),      # a dilation-2 'same' conv's padding
    (S2B, (1, 9, 4), (3,), ((1, 2),)),                  # 3-D
    (B2S, (4, 2, 3, 3), (2, 2), ((0, 0), (0, 0))),
    (B2S, (6, 3, 3, 2), (2, 3), ((1, 0), (1, 1))),
    (B2S, (8, 4, 4, 3), (2, 2), ((2, 2), (1, 3))),
    (B2S, (3, 4, 4), (3,), ((1, 2),)),                  # 3-D
]


def block_graph(kind, shape, block, pads, y_q=QX) -> Graph:
    """x -> kind(block, pads) -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, QX)
    op = Op(kind.value.lower(), kind, ("x",), ("y",), SpaceBatchAttrs(block, pads))
    y = Tensor("y", op_def(kind).output_shape(op, [x.shape]), DType.INT8, y_q)
    return Graph("space_batch", {"x": x, "y": y}, (op,), ("x",), ("y",))


def test_registered_with_their_shapes():
    assert {S2B, B2S} <= set(implemented_kinds())
    for kind in (S2B, B2S):
        definition = op_def(kind)
        assert definition.has_reference and definition.has_lowering and not definition.patchable
    assert block_graph(*CASES[1]).tensors["y"].shape == (6, 3, 3, 2)
    assert block_graph(*CASES[5]).tensors["y"].shape == (1, 5, 7, 2)
    assert block_graph(*CASES[3]).tensors["y"].shape == (3, 4, 4)


def test_they_are_inverse():
    x = np.arange(2 * 5 * 7 * 2).reshape(2, 5, 7, 2)
    attrs = SpaceBatchAttrs((2, 3), ((1, 0), (1, 1)))
    y = space_to_batch(x, attrs, -1)
    assert y.shape == (12, 3, 3, 2) and y[0, 0, 0, 0] == -1      # padding
    assert y[(1 * 3 + 2) * 2 + 1, 1, 1, 1] == x[1, 1 * 2 + 1 - 1, 1 * 3 + 2 - 1, 1]
    assert np.array_equal(batch_to_space(y, attrs), x)


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[6]])
def test_round_trip_through_tflite(case, tmp_path):
    graph = block_graph(*case)
    read = read_tflite(write_tflite(graph, tmp_path / "space_batch.tflite"))
    assert [op.kind for op in read.ops] == [case[0]]
    assert read.ops[0].attrs == SpaceBatchAttrs(case[2], case[3])
    assert read.tensors[read.outputs[0]].shape == graph.tensors["y"].shape


def _tflm(graph: Graph, x: np.ndarray) -> np.ndarray:
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    model = serialize_tflite(graph)
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1024 * 1024)
    interpreter.set_input(x, 0)
    interpreter.invoke()
    return interpreter.get_output(0).copy()


@pytest.mark.parametrize("kind, shape, block, pads", CASES)
def test_matches_tflite_micro(kind, shape, block, pads):
    """Bit-exact; for a padding SPACE_TO_BATCH_ND, on every value but the padding, which TFLite
    Micro leaves indeterminate (and ours holds the zero point)."""
    rng = np.random.default_rng(sum(shape) + sum(block))
    x = rng.integers(-128, 128, size=shape, dtype=np.int8)
    x.reshape(-1)[:2] = (-128, 127)
    graph = block_graph(kind, shape, block, pads)
    if kind is B2S or all(p == (0, 0) for p in pads):
        assert_matches_tflm(graph, [x])
        return
    ours = Interpreter(graph).invoke([x])[0]
    data = space_to_batch(np.ones(shape, np.int8), SpaceBatchAttrs(block, pads), 0) == 1
    assert np.count_nonzero(~data) > 0 and np.all(ours[~data] == QX.zero_point[0])
    assert np.array_equal(ours[data], _tflm(graph, x)[data])


@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[3], CASES[5], CASES[6], CASES[7]])
def test_generated_c_equals_the_reference(case, tmp_path):
    """ADD (an arena tensor) -> the op -> ADD: the sanitised host build gives the reference's
    bytes (the padding is the zero point)."""
    kind, shape, block, pads = case
    b = Int8Builder("space_batch", seed=4)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 21))
    z = b.op(kind, [s], SpaceBatchAttrs(block, pads), quant=q(0.08, 21))
    x3 = b.input("x3", b.shape(z), DType.INT8, q(0.03, -1))
    y = b.op(OpKind.ADD, [z, x3], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.1, 0))
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


@pytest.mark.parametrize("kind, shape, block, pads, message", [
    (S2B, (1, 5, 6, 3), (2, 2), ((0, 0), (0, 0)), r"padded spatial size 5 x 6 is not a multiple"),
    (B2S, (6, 2, 2, 3), (2, 2), ((0, 0), (0, 0)), r"input batch 6 is not a multiple of the block"),
    (B2S, (4, 2, 2, 3), (2, 2), ((2, 2), (0, 0)), r"leave 0 x 4 pixels"),
    (S2B, (1, 4, 4, 3), (2,), ((0, 0),), r"must have 2 entries for a 4-D input"),
    (S2B, (1, 4, 4, 3), (2, 0), ((0, 0), (0, 0)), r"each must be at least 1"),
    (S2B, (1, 4, 4, 3), (2, 2), ((-2, 2), (0, 0)), r"must be at least 0"),
])
def test_refuses_bad_blocks(kind, shape, block, pads, message):
    x = Tensor("x", shape, DType.INT8, QX)
    op = Op("op", kind, ("x",), ("y",), SpaceBatchAttrs(block, pads))
    graph = Graph("bad", {"x": x, "y": Tensor("y", (1, 1, 1, 1), DType.INT8, QX)}, (op,),
                  ("x",), ("y",))
    with pytest.raises(InvalidValueError, match=message) as info:
        validate_model(graph)
    assert str(info.value).startswith(f"graph bad: operator #0 op ({kind.value}): {kind.value}")
    assert "\n" not in str(info.value)


def test_pads_with_the_output_zero_point():
    x = np.full((1, 3, 3, 1), 100, np.int8)
    y = Interpreter(block_graph(S2B, x.shape, (2, 2), ((1, 0), (1, 0)))).invoke([x])[0]
    assert np.count_nonzero(y == -9) == 7 and np.count_nonzero(y == 100) == 9


def test_refuses_a_requantisation():
    graph = block_graph(*CASES[0], y_q=QuantParams.per_tensor(0.05, 0))
    with pytest.raises(InvalidValueError, match="moves values unchanged") as info:
        validate_model(graph)
    assert "\n" not in str(info.value)
