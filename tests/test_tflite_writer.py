"""The .tflite writer: read -> write -> read is the identity on every reference model, the written
file runs in TFLite Micro with outputs identical to the original's, and the IR's attributes (pads,
clamps, folded constants) are written back the way TFLite reads them."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_reference_file
from mcuforge.errors import InvalidGraphError, ModelFileError, UnsupportedOpError
from mcuforge.frontends.tflite import graph_from_raw, read_tflite
from mcuforge.frontends.tflite_decode import decode_model
from mcuforge.frontends.tflite_writer import serialize_tflite, write_tflite
from mcuforge.ir import (ConcatAttrs, ConvAttrs, DType, ElementwiseAttrs, FullyConnectedAttrs, Graph,
                         MeanAttrs, NoAttrs, Op, OpKind, PadAttrs, Pads, PoolAttrs, QuantParams,
                         ReshapeAttrs, ResizeAttrs, SoftmaxAttrs, Tensor, TransposeAttrs, validate)
from test_tflite_reader import REFERENCE_MODELS

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")


def _run_tflm(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=16 * 1024 * 1024)
    for index, value in enumerate(inputs):
        interpreter.set_input(value, index)
    interpreter.invoke()
    outputs = []
    index = 0
    while True:
        try:
            outputs.append(np.array(interpreter.get_output(index)))
        except (IndexError, ValueError, RuntimeError):
            return outputs
        index += 1
        if index >= 4:
            return outputs


def _random_inputs(graph: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    values = []
    for name in graph.inputs:
        tensor = graph.tensor(name)
        if tensor.dtype is DType.FLOAT32:
            values.append(rng.standard_normal(tensor.shape).astype(np.float32))
        else:
            info = np.iinfo(tensor.dtype.numpy)
            values.append(rng.integers(info.min, info.max + 1, tensor.shape).astype(tensor.dtype.numpy))
    return values


def _assert_same_graph(a: Graph, b: Graph) -> None:
    assert a.ops == b.ops
    assert a.inputs == b.inputs and a.outputs == b.outputs
    assert a.blocks == b.blocks
    assert list(a.tensors) == list(b.tensors)
    for name, tensor in a.tensors.items():
        other = b.tensors[name]
        assert (tensor.shape, tensor.dtype, tensor.quant, tensor.constant) == \
               (other.shape, other.dtype, other.quant, other.constant), name
        if tensor.data is not None:
            assert other.data.dtype == tensor.data.dtype
            assert other.data.tobytes() == tensor.data.tobytes(), name


@pytest.mark.parametrize("relative", REFERENCE_MODELS)
def test_round_trip_and_tflm_outputs(relative: str, tmp_path) -> None:
    path = require_reference_file(relative)
    graph = read_tflite(path)
    written = write_tflite(graph, tmp_path / "model.tflite")
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]  # no temporary file left
    _assert_same_graph(graph, read_tflite(written))
    original, rewritten = path.read_bytes(), written.read_bytes()
    rng = np.random.default_rng(7)
    for _ in range(2):
        inputs = _random_inputs(graph, rng)
        expected = _run_tflm(original, inputs)
        actual = _run_tflm(rewritten, inputs)
        assert len(expected) == len(actual) == len(graph.outputs)
        for e, a in zip(expected, actual):
            assert e.dtype == a.dtype and np.array_equal(e, a)


@pytest.mark.parametrize("relative", ["models/mcunet/mcunet-320kb-1mb_imagenet.tflite",
                                      "models/tinyengine/vww.tflite"])
def test_round_trip_with_pad_ops_kept(relative: str) -> None:
    """Unfolded PAD ops go back as PAD with a constant paddings tensor, and come back the same."""
    path = require_reference_file(relative)
    graph = read_tflite(path, fold_pad_ops=False)
    data = serialize_tflite(graph)
    _assert_same_graph(graph, graph_from_raw(decode_model(data, "mem"), graph.name, "mem",
                                             fold_pad_ops=False))
    x = _random_inputs(graph, np.random.default_rng(1))
    assert np.array_equal(_run_tflm(data, x)[0], _run_tflm(path.read_bytes(), x)[0])


Q = QuantParams.per_tensor(0.1, 0)


def _t(name: str, shape: tuple[int, ...], dtype: DType = DType.INT8,
       quant: QuantParams | None = Q, data: np.ndarray | None = None) -> Tensor:
    return Tensor(name, shape, dtype, quant, data is not None, data)


def test_layout_ops_are_exact_in_tflm() -> None:
    """MAX_POOL, RESIZE, CONCATENATION, TRANSPOSE, RESHAPE and RELU with one quantisation: TFLite
    Micro's output must equal numpy's exactly, so every option and folded constant was right."""
    tensors = [_t("x", (1, 4, 6, 2)), _t("p", (1, 2, 3, 2)), _t("r", (1, 4, 6, 2)),
               _t("c", (1, 4, 6, 4)), _t("t", (1, 4, 4, 6)), _t("s", (1, 96)), _t("y", (1, 96))]
    ops = [
        Op("pool", OpKind.MAX_POOL_2D, ("x",), ("p",), PoolAttrs((2, 2), (2, 2))),
        Op("resize", OpKind.RESIZE_NEAREST_NEIGHBOR, ("p",), ("r",), ResizeAttrs((4, 6))),
        Op("concat", OpKind.CONCATENATION, ("r", "x"), ("c",), ConcatAttrs(3)),
        Op("transpose", OpKind.TRANSPOSE, ("c",), ("t",), TransposeAttrs((0, 3, 1, 2))),
        Op("reshape", OpKind.RESHAPE, ("t",), ("s",), ReshapeAttrs((1, 96))),
        Op("relu", OpKind.RELU, ("s",), ("y",), NoAttrs()),
    ]
    graph = validate(Graph("layout", {t.name: t for t in tensors}, tuple(ops), ("x",), ("y",)))
    x = np.random.default_rng(3).integers(-128, 128, (1, 4, 6, 2)).astype(np.int8)
    pooled = x.reshape(1, 2, 2, 3, 2, 2).max(axis=(2, 4))
    resized = pooled.repeat(2, axis=1).repeat(2, axis=2)
    expected = np.maximum(np.concatenate([resized, x], axis=3).transpose(0, 3, 1, 2).reshape(1, 96), 0)
    data = serialize_tflite(graph)
    (actual,) = _run_tflm(data, [x])
    assert np.array_equal(actual, expected)
    reread = graph_from_raw(decode_model(data, "mem"), "layout", "mem")
    assert [(op.kind, op.attrs) for op in reread.ops] == [(op.kind, op.attrs) for op in graph.ops]


def _conv_graph(explicit_pad_op: bool) -> Graph:
    """Float in, QUANTIZE, a 3x3 stride-2 conv with PyTorch-style pads (1 on every edge, not SAME
    for an even input), then the other writable kinds, DEQUANTIZE out."""
    rng = np.random.default_rng(11)
    w = rng.integers(-127, 128, (4, 3, 3, 2)).astype(np.int8)
    wq = QuantParams(tuple(float(s) for s in np.linspace(0.01, 0.02, 4)), (0,) * 4, 0)
    b = rng.integers(-500, 500, (4,)).astype(np.int32)
    bq = QuantParams(tuple(0.1 * s for s in wq.scale), (0,) * 4, 0)
    dw = rng.integers(-127, 128, (1, 3, 3, 4)).astype(np.int8)
    dq = QuantParams((0.02,) * 4, (0,) * 4, 3)
    fc = rng.integers(-127, 128, (3, 4)).astype(np.int8)
    tensors = [
        _t("in", (1, 8, 8, 2), DType.FLOAT32, None), _t("x", (1, 8, 8, 2)),
        _t("w", w.shape, quant=wq, data=w), _t("b", b.shape, DType.INT32, bq, b),
        _t("c", (1, 4, 4, 4), quant=QuantParams.per_tensor(0.05, -10)),
        _t("dw", dw.shape, quant=dq, data=dw), _t("d", (1, 4, 4, 4), quant=QuantParams.per_tensor(0.05, -5)),
        _t("a", (1, 4, 4, 4), quant=QuantParams.per_tensor(0.08, 3)),
        _t("m", (1, 4, 4, 4), quant=QuantParams.per_tensor(0.2, 0)),
        _t("h", (1, 4, 4, 4), quant=QuantParams.per_tensor(0.1, -20)),
        _t("l", (1, 4, 4, 4), quant=QuantParams.per_tensor(1 / 256, -128)),
        _t("ap", (1, 2, 2, 4), quant=QuantParams.per_tensor(1 / 256, -128)),
        _t("mean", (1, 1, 1, 4), quant=QuantParams.per_tensor(1 / 256, -128)),
        _t("fw", fc.shape, quant=QuantParams.per_tensor(0.01, 0), data=fc),
        _t("f", (1, 3), quant=QuantParams.per_tensor(0.02, 0)),
        _t("sm", (1, 3), quant=QuantParams.per_tensor(1 / 256, -128)),
        _t("out", (1, 3), DType.FLOAT32, None),
    ]
    conv_pads = Pads(1, 1, 1, 1)
    ops = [Op("quantize", OpKind.QUANTIZE, ("in",), ("x",), NoAttrs())]
    if explicit_pad_op:
        tensors.append(_t("xp", (1, 10, 10, 2)))
        ops.append(Op("pad", OpKind.PAD, ("x",), ("xp",), PadAttrs(((0, 0), (1, 1), (1, 1), (0, 0)))))
        ops.append(Op("conv", OpKind.CONV_2D, ("xp", "w", "b"), ("c",),
                      ConvAttrs((2, 2), Pads(), clamp=(0.0, 6.0))))
    else:
        ops.append(Op("conv", OpKind.CONV_2D, ("x", "w", "b"), ("c",),
                      ConvAttrs((2, 2), conv_pads, clamp=(0.0, 6.0))))
    ops += [
        Op("dwconv", OpKind.DEPTHWISE_CONV_2D, ("c", "dw"), ("d",),
           ConvAttrs((1, 1), Pads.same(4, 4, (3, 3), (1, 1)), clamp=(0.0, float("inf")))),
        Op("add", OpKind.ADD, ("c", "d"), ("a",), ElementwiseAttrs()),
        Op("mul", OpKind.MUL, ("a", "d"), ("m",), ElementwiseAttrs((-1.0, 1.0))),
        Op("hswish", OpKind.HARD_SWISH, ("m",), ("h",), NoAttrs()),
        Op("logistic", OpKind.LOGISTIC, ("h",), ("l",), NoAttrs()),
        Op("avgpool", OpKind.AVERAGE_POOL_2D, ("l",), ("ap",), PoolAttrs((3, 3), (2, 2),
                                                                        Pads.same(4, 4, (3, 3), (2, 2)))),
        Op("mean", OpKind.MEAN, ("ap",), ("mean",), MeanAttrs((1, 2), keep_dims=True)),
        Op("fc", OpKind.FULLY_CONNECTED, ("mean", "fw"), ("f",), FullyConnectedAttrs()),
        Op("softmax", OpKind.SOFTMAX, ("f",), ("sm",), SoftmaxAttrs(1.0)),
        Op("dequantize", OpKind.DEQUANTIZE, ("sm",), ("out",), NoAttrs()),
    ]
    return validate(Graph("kinds", {t.name: t for t in tensors}, tuple(ops), ("in",), ("out",)))


def test_every_writable_kind_round_trips_and_runs(tmp_path) -> None:
    graph = _conv_graph(explicit_pad_op=True)
    reread = read_tflite(write_tflite(graph, tmp_path / "kinds.tflite"), fold_pad_ops=False)
    assert [op.attrs for op in reread.ops] == [op.attrs for op in graph.ops]
    assert [op.kind for op in reread.ops] == [op.kind for op in graph.ops]
    x = np.random.default_rng(5).standard_normal((1, 8, 8, 2)).astype(np.float32)
    (first,) = _run_tflm(serialize_tflite(graph), [x])
    (second,) = _run_tflm((tmp_path / "kinds.tflite").read_bytes(), [x])
    assert first.shape == (1, 3) and np.array_equal(first, second)
    assert abs(float(first.sum()) - 1.0) < 0.02  # a softmax came out


def test_non_same_conv_pads_become_an_explicit_pad_op() -> None:
    implicit, explicit = _conv_graph(explicit_pad_op=False), _conv_graph(explicit_pad_op=True)
    data = serialize_tflite(implicit)
    reread = graph_from_raw(decode_model(data, "mem"), "mem", "mem", fold_pad_ops=False)
    kinds = [op.kind for op in reread.ops]
    assert kinds[:3] == [OpKind.QUANTIZE, OpKind.PAD, OpKind.CONV_2D]
    assert reread.ops[1].attrs == PadAttrs(((0, 0), (1, 1), (1, 1), (0, 0)))
    folded = graph_from_raw(decode_model(data, "mem"), "mem", "mem")
    assert [op.attrs for op in folded.ops] == [op.attrs for op in implicit.ops]
    x = np.random.default_rng(9).standard_normal((1, 8, 8, 2)).astype(np.float32)
    assert np.array_equal(_run_tflm(data, [x])[0], _run_tflm(serialize_tflite(explicit), [x])[0])


def test_clamp_without_fused_activation_is_refused() -> None:
    tensors = [_t("x", (1, 4)), _t("y", (1, 4)), _t("z", (1, 4))]
    ops = [Op("add", OpKind.ADD, ("x", "y"), ("z",), ElementwiseAttrs((0.0, 3.0)))]
    graph = Graph("g", {t.name: t for t in tensors}, tuple(ops), ("x", "y"), ("z",))
    with pytest.raises(UnsupportedOpError, match="clamp"):
        serialize_tflite(graph)


def test_constant_without_data_is_refused(tmp_path) -> None:
    tensors = [_t("x", (1, 4)), Tensor("w", (2, 4), DType.INT8, Q, constant=True), _t("y", (1, 2))]
    ops = [Op("fc", OpKind.FULLY_CONNECTED, ("x", "w"), ("y",), FullyConnectedAttrs())]
    graph = Graph("g", {t.name: t for t in tensors}, tuple(ops), ("x",), ("y",))
    with pytest.raises(InvalidGraphError, match="no data"):
        write_tflite(graph, tmp_path / "g.tflite")
    assert not list(tmp_path.iterdir())


def _fc_graph(weight_dtype: DType) -> Graph:
    rng = np.random.default_rng(13)
    w = rng.integers(-8, 8, (5, 7)).astype(np.int8)  # an odd count: the last byte is half used
    b = rng.integers(-100, 100, (5,)).astype(np.int32)
    tensors = [_t("x", (1, 7)), _t("w", w.shape, weight_dtype, QuantParams.per_tensor(0.05, 0), w),
               _t("b", b.shape, DType.INT32, QuantParams.per_tensor(0.005, 0), b),
               _t("y", (1, 5), quant=QuantParams.per_tensor(0.07, 2))]
    ops = [Op("fc", OpKind.FULLY_CONNECTED, ("x", "w", "b"), ("y",), FullyConnectedAttrs())]
    return validate(Graph("fc", {t.name: t for t in tensors}, tuple(ops), ("x",), ("y",)))


def test_int4_weights_are_packed_as_tflite_reads_them() -> None:
    int4, int8 = _fc_graph(DType.INT4), _fc_graph(DType.INT8)
    data = serialize_tflite(int4)
    assert len(data) < len(serialize_tflite(int8))
    reread = graph_from_raw(decode_model(data, "mem"), "mem", "mem")
    assert reread.tensor("w").dtype is DType.INT4
    assert np.array_equal(reread.tensor("w").data, int4.tensor("w").data)
    x = np.random.default_rng(2).integers(-128, 128, (1, 7)).astype(np.int8)
    assert np.array_equal(_run_tflm(data, [x])[0], _run_tflm(serialize_tflite(int8), [x])[0])


def test_int4_out_of_range_is_refused() -> None:
    graph = _fc_graph(DType.INT4)
    tensors = {**graph.tensors, "w": graph.tensor("w").with_data(np.full((5, 7), 9, dtype=np.int8))}
    with pytest.raises(InvalidGraphError, match="int4"):
        serialize_tflite(graph.with_ops(graph.ops, tensors=tensors))


def test_unwritable_path_is_a_model_file_error(tmp_path) -> None:
    graph = _fc_graph(DType.INT8)
    with pytest.raises(ModelFileError, match="cannot write"):
        write_tflite(graph, tmp_path / "missing-folder" / "m.tflite")
