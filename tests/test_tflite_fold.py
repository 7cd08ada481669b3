"""Folding PAD ops into the convolution that reads them: when it applies, when it must not, and
that the folded graph computes exactly what the unfolded one does (in TFLite Micro)."""

from __future__ import annotations

import numpy as np
import pytest

from mcuforge.frontends.tflite_fold import fold_pads
from mcuforge.frontends.tflite_writer import serialize_tflite
from mcuforge.ir import (Block, ConvAttrs, DType, Graph, NoAttrs, Op, OpKind, PadAttrs, Pads,
                         QuantParams, Tensor, validate)

Q = QuantParams.per_tensor(0.05, 3)
SPATIAL = ((0, 0), (1, 2), (0, 1), (0, 0))


def _graph(paddings=SPATIAL, pad_quant=Q, second_reader=False) -> Graph:
    n, h, w_, c = 1, 6, 6, 4
    padded = tuple(d + lo + hi for d, (lo, hi) in zip((n, h, w_, c), paddings))
    w = np.random.default_rng(1).integers(-127, 128, (1, 3, 3, padded[3])).astype(np.int8)
    out_h, out_w = padded[1] - 2, padded[2] - 2
    tensors = [
        Tensor("x", (n, h, w_, c), DType.INT8, Q),
        Tensor("xp", padded, DType.INT8, pad_quant),
        Tensor("w", w.shape, DType.INT8, QuantParams((0.02,) * padded[3], (0,) * padded[3], 3), True, w),
        Tensor("y", (1, out_h, out_w, padded[3]), DType.INT8, QuantParams.per_tensor(0.1, -2)),
    ]
    ops = [Op("pad", OpKind.PAD, ("x",), ("xp",), PadAttrs(paddings)),
           Op("dw", OpKind.DEPTHWISE_CONV_2D, ("xp", "w"), ("y",), ConvAttrs(clamp=(0.0, 6.0)))]
    outputs = ("y",)
    if second_reader:
        tensors.append(Tensor("r", padded, DType.INT8, pad_quant))
        ops.append(Op("relu", OpKind.RELU, ("xp",), ("r",), NoAttrs()))
        outputs = ("y", "r")
    blocks = (Block("block0", tuple(op.name for op in ops)),)
    return validate(Graph("g", {t.name: t for t in tensors}, tuple(ops), ("x",), outputs,
                          blocks=blocks))


def test_spatial_pad_is_folded_into_the_conv() -> None:
    graph = _graph()
    folded = validate(fold_pads(graph))
    assert [op.kind for op in folded.ops] == [OpKind.DEPTHWISE_CONV_2D]
    assert folded.ops[0].inputs[0] == "x" and folded.ops[0].attrs.pads == Pads(1, 2, 0, 1)
    assert "xp" not in folded.tensors
    assert folded.blocks == (Block("block0", ("dw",)),)


def test_folded_graph_computes_the_same_in_tflm() -> None:
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    graph = _graph()
    x = np.random.default_rng(4).integers(-128, 128, (1, 6, 6, 4)).astype(np.int8)
    outputs = []
    for candidate in (graph, fold_pads(graph)):
        model = serialize_tflite(candidate)
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
        interpreter.set_input(x, 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0)))
    assert np.array_equal(outputs[0], outputs[1])


@pytest.mark.parametrize("case", ["channel padding", "other quantisation", "second reader"])
def test_pad_is_kept_when_folding_would_change_the_result(case: str) -> None:
    if case == "channel padding":
        graph = _graph(paddings=((0, 0), (1, 1), (1, 1), (0, 4)))
    elif case == "other quantisation":
        graph = _graph(pad_quant=QuantParams.per_tensor(0.05, 0))
    else:
        graph = _graph(second_reader=True)
    assert fold_pads(graph) is graph
