"""PACK, added as one op module: registered, round-trips through the .tflite writer and reader
(PackOptions), runs bit-exact with the TFLite Micro pip interpreter for 1 to 4 inputs on every axis
(negative ones included), its generated C (sanitised host build) equals the reference runtime, and
an axis out of range, a wrong values_count or an input quantised differently from the output is
refused at import in one line."""

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
from mcuforge.ops.pack import PackAttrs
from mcuforge.ops.validation import validate_model

QX = QuantParams.per_tensor(0.03, 9)
CASES = [((5,), 2, 0), ((5,), 3, 1), ((5,), 3, -1), ((2, 3), 4, 1), ((2, 3), 2, -3),
         ((1, 4, 3), 3, 2), ((2, 2, 3), 1, 3), ((2, 3, 2), 2, -2)]

# The sanitised host build, and the Cortex-M7 build under QEMU where the Arm toolchain is installed.
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}


def pack_graph(shape, n: int, axis: int, quants=None) -> Graph:
    """x0 .. x{n-1} -> PACK(axis) -> y."""
    quants = quants or [QX] * n
    xs = {f"x{i}": Tensor(f"x{i}", tuple(shape), DType.INT8, quants[i]) for i in range(n)}
    op = Op("pack", OpKind.PACK, tuple(xs), ("y",), PackAttrs(n, axis))
    y = Tensor("y", op_def(OpKind.PACK).output_shape(op, [shape] * n), DType.INT8, QX)
    return Graph("pack", {**xs, "y": y}, (op,), tuple(xs), ("y",))


def test_pack_is_registered_with_its_rules():
    assert OpKind.PACK in implemented_kinds()
    definition = op_def(OpKind.PACK)
    assert definition.has_reference and definition.has_lowering and not definition.patchable
    assert pack_graph((2, 3), 4, 1).tensors["y"].shape == (2, 4, 3)
    assert pack_graph((2, 3), 2, -1).tensors["y"].shape == (2, 3, 2)


@pytest.mark.parametrize("shape, n, axis", [CASES[2], CASES[3]])
def test_pack_round_trips_through_tflite(shape, n, axis, tmp_path):
    graph = pack_graph(shape, n, axis)
    read = read_tflite(write_tflite(graph, tmp_path / "pack.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.PACK]
    assert read.ops[0].attrs == PackAttrs(n, axis)
    assert len(read.ops[0].inputs) == n
    assert read.tensors[read.outputs[0]].shape == graph.tensors["y"].shape


@pytest.mark.parametrize("shape, n, axis", CASES)
def test_pack_matches_tflite_micro(shape, n, axis):
    rng = np.random.default_rng(n * 10 + axis)
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(n)]
    xs[0].reshape(-1)[:2] = (-128, 127)
    y = assert_matches_tflm(pack_graph(shape, n, axis), xs)
    assert np.array_equal(y, np.stack(xs, axis=axis))


@pytest.mark.parametrize("axis", [0, 2, -1])
def test_generated_c_equals_the_reference(axis, tmp_path):
    """Two ADDs (arena tensors) and a graph input -> PACK: the sanitised host build gives the
    reference runtime's bytes."""
    b = Int8Builder("pack", seed=5)
    shape = (3, 4, 5)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    x3 = b.input("x3", shape, DType.INT8, q(0.08, 2))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
    t = b.op(OpKind.ADD, [x2, x], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
    y = b.op(OpKind.PACK, [s, x3, t], PackAttrs(3, axis), quant=q(0.08, 2))
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


def _with(graph: Graph, op: Op) -> Graph:
    return Graph(graph.name, graph.tensors, (op,), graph.inputs, graph.outputs)


@pytest.mark.parametrize("attrs, message", [
    (PackAttrs(2, 3), "PACK axis 3 out of range \\[-3, 2\\]"),
    (PackAttrs(2, -4), "PACK axis -4 out of range"),
    (PackAttrs(3, 0), "values_count 3 but 2 inputs"),
])
def test_pack_refuses_bad_attributes(attrs, message):
    graph = pack_graph((2, 3), 2, 0)
    bad = _with(graph, Op("pack", OpKind.PACK, ("x0", "x1"), ("y",), attrs))
    with pytest.raises(InvalidValueError, match=message) as info:
        validate_model(bad)
    assert str(info.value).startswith("graph pack: operator #0 pack (PACK): ")
    assert "\n" not in str(info.value)


def test_pack_refuses_inputs_quantised_unlike_the_output():
    graph = pack_graph((2, 3), 2, 0, quants=[QX, QuantParams.per_tensor(0.03, 8)])
    with pytest.raises(InvalidValueError, match="input tensor x1 has scale 0.03 and zero point 8"):
        validate_model(graph)
