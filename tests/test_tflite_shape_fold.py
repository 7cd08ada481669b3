"""Shape computations known at import are folded away: a hand-built .tflite with Keras' dynamic
batch chain (SHAPE -> STRIDED_SLICE -> PACK feeding a RESHAPE, then SOFTMAX) reads as RESHAPE ->
SOFTMAX, runs bit-exact with TFLite Micro running the original file (chain included), and writes
back and reads again unchanged; a SHAPE whose value is a graph output is not folded (and refused)."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest
import tflite
from tflite.BuiltinOperator import BuiltinOperator as B
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from mcuforge.errors import UnsupportedOpError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import OpKind
from mcuforge.runtime.reference import Interpreter

# name, shape, type, (scale, zero point) or None, constant int32 values or None
TENSORS = [
    ("x", (1, 4, 4, 3), TensorType.INT8, (0.05, -3), None),
    ("shape_x", (4,), TensorType.INT32, None, None),
    ("begin", (1,), TensorType.INT32, None, [0]),
    ("end", (1,), TensorType.INT32, None, [1]),
    ("strides", (1,), TensorType.INT32, None, [1]),
    ("batch", (), TensorType.INT32, None, None),
    ("minus_one", (), TensorType.INT32, None, [-1]),
    ("packed", (2,), TensorType.INT32, None, None),
    ("flat", (1, 48), TensorType.INT8, (0.05, -3), None),
    ("y", (1, 48), TensorType.INT8, (1 / 256, -128), None),
]
T = {name: i for i, (name, *_rest) in enumerate(TENSORS)}


def _vector(builder, values, dtype="<i4"):
    return builder.CreateNumpyVector(np.asarray(values, dtype=dtype).reshape(-1))


def _options(builder, code):
    if code == B.SHAPE:
        tflite.ShapeOptionsStart(builder)
        tflite.ShapeOptionsAddOutType(builder, TensorType.INT32)
        return BuiltinOptions.ShapeOptions, tflite.ShapeOptionsEnd(builder)
    if code == B.STRIDED_SLICE:
        tflite.StridedSliceOptionsStart(builder)
        tflite.StridedSliceOptionsAddShrinkAxisMask(builder, 1)
        return BuiltinOptions.StridedSliceOptions, tflite.StridedSliceOptionsEnd(builder)
    if code == B.PACK:
        tflite.PackOptionsStart(builder)
        tflite.PackOptionsAddValuesCount(builder, 2)
        return BuiltinOptions.PackOptions, tflite.PackOptionsEnd(builder)
    if code == B.RESHAPE:
        tflite.ReshapeOptionsStart(builder)
        return BuiltinOptions.ReshapeOptions, tflite.ReshapeOptionsEnd(builder)
    tflite.SoftmaxOptionsStart(builder)
    tflite.SoftmaxOptionsAddBeta(builder, 1.0)
    return BuiltinOptions.SoftmaxOptions, tflite.SoftmaxOptionsEnd(builder)


def chain_model(outputs=("y",)) -> bytes:
    """x -> SHAPE -> STRIDED_SLICE(shrink) -> PACK(batch, -1) -> RESHAPE(x, packed) -> SOFTMAX."""
    ops = [(B.SHAPE, ["x"], ["shape_x"]), (B.STRIDED_SLICE, ["shape_x", "begin", "end", "strides"],
                                              ["batch"]),
           (B.PACK, ["batch", "minus_one"], ["packed"]), (B.RESHAPE, ["x", "packed"], ["flat"]),
           (B.SOFTMAX, ["flat"], ["y"])]
    builder = flatbuffers.Builder(4096)
    buffers, tensors = [], []
    tflite.BufferStart(builder)
    buffers.append(tflite.BufferEnd(builder))
    for name, shape, type_code, quant, data in TENSORS:
        buffer = 0
        if data is not None:
            payload = builder.CreateByteVector(np.asarray(data, dtype="<i4").tobytes())
            tflite.BufferStart(builder)
            tflite.BufferAddData(builder, payload)
            buffer = len(buffers)
            buffers.append(tflite.BufferEnd(builder))
        name_offset, shape_offset = builder.CreateString(name), _vector(builder, shape)
        q = None
        if quant is not None:
            scale, zero_point = _vector(builder, [quant[0]], "<f4"), _vector(builder, [quant[1]], "<i8")
            tflite.QuantizationParametersStart(builder)
            tflite.QuantizationParametersAddScale(builder, scale)
            tflite.QuantizationParametersAddZeroPoint(builder, zero_point)
            q = tflite.QuantizationParametersEnd(builder)
        tflite.TensorStart(builder)
        tflite.TensorAddShape(builder, shape_offset)
        tflite.TensorAddType(builder, type_code)
        tflite.TensorAddBuffer(builder, buffer)
        tflite.TensorAddName(builder, name_offset)
        if q is not None:
            tflite.TensorAddQuantization(builder, q)
        tensors.append(tflite.TensorEnd(builder))
    codes = []
    for code, _, _ in ops:
        tflite.OperatorCodeStart(builder)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, code)
        tflite.OperatorCodeAddBuiltinCode(builder, code)
        tflite.OperatorCodeAddVersion(builder, 1)
        codes.append(tflite.OperatorCodeEnd(builder))
    operators = []
    for k, (code, ins, outs) in enumerate(ops):
        options_type, options = _options(builder, code)
        ins_offset = _vector(builder, [T[n] for n in ins])
        outs_offset = _vector(builder, [T[n] for n in outs])
        tflite.OperatorStart(builder)
        tflite.OperatorAddOpcodeIndex(builder, k)
        tflite.OperatorAddInputs(builder, ins_offset)
        tflite.OperatorAddOutputs(builder, outs_offset)
        tflite.OperatorAddBuiltinOptionsType(builder, options_type)
        tflite.OperatorAddBuiltinOptions(builder, options)
        operators.append(tflite.OperatorEnd(builder))

    def offsets(items):
        builder.StartVector(4, len(items), 4)
        for item in reversed(items):
            builder.PrependUOffsetTRelative(item)
        return builder.EndVector()

    tensor_vector, operator_vector = offsets(tensors), offsets(operators)
    inputs, outs = _vector(builder, [T["x"]]), _vector(builder, [T[n] for n in outputs])
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, tensor_vector)
    tflite.SubGraphAddInputs(builder, inputs)
    tflite.SubGraphAddOutputs(builder, outs)
    tflite.SubGraphAddOperators(builder, operator_vector)
    subgraph = tflite.SubGraphEnd(builder)
    code_vector, subgraph_vector, buffer_vector = offsets(codes), offsets([subgraph]), offsets(buffers)
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, 3)
    tflite.ModelAddOperatorCodes(builder, code_vector)
    tflite.ModelAddSubgraphs(builder, subgraph_vector)
    tflite.ModelAddBuffers(builder, buffer_vector)
    builder.Finish(tflite.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_the_shape_chain_is_folded_and_the_model_runs_like_tflite_micro(tmp_path):
    data = chain_model()
    path = tmp_path / "chain.tflite"
    path.write_bytes(data)
    graph = read_tflite(path)
    assert [op.kind for op in graph.ops] == [OpKind.RESHAPE, OpKind.SOFTMAX]
    assert graph.ops[0].attrs.new_shape == (1, 48)
    assert not {"shape_x", "batch", "packed", "begin", "minus_one"} & set(graph.tensors)

    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    rng = np.random.default_rng(0)
    for x in (rng.integers(-128, 128, size=(1, 4, 4, 3), dtype=np.int8),
              np.full((1, 4, 4, 3), 127, np.int8)):
        ours = Interpreter(graph).invoke([x])[0]
        tflm = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
        tflm.set_input(x, 0)
        tflm.invoke()
        reference = tflm.get_output(0).copy()
        del tflm
        assert ours.shape == reference.shape and np.array_equal(ours, reference)

    again = read_tflite(write_tflite(graph, tmp_path / "written.tflite"))
    assert [op.kind for op in again.ops] == [OpKind.RESHAPE, OpKind.SOFTMAX]
    assert again.ops[0].attrs == graph.ops[0].attrs


def test_a_shape_that_is_a_graph_output_is_not_folded(tmp_path):
    path = tmp_path / "shape_out.tflite"
    path.write_bytes(chain_model(outputs=("y", "shape_x")))
    with pytest.raises(UnsupportedOpError, match="unsupported op SHAPE at operator #0"):
        read_tflite(path)
