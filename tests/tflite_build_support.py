"""Hand-built .tflite flatbuffers for tests of operators mcuforge's writer does not write (SHAPE,
SPLIT, UNPACK ...): tensors and operators are given as plain tuples."""

from __future__ import annotations

from typing import Callable, Sequence

import flatbuffers
import numpy as np
import tflite

# (name, shape, TensorType, (scale, zero point) or None, constant values or None: int32, or int64
# for an INT64 tensor)
TensorSpec = tuple
# (builtin code, input names, output names, BuiltinOptions type, options writer or None)
OpSpec = tuple


def _vector(builder, values, dtype="<i4"):
    return builder.CreateNumpyVector(np.asarray(values, dtype=dtype).reshape(-1))


def _offsets(builder, items):
    builder.StartVector(4, len(items), 4)
    for item in reversed(items):
        builder.PrependUOffsetTRelative(item)
    return builder.EndVector()


def build_model(tensors: Sequence[TensorSpec], ops: Sequence[OpSpec], inputs: Sequence[str],
                outputs: Sequence[str]) -> bytes:
    """The bytes of a one-subgraph .tflite model of ``tensors`` and ``ops`` (see the specs above;
    an options writer takes the builder and returns the options table's offset)."""
    index = {spec[0]: i for i, spec in enumerate(tensors)}
    builder = flatbuffers.Builder(4096)
    tflite.BufferStart(builder)
    buffers, tensor_offsets = [tflite.BufferEnd(builder)], []
    for name, shape, type_code, quant, data in tensors:
        buffer = 0
        if data is not None:
            dtype = "<i8" if type_code == tflite.TensorType.INT64 else "<i4"
            payload = builder.CreateByteVector(np.asarray(data, dtype=dtype).tobytes())
            tflite.BufferStart(builder)
            tflite.BufferAddData(builder, payload)
            buffer = len(buffers)
            buffers.append(tflite.BufferEnd(builder))
        name_offset, shape_offset = builder.CreateString(name), _vector(builder, shape)
        q = None
        if quant is not None:
            scale = _vector(builder, [quant[0]], "<f4")
            zero_point = _vector(builder, [quant[1]], "<i8")
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
        tensor_offsets.append(tflite.TensorEnd(builder))
    codes: list[int] = []
    for code, *_ in ops:
        if code not in codes:
            codes.append(code)
    code_offsets = []
    for code in codes:
        tflite.OperatorCodeStart(builder)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(builder, code)
        tflite.OperatorCodeAddVersion(builder, 1)
        code_offsets.append(tflite.OperatorCodeEnd(builder))
    operators = []
    for code, ins, outs, options_type, write_options in ops:
        options = write_options(builder) if write_options is not None else None
        ins_offset = _vector(builder, [index[n] if n else -1 for n in ins])
        outs_offset = _vector(builder, [index[n] for n in outs])
        tflite.OperatorStart(builder)
        tflite.OperatorAddOpcodeIndex(builder, codes.index(code))
        tflite.OperatorAddInputs(builder, ins_offset)
        tflite.OperatorAddOutputs(builder, outs_offset)
        if options is not None:
            tflite.OperatorAddBuiltinOptionsType(builder, options_type)
            tflite.OperatorAddBuiltinOptions(builder, options)
        operators.append(tflite.OperatorEnd(builder))
    tensor_vector, operator_vector = _offsets(builder, tensor_offsets), _offsets(builder, operators)
    input_vector = _vector(builder, [index[n] for n in inputs])
    output_vector = _vector(builder, [index[n] for n in outputs])
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, tensor_vector)
    tflite.SubGraphAddInputs(builder, input_vector)
    tflite.SubGraphAddOutputs(builder, output_vector)
    tflite.SubGraphAddOperators(builder, operator_vector)
    subgraph = tflite.SubGraphEnd(builder)
    code_vector = _offsets(builder, code_offsets)
    subgraph_vector, buffer_vector = _offsets(builder, [subgraph]), _offsets(builder, buffers)
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, 3)
    tflite.ModelAddOperatorCodes(builder, code_vector)
    tflite.ModelAddSubgraphs(builder, subgraph_vector)
    tflite.ModelAddBuffers(builder, buffer_vector)
    builder.Finish(tflite.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def options(start: Callable, end: Callable, **fields) -> Callable:
    """An options writer: ``start``, the generated ``<Table>Add<Field>`` of each field, ``end``."""
    module = __import__(start.__module__, fromlist=["_"])
    table = start.__name__[:-len("Start")]

    def write(builder):
        start(builder)
        for field, value in fields.items():
            getattr(module, f"{table}Add{field}")(builder, value)
        return end(builder)
    return write


def run_tflm(data: bytes, inputs: Sequence[np.ndarray], n_outputs: int) -> list[np.ndarray]:
    """The outputs of TFLite Micro (the pip interpreter) running ``data`` on ``inputs``."""
    import pytest
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    tflm = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    for k, array in enumerate(inputs):
        tflm.set_input(array, k)
    tflm.invoke()
    outputs = [tflm.get_output(k).copy() for k in range(n_outputs)]
    del tflm
    return outputs
