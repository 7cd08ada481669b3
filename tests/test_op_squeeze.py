"""SQUEEZE, added as one op module: registered with an ALIAS overlap, round-trips through the
.tflite writer and reader (squeeze_dims in SqueezeOptions), runs bit-exact with the TFLite Micro pip
interpreter with listed, negative and empty squeeze_dims, its generated C (sanitised host build)
equals the reference runtime, and a bad dimension is refused at import in one line."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.codegen.emit import generate
from mcuforge.codegen.targets import TARGETS
from mcuforge.analysis.overlap import OverlapKind, OverlapOptions, find_overlap
from mcuforge.errors import InvalidValueError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, ElementwiseAttrs, Graph, Op, OpKind, QuantParams, Tensor
from mcuforge.ops import OverlapRule, implemented_kinds, op_def
from mcuforge.ops.squeeze import SqueezeAttrs
from mcuforge.ops.validation import validate_model

QX = QuantParams.per_tensor(0.1, 4)
CASES = [((1, 1, 1, 10), (1, 2)), ((1, 1, 1, 10), ()), ((2, 1, 3), (-2,)), ((1, 5, 1), (0,)),
         ((4, 1), (1,)), ((1, 3, 1, 1, 2), (-3, 3))]

# The sanitised host build, and the Cortex-M7 build under QEMU where the Arm toolchain is installed.
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}


def squeeze_graph(shape, dims) -> Graph:
    """x -> SQUEEZE(dims) -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, QX)
    op = Op("squeeze", OpKind.SQUEEZE, ("x",), ("y",), SqueezeAttrs(tuple(dims)))
    y = Tensor("y", op_def(OpKind.SQUEEZE).output_shape(op, [x.shape]), DType.INT8, QX)
    return Graph("squeeze", {"x": x, "y": y}, (op,), ("x",), ("y",))


def test_squeeze_is_registered_with_its_rules():
    assert OpKind.SQUEEZE in implemented_kinds()
    definition = op_def(OpKind.SQUEEZE)
    assert definition.overlap is OverlapRule.ALIAS
    assert definition.has_reference and definition.has_lowering and not definition.patchable
    assert squeeze_graph((1, 1, 1, 10), ()).tensors["y"].shape == (10,)
    graph = squeeze_graph((1, 1, 1, 10), (1, 2))
    assert graph.tensors["y"].shape == (1, 10)
    overlap = find_overlap(graph, graph.ops[0], {"x"}, OverlapOptions(False, False, False))
    assert overlap is not None and overlap.kind is OverlapKind.ALIAS


@pytest.mark.parametrize("shape, dims", [((1, 1, 1, 10), (1, 2)), ((2, 1, 3), (-2,)),
                                         ((1, 1, 1, 10), ())])
def test_squeeze_round_trips_through_tflite(shape, dims, tmp_path):
    graph = squeeze_graph(shape, dims)
    read = read_tflite(write_tflite(graph, tmp_path / "squeeze.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.SQUEEZE]
    assert read.ops[0].attrs == SqueezeAttrs(tuple(dims))
    assert read.tensors[read.outputs[0]].shape == graph.tensors["y"].shape


@pytest.mark.parametrize("shape, dims", CASES)
def test_squeeze_matches_tflite_micro(shape, dims):
    rng = np.random.default_rng(len(dims) + len(shape))
    x = rng.integers(-128, 128, size=shape, dtype=np.int8)
    x.reshape(-1)[:2] = (-128, 127)
    y = assert_matches_tflm(squeeze_graph(shape, dims), [x])
    assert np.array_equal(y.reshape(-1), x.reshape(-1))


def test_generated_c_equals_the_reference(tmp_path):
    """ADD (an arena tensor) -> SQUEEZE -> ADD: the sanitised host build gives the reference
    runtime's bytes."""
    b = Int8Builder("squeeze", seed=3)
    x = b.x((1, 1, 3, 8), 0.05, -3)
    x2 = b.input("x2", (1, 1, 3, 8), DType.INT8, q(0.04, 7))
    x3 = b.input("x3", (3, 8), DType.INT8, q(0.03, -1))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
    z = b.op(OpKind.SQUEEZE, [s], SqueezeAttrs((0, 1)), quant=q(0.08, 2))
    y = b.op(OpKind.ADD, [z, x3], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.1, 0))
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


@pytest.mark.parametrize("dims, message", [((1,), "has size 3, expected 1"),
                                           ((4,), "out of range"), ((-5,), "out of range")])
def test_squeeze_refuses_bad_dimensions(dims, message):
    x = Tensor("x", (1, 3, 1, 2), DType.INT8, QX)
    op = Op("squeeze", OpKind.SQUEEZE, ("x",), ("y",), SqueezeAttrs(dims))
    graph = Graph("bad", {"x": x, "y": Tensor("y", (3, 2), DType.INT8, QX)}, (op,), ("x",), ("y",))
    with pytest.raises(InvalidValueError, match=message) as info:
        validate_model(graph)
    assert str(info.value).startswith("graph bad: operator #0 squeeze (SQUEEZE): SQUEEZE dimension")
    assert "\n" not in str(info.value)


def test_generated_c_copies_when_the_input_stays_alive(tmp_path):
    """The SQUEEZE input is read again after it (no alias: a byte copy); both outputs match."""
    b = Int8Builder("squeeze_copy", seed=4)
    x = b.x((1, 3, 1, 8), 0.05, -3)
    x2 = b.input("x2", (1, 3, 1, 8), DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
    z = b.op(OpKind.SQUEEZE, [s], SqueezeAttrs(()), quant=q(0.08, 2))
    y = b.op(OpKind.ADD, [s, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.1, 0))
    graph = b.finish([z, y])
    model = generate(graph, TARGETS["host"])
    assert [layer.note for layer in model.layers if layer.kind == "SQUEEZE"] == ["copy"]
    assert differential_run(graph, tmp_path, qemu=HAVE_ARM) == NO_MISMATCH
