"""The .tflite reader: every reference model imports and validates, attributes are folded the way
TFLite defines them, blocks follow the residual structure, and bad input gives typed errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from conftest import require_reference_file
from mcuforge.errors import McuforgeError, ModelFileError, UnsupportedOpError
from mcuforge.frontends.tflite import graph_from_raw, read_tflite
from mcuforge.frontends.tflite_decode import RawModel, RawOperator, RawQuant, RawTensor
from mcuforge.ir import DType, OpKind, Pads, validate

REFERENCE_MODELS = [
    "models/mlperf_tiny/vww_96_int8.tflite",
    "models/mlperf_tiny/kws_ref_model.tflite",
    "models/mlperf_tiny/pretrainedResnet_quant.tflite",
    "models/mlperf_tiny/ad01_int8.tflite",
    "models/tflite_micro/person_detect.tflite",
    "models/tflite_micro/hello_world_int8.tflite",
    "models/tflite_micro/micro_speech_quantized.tflite",
    "models/mcunet/mcunet-320kb-1mb_imagenet.tflite",
    "models/tinyengine/vww.tflite",
]

# Input and output shapes and dtypes from reference/README.md.
EXPECTED_IO = {
    "vww_96_int8": ((1, 96, 96, 3), (1, 2), DType.INT8),
    "kws_ref_model": ((1, 49, 10, 1), (1, 12), DType.INT8),
    "pretrainedResnet_quant": ((1, 32, 32, 3), (1, 10), DType.INT8),
    "ad01_int8": ((1, 640), (1, 640), DType.INT8),
    "person_detect": ((1, 96, 96, 1), (1, 2), DType.INT8),
    "hello_world_int8": ((1, 1), (1, 1), DType.INT8),
    "micro_speech_quantized": ((1, 1960), (1, 4), DType.INT8),
    "mcunet-320kb-1mb_imagenet": ((1, 176, 176, 3), (1, 1000), DType.INT8),
    "vww": ((1, 80, 80, 3), (1, 2), DType.FLOAT32),
}


def _schema_op_counts(path) -> Counter:
    """Operator kinds counted straight from the flatbuffer with the `tflite` package."""
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    codes = [max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(model.OperatorCodesLength())]
    subgraph = model.Subgraphs(0)
    return Counter(names[codes[subgraph.Operators(i).OpcodeIndex()]]
                   for i in range(subgraph.OperatorsLength()))


@pytest.mark.parametrize("relative", REFERENCE_MODELS)
def test_reference_model_imports(relative: str) -> None:
    path = require_reference_file(relative)
    graph = read_tflite(path)
    validate(graph)
    in_shape, out_shape, dtype = EXPECTED_IO[path.stem]
    assert graph.tensor(graph.inputs[0]).shape == in_shape
    assert graph.tensor(graph.outputs[0]).shape == out_shape
    assert graph.tensor(graph.inputs[0]).dtype is dtype
    unfolded = read_tflite(path, fold_pad_ops=False)
    assert Counter(op.kind.value for op in unfolded.ops) == _schema_op_counts(path)
    folded_pads = len(unfolded.ops) - len(graph.ops)
    assert Counter(op.kind.value for op in graph.ops) + Counter({"PAD": folded_pads}) == \
        _schema_op_counts(path)
    assert [op.name for op in graph.ops] == [f"{op.kind.value.lower()}_{i}"
                                             for i, op in enumerate(graph.ops)]
    assert graph.metadata["tflite_version"] == 3
    assert graph.metadata["source"] == str(path)
    # Every op is in exactly one block, blocks are contiguous and named in order.
    in_blocks = [name for block in graph.blocks for name in block.ops]
    assert in_blocks == [op.name for op in graph.ops]
    assert [b.name for b in graph.blocks] == [f"block{i}" for i in range(len(graph.blocks))]
    # Folded constants left the graph: no op reads an int32 shape/axes/paddings tensor.
    for op in graph.ops:
        if op.kind in (OpKind.PAD, OpKind.RESHAPE, OpKind.MEAN, OpKind.TRANSPOSE):
            assert len(op.inputs) == 1
    # Constant tensors carry data whose shape is the declared one.
    for tensor in graph.tensors.values():
        if tensor.constant:
            assert tensor.data is not None and tensor.data.shape == tensor.shape


def test_person_detect_attributes() -> None:
    graph = read_tflite(require_reference_file("models/tflite_micro/person_detect.tflite"))
    first = graph.ops[0]
    assert first.kind is OpKind.DEPTHWISE_CONV_2D
    # 96x96 input, 3x3 kernel, stride 2, SAME: total padding (48-1)*2+3-96 = 1 -> bottom/right.
    assert first.attrs.pads == Pads(0, 1, 0, 1)
    assert first.attrs.stride == (2, 2)
    assert first.attrs.depth_multiplier == 8
    assert first.attrs.clamp == (0.0, 6.0)
    weights = graph.tensor(first.inputs[1])
    assert weights.shape == (1, 3, 3, 8) and weights.dtype is DType.INT8
    assert weights.quant.axis == 3 and len(weights.quant.scale) == 8
    # The bias claims quantized_dimension 3 in the file; for a 1-D tensor it is axis 0.
    bias = graph.tensor(first.inputs[2])
    assert bias.dtype is DType.INT32 and bias.quant.axis == 0
    assert graph.blocks[0].kind == "stem" and graph.blocks[-1].kind == "head"
    assert sum(b.kind == "dwsep" for b in graph.blocks) == 13


def test_constant_data_matches_the_buffer() -> None:
    path = require_reference_file("models/mlperf_tiny/kws_ref_model.tflite")
    graph = read_tflite(path)
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    subgraph = model.Subgraphs(0)
    for i in range(subgraph.TensorsLength()):
        t = subgraph.Tensors(i)
        name = t.Name().decode()
        raw = model.Buffers(t.Buffer()).DataAsNumpy()
        if name in graph.tensors and graph.tensor(name).constant:
            assert graph.tensor(name).data.tobytes() == raw.tobytes()


def test_mcunet_pads_reshape_and_residual_blocks() -> None:
    path = require_reference_file("models/mcunet/mcunet-320kb-1mb_imagenet.tflite")
    unfolded = read_tflite(path, fold_pad_ops=False)
    pads = [op for op in unfolded.ops if op.kind is OpKind.PAD]
    assert len(pads) == 54 and all(len(op.attrs.paddings) == 4 for op in pads)
    assert all(op.attrs.paddings[0] == (0, 0) and op.attrs.paddings[3] == (0, 0) for op in pads)
    graph = read_tflite(path)
    assert not any(op.kind is OpKind.PAD for op in graph.ops)  # each one pads a conv's input
    stem = graph.ops[0]
    assert stem.kind is OpKind.CONV_2D and stem.attrs.stride == (2, 2)
    assert stem.attrs.pads == Pads(1, 1, 1, 1)  # PyTorch padding=1; TFLite SAME would be (0,1,0,1)
    reshape = next(op for op in graph.ops if op.kind is OpKind.RESHAPE)
    assert reshape.attrs.new_shape == (1, 1000)
    residual = [b for b in graph.blocks if b.residual]
    assert len(residual) == sum(op.kind is OpKind.ADD for op in graph.ops) == 11
    for block in residual:
        kinds = [graph.op(name).kind for name in block.ops]
        assert kinds[-1] is OpKind.ADD and OpKind.DEPTHWISE_CONV_2D in kinds
        assert block.kind == "mbconv"
    assert not any(t.dtype is DType.INT32 and t.shape == (4, 2) for t in graph.tensors.values())


@pytest.mark.parametrize("file_name,inplace,no_inplace", [
    ("models/tinyengine/vww.tflite", "layer_inplace", "layer_no_inplace"),
    ("models/mcunet/mcunet-320kb-1mb_imagenet.tflite", "layer_inplace", None),
])
def test_folded_pads_give_tinyengine_figures(file_name, inplace, no_inplace) -> None:
    """With PAD folded into the convs (as TinyEngine does), the analytic peaks are TinyEngine's."""
    from mcuforge.analysis.conventions import MemoryConventions, REFERENCE_CONVENTIONS
    from mcuforge.analysis.memory import memory_profile
    from mcuforge.reference import published_numbers
    path = require_reference_file(file_name)
    key = next(k for k in published_numbers()["tinyengine_planner_measured"] if path.name in k)
    figures = published_numbers()["tinyengine_planner_measured"][key]
    graph = read_tflite(path)
    assert memory_profile(graph, REFERENCE_CONVENTIONS).peak_activation_bytes == figures[inplace]
    if no_inplace:
        plain = memory_profile(graph, MemoryConventions(overlap_pointwise=False,
                                                        inplace_depthwise=False))
        assert plain.peak_activation_bytes == figures[no_inplace]


