"""IR: frozen dataclasses, shape rules, validation errors, topological order."""

from __future__ import annotations

import dataclasses

import pytest

from mcuforge.errors import InvalidGraphError
from mcuforge.ir import (ConvAttrs, DType, Graph, Op, OpKind, Pads, Tensor, topological_order,
                         validate)
from mcuforge.ir.builder import GraphBuilder


def small_graph() -> Graph:
    b = GraphBuilder("small")
    x = b.input("x", (1, 8, 8, 3), DType.INT8)
    w = b.constant("w", (4, 3, 3, 3), DType.INT8)
    bias = b.constant("bias", (4,), DType.INT32)
    y = b.op(OpKind.CONV_2D, [x, w, bias], ConvAttrs((2, 2), Pads.same(8, 8, (3, 3), (2, 2))), name="conv")
    z = b.op(OpKind.RELU, [y], name="relu")
    return b.finish([z])


def test_builder_infers_shapes_and_validates():
    graph = small_graph()
    assert graph.tensors["conv:out"].shape == (1, 4, 4, 4)
    assert [op.name for op in graph.ops] == ["conv", "relu"]


def test_ir_is_frozen():
    graph = small_graph()
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.ops[0].name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        graph.tensors["x"] = graph.tensors["x"]  # type: ignore[index]


def test_wrong_attrs_type_is_rejected():
    with pytest.raises(TypeError):
        Op("bad", OpKind.CONV_2D, ("x",), ("y",))


def test_validator_catches_shape_mismatch():
    graph = small_graph()
    tensors = dict(graph.tensors)
    tensors["conv:out"] = dataclasses.replace(tensors["conv:out"], shape=(1, 5, 5, 4))
    with pytest.raises(InvalidGraphError, match="conv.*shape"):
        validate(dataclasses.replace(graph, tensors=tensors))


def test_validator_catches_unknown_name_and_wrong_order():
    graph = small_graph()
    bad = graph.with_ops([Op("conv", OpKind.CONV_2D, ("x", "w", "nope"), ("conv:out",), graph.ops[0].attrs)])
    with pytest.raises(InvalidGraphError, match="'nope' does not exist"):
        validate(bad)
    swapped = graph.with_ops(reversed(graph.ops))
    with pytest.raises(InvalidGraphError, match="before any op writes it"):
        validate(swapped)
    assert [op.name for op in topological_order(swapped).ops] == ["conv", "relu"]


def test_topological_order_detects_cycle():
    graph = small_graph()
    t = dict(graph.tensors)
    loop = graph.with_ops([Op("a", OpKind.RELU, ("b:out",), ("a:out",)), Op("b", OpKind.RELU, ("a:out",), ("b:out",))],
                          tensors={**t, "a:out": Tensor("a:out", (1,)), "b:out": Tensor("b:out", (1,))})
    with pytest.raises(InvalidGraphError, match="cycle"):
        topological_order(loop)


def test_same_padding_matches_tensorflow():
    assert Pads.same(224, 224, (3, 3), (2, 2)) == Pads(0, 1, 0, 1)
    assert Pads.same(7, 7, (3, 3), (1, 1)) == Pads(1, 1, 1, 1)
    assert Pads.same(5, 5, (5, 5), (2, 2)) == Pads(2, 2, 2, 2)


def test_int4_tensor_bytes_are_packed():
    assert Tensor("w", (3, 3), DType.INT4, constant=True).nbytes == 5
    assert Tensor("w", (3, 3), DType.INT8, constant=True).nbytes == 9