def test_float_io_model_keeps_edge_ops() -> None:
    graph = read_tflite(require_reference_file("models/tinyengine/vww.tflite"))
    assert graph.ops[0].kind is OpKind.QUANTIZE and graph.ops[-1].kind is OpKind.DEQUANTIZE
    transpose = next(op for op in graph.ops if op.kind is OpKind.TRANSPOSE)
    assert sorted(transpose.attrs.perm) == [0, 1, 2, 3]
    means = [op for op in graph.ops if op.kind is OpKind.MEAN]
    assert len(means) == 2 and all(len(op.attrs.axes) >= 1 for op in means)
    assert graph.tensor(graph.ops[0].outputs[0]).dtype is DType.INT8


def test_resnet_residual_blocks_with_projection_shortcut() -> None:
    graph = read_tflite(require_reference_file("models/mlperf_tiny/pretrainedResnet_quant.tflite"))
    kinds = [(b.kind, b.residual, len(b.ops)) for b in graph.blocks]
    assert kinds == [("stem", False, 1), ("residual", True, 3), ("residual", True, 4),
                     ("residual", True, 4), ("head", False, 4)]


def test_micro_speech_reshape_from_options() -> None:
    graph = read_tflite(require_reference_file("models/tflite_micro/micro_speech_quantized.tflite"))
    reshape = graph.ops[0]
    assert reshape.kind is OpKind.RESHAPE
    assert reshape.attrs.new_shape == (1, 49, 40, 1)  # the file says (-1, 49, 40, 1)


# --- hand-made decoded models: mapping rules and errors ---------------------------------------

def _int8(index: int, name: str, shape: tuple[int, ...], buffer: int = 0,
          zero_point: int = -3) -> RawTensor:
    return RawTensor(index, name, shape, TensorType.INT8, buffer,
                     RawQuant((0.5,), (zero_point,), 0))


def _int32(index: int, name: str, shape: tuple[int, ...], buffer: int) -> RawTensor:
    return RawTensor(index, name, shape, TensorType.INT32, buffer, None)


def _model(tensors, operators, buffers, inputs=(0,), outputs=None) -> RawModel:
    outputs = outputs if outputs is not None else (operators[-1].outputs[0],)
    return RawModel(3, "test", 1, "main", tuple(buffers), tuple(tensors), tuple(operators),
                    tuple(inputs), tuple(outputs))


def _op(index: int, kind: str, inputs, outputs, options_type=BuiltinOptions.NONE, **options):
    return RawOperator(index, getattr(BuiltinOperator, kind), None, 1, tuple(inputs),
                       tuple(outputs), options_type, options)


@pytest.mark.parametrize("size,kernel,stride,expected", [
    (7, 3, 2, Pads(1, 1, 1, 1)),
    (8, 3, 2, Pads(0, 1, 0, 1)),
    (8, 5, 1, Pads(2, 2, 2, 2)),
    (6, 2, 2, Pads(0, 0, 0, 0)),
])
def test_same_padding_and_fused_activation(size, kernel, stride, expected) -> None:
    weights = np.arange(2 * kernel * kernel * 2, dtype=np.int8).reshape(2, kernel, kernel, 2)
    out = -(-size // stride)
    tensors = [_int8(0, "x", (1, size, size, 2)), _int8(1, "w", weights.shape, 1, zero_point=0),
               _int8(2, "y", (1, out, out, 2))]
    conv = _op(0, "CONV_2D", (0, 1, -1), (2,), BuiltinOptions.Conv2DOptions, Padding=0,
               StrideH=stride, StrideW=stride, DilationHFactor=1, DilationWFactor=1,
               FusedActivationFunction=2)
    graph = graph_from_raw(_model(tensors, [conv], [b"", weights.tobytes()]), "t", "t.tflite")
    op = graph.ops[0]
    assert op.attrs.pads == expected
    assert op.attrs.clamp == (-1.0, 1.0)
    assert op.inputs == ("x", "w")  # the absent bias (-1) is dropped
    assert np.array_equal(graph.tensor("w").data, weights)
    assert graph.tensor("x").quant.scale == (0.5,) and graph.tensor("x").quant.zero_point == (-3,)


def test_reshape_shape_tensor_with_minus_one_and_duplicate_names() -> None:
    shape = np.array([-1, 6], dtype=np.int32)
    tensors = [_int8(0, "x", (1, 2, 3, 2)), _int32(1, "shape", (2,), 1), _int8(2, "x", (2, 6)),
               _int8(3, "y", (2, 6))]
    ops = [_op(0, "RESHAPE", (0, 1), (2,)), _op(1, "RELU", (2,), (3,))]
    graph = graph_from_raw(_model(tensors, ops, [b"", shape.tobytes()]), "t", "t.tflite")
    assert graph.ops[0].attrs.new_shape == (2, 6)
    assert graph.ops[0].inputs == ("x",) and graph.ops[0].outputs == ("x_1",)
    assert "shape" not in graph.tensors
    assert graph.ops[1].inputs == ("x_1",)


def test_unsupported_op_names_kind_index_and_tensor() -> None:
    tensors = [_int8(0, "x", (4,)), _int8(1, "r", (4,)), _int32(2, "idx", (2,), 1),
               _int8(3, "gathered", (2,))]
    ops = [_op(0, "RELU", (0,), (1,)), _op(1, "GATHER_ND", (1, 2), (3,))]
    model = _model(tensors, ops, [b"", np.zeros(2, np.int32).tobytes()])
    with pytest.raises(UnsupportedOpError, match=r"unsupported op GATHER_ND at operator #1 "
                                                 r"\(tensor gathered\)"):
        graph_from_raw(model, "t", "t.tflite")


def test_non_constant_paddings_are_unsupported() -> None:
    tensors = [_int8(0, "x", (1, 2, 2, 1)), _int32(1, "p", (4, 2), 0), _int8(2, "y", (1, 4, 4, 1))]
    model = _model(tensors, [_op(0, "PAD", (0, 1), (2,))], [b""], inputs=(0, 1))
    with pytest.raises(UnsupportedOpError, match="non-constant paddings"):
        graph_from_raw(model, "t", "t.tflite")


def test_buffer_size_must_match_shape() -> None:
    tensors = [_int8(0, "x", (1, 4)), _int8(1, "w", (3, 4), 1), _int8(2, "y", (1, 3))]
    fc = _op(0, "FULLY_CONNECTED", (0, 1, -1), (2,), BuiltinOptions.FullyConnectedOptions)
    model = _model(tensors, [fc], [b"", bytes(11)])
    with pytest.raises(ModelFileError, match="needs 12 bytes"):
        graph_from_raw(model, "t", "t.tflite")


def test_zero_stride_is_a_file_error() -> None:
    tensors = [_int8(0, "x", (1, 4, 4, 1)), _int8(1, "y", (1, 4, 4, 1))]
    pool = _op(0, "MAX_POOL_2D", (0,), (1,), BuiltinOptions.Pool2DOptions, Padding=0, StrideH=0,
               StrideW=1, FilterHeight=2, FilterWidth=2)
    with pytest.raises(ModelFileError, match="at least 1"):
        graph_from_raw(_model(tensors, [pool], [b""]), "t", "t.tflite")


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        read_tflite(tmp_path / "nope.tflite")


@pytest.mark.parametrize("content,message", [
    (b"", "not a .tflite file"),
    (b"hello world, not a model", "file identifier"),
    (b"\xff\xff\xff\x7fTFL3" + bytes(8), "truncated"),
])
def test_not_a_model(tmp_path, content, message) -> None:
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        read_tflite(path)


def test_truncated_reference_model(tmp_path) -> None:
    data = require_reference_file("models/tflite_micro/person_detect.tflite").read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(McuforgeError, match="cut.tflite"):
        read_tflite(path)

