"""Write an IR graph as a .tflite file: ``write_tflite(graph, path)``.

The file is built with the `flatbuffers` Builder and the `tflite` package's generated schema
functions (``Conv2DOptionsStart`` ...). The IR's attributes go back to where TFLite expects them:

- explicit pads become ``SAME`` or ``VALID`` when they equal what TFLite computes for that padding;
  a conv with other pads gets an explicit PAD op in front of it (pooling ops must be SAME/VALID);
- clamp bounds become the fused activation (NONE, RELU, RELU6, RELU_N1_TO_1);
- PAD paddings, RESHAPE shape, MEAN axes, TRANSPOSE permutation and RESIZE size become constant
  int32 input tensors again (RESHAPE also gets ``new_shape`` in its options);
- the depthwise multiplier goes into the options; int4 constants are packed two per byte.

Text entries of ``graph.metadata["tflite_metadata"]`` (name -> str, e.g. the audio front end a
keyword-spotting model needs, ``mcuforge.kws``) become Model.metadata entries, each pointing at a
buffer that holds the UTF-8 text; the reader gives them back the same way.

Constant data goes into buffers aligned to 16 bytes (as TFLite's converter does); buffer 0 is the
empty buffer every activation refers to. Reading the written file gives back the same graph. The
file is written atomically (a temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
import tflite
from tflite.Padding import Padding
from tflite.TensorType import TensorType

from ..arith.int4 import pack_int4
from ..atomic import write_bytes_atomic
from ..errors import InvalidGraphError, ModelFileError, UnsupportedOpError
from ..ir import DType, Graph, Op, OpKind, PadAttrs, Pads, QuantParams
from ..ir.ops import Attrs
from ..ops import op_def
from .tflite_options import build_options
from .tflite_schema import BUILTIN_CODE, OPTIONS_OF_KIND, TYPE_OF_DTYPE

_BUFFER_ALIGNMENT = 16
_SCHEMA_VERSION = 3


@dataclass
class _TensorRecord:
    name: str
    shape: tuple[int, ...]
    type_code: int
    quant: QuantParams | None
    payload: bytes | None  # constant data, little-endian
    variable: bool = False  # a state tensor (LSTM), zero at reset


@dataclass
class _OpRecord:
    kind: OpKind
    attrs: Attrs
    inputs: list[int]
    outputs: list[int]
    padding: int = Padding.VALID
    version: int = 1


def write_tflite(graph: Graph, path: str | os.PathLike[str]) -> Path:
    """Write ``graph`` to ``path`` as a .tflite file (atomically); returns the path."""
    path = Path(path)
    data = serialize_tflite(graph)
    try:
        write_bytes_atomic(path, data, make_parents=False)
    except OSError as exc:
        raise ModelFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def serialize_tflite(graph: Graph) -> bytes:
    """The bytes of ``graph`` as a .tflite flatbuffer."""
    plan = _Plan(graph)
    return _serialize(graph, plan)


class _Plan:
    """The flat tensor and operator lists of the file, with the constants the IR folded."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.tensors: list[_TensorRecord] = []
        self.index: dict[str, int] = {}
        self.taken = set(graph.tensors)
        for name, tensor in graph.tensors.items():
            payload = None
            if tensor.constant:
                if tensor.data is None:
                    raise InvalidGraphError(f"cannot write {graph.name}: constant tensor {name} "
                                            "has no data")
                payload = _little_endian(tensor.data, tensor.dtype, name)
            self._add(_TensorRecord(name, tuple(tensor.shape), _type_code(tensor.dtype, name),
                                    tensor.quant, payload))
        versions = graph.metadata.get("op_versions", {})
        self.ops: list[_OpRecord] = []
        for op in graph.ops:
            version = int(versions.get(op.name, 1)) if isinstance(versions, dict) else 1
            self._plan_op(op, version)

    def _add(self, record: _TensorRecord) -> int:
        self.index[record.name] = len(self.tensors)
        self.tensors.append(record)
        return self.index[record.name]

    def _fresh_name(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def _constant(self, op_name: str, what: str, values: np.ndarray) -> int:
        values = np.asarray(values, dtype="<i4")  # keeps a 0-d (scalar) constant 0-d
        return self._add(_TensorRecord(self._fresh_name(f"{op_name}/{what}"), tuple(values.shape),
                                       TensorType.INT32, None, values.tobytes()))

    def _plan_op(self, op: Op, version: int) -> None:
        inputs = [self.index[name] for name in op.inputs]
        outputs = [self.index[name] for name in op.outputs]
        record = _OpRecord(op.kind, op.attrs, inputs, outputs, version=version)
        definition = op_def(op.kind)
        window = definition.tflite_window(self.graph, op)
        if window is not None:
            kernel, stride, dilation, pads = window
            record.padding, explicit = self._padding(op, kernel, stride, dilation, pads)
            if explicit and definition.explicit_pad_op:
                record.inputs[0] = self._explicit_pad(op, pads)
            elif explicit:
                raise UnsupportedOpError(f"cannot write {op.name}: pads {pads} of "
                                         f"{op.kind.value} are neither TFLite SAME nor VALID")
        folded = [self._constant(op.name, what, values)
                  for what, values in definition.folded_constants(op.attrs)]
        folded += [self._add(_TensorRecord(self._fresh_name(f"{op.name}/{what}"), tuple(shape),
                                           _type_code(dtype, what), quant, None, variable=True))
                   for what, shape, dtype, quant in definition.tflite_variable_tensors(self.graph, op)]
        record.inputs = definition.tflite_inputs(op.kind, record.inputs, folded)
        self.ops.append(record)

    def _padding(self, op: Op, kernel: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int], pads: Pads) -> tuple[int, bool]:
        """(TFLite padding, whether an explicit PAD op is needed) for ``pads``."""
        x = self.graph.tensors[op.inputs[0]].shape
        if pads == Pads():
            return Padding.VALID, False
        if pads == Pads.same(x[1], x[2], kernel, stride, dilation):
            return Padding.SAME, False
        return Padding.VALID, True

    def _explicit_pad(self, op: Op, pads: Pads) -> int:
        """Insert ``PAD`` in front of ``op``; returns the padded tensor's index."""
        source = self.graph.tensors[op.inputs[0]]
        n, h, w, c = source.shape
        padded = (n, h + pads.top + pads.bottom, w + pads.left + pads.right, c)
        out = self._add(_TensorRecord(self._fresh_name(f"{op.name}/padded"), padded,
                                      _type_code(source.dtype, source.name), source.quant, None))
        paddings = ((0, 0), (pads.top, pads.bottom), (pads.left, pads.right), (0, 0))
        constant = self._constant(f"{op.name}/pad", "paddings", np.array(paddings))
        self.ops.append(_OpRecord(OpKind.PAD, PadAttrs(paddings),
                                  [self.index[source.name], constant], [out]))
        return out


def _type_code(dtype: DType, name: str) -> int:
    if dtype not in TYPE_OF_DTYPE:
        raise UnsupportedOpError(f"cannot write tensor {name}: dtype {dtype.value} has no "
                                 "TFLite equivalent here")
    return TYPE_OF_DTYPE[dtype]


def _little_endian(data: np.ndarray, dtype: DType, name: str) -> bytes:
    if dtype is DType.INT4:
        try:
            return pack_int4(data)
        except ValueError as exc:
            raise InvalidGraphError(f"cannot write int4 tensor {name}: {exc}") from None
    return np.ascontiguousarray(data, dtype=dtype.numpy.newbyteorder("<")).tobytes()


# --- flatbuffer serialisation --------------------------------------------------------------------

def _serialize(graph: Graph, plan: _Plan) -> bytes:
    payload_bytes = sum(len(t.payload or b"") for t in plan.tensors)
    builder = flatbuffers.Builder(payload_bytes + 64 * 1024)
    buffers = [_buffer(builder, b"")]
    buffer_of_tensor: list[int] = []
    for record in plan.tensors:
        if record.payload:
            buffer_of_tensor.append(len(buffers))
            buffers.append(_buffer(builder, record.payload))
        else:
            buffer_of_tensor.append(0)
    tensors = [_tensor(builder, record, buffer_of_tensor[i]) for i, record in enumerate(plan.tensors)]
    metadata_entries = []
    for name, text in sorted(graph.metadata.get("tflite_metadata", {}).items()):
        metadata_entries.append((name, len(buffers)))
        buffers.append(_buffer(builder, str(text).encode("utf-8")))
    metadata = []
    for name, buffer_index in metadata_entries:
        name_offset = builder.CreateString(name)
        tflite.MetadataStart(builder)
        tflite.MetadataAddName(builder, name_offset)
        tflite.MetadataAddBuffer(builder, buffer_index)
        metadata.append(tflite.MetadataEnd(builder))
    kinds: list[OpKind] = []
    for record in plan.ops:
        if record.kind not in kinds:
            kinds.append(record.kind)
    versions = {kind: max(r.version for r in plan.ops if r.kind is kind) for kind in kinds}
    codes = [_operator_code(builder, kind, versions[kind]) for kind in kinds]
    operators = [_operator(builder, record, kinds.index(record.kind), plan) for record in plan.ops]
    subgraph_name = builder.CreateString(graph.name)
    tensor_vector = _offset_vector(builder, tensors)
    input_vector = _int32_vector(builder, [plan.index[name] for name in graph.inputs])
    output_vector = _int32_vector(builder, [plan.index[name] for name in graph.outputs])
    operator_vector = _offset_vector(builder, operators)
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, tensor_vector)
    tflite.SubGraphAddInputs(builder, input_vector)
    tflite.SubGraphAddOutputs(builder, output_vector)
    tflite.SubGraphAddOperators(builder, operator_vector)
    tflite.SubGraphAddName(builder, subgraph_name)
    subgraph = tflite.SubGraphEnd(builder)
    description = builder.CreateString("mcuforge")
    code_vector = _offset_vector(builder, codes)
    subgraph_vector = _offset_vector(builder, [subgraph])
    buffer_vector = _offset_vector(builder, buffers)
    metadata_vector = _offset_vector(builder, metadata) if metadata else None
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, _SCHEMA_VERSION)
    tflite.ModelAddOperatorCodes(builder, code_vector)
    tflite.ModelAddSubgraphs(builder, subgraph_vector)
    tflite.ModelAddDescription(builder, description)
    tflite.ModelAddBuffers(builder, buffer_vector)
    if metadata_vector is not None:
        tflite.ModelAddMetadata(builder, metadata_vector)
    model = tflite.ModelEnd(builder)
    builder.Finish(model, file_identifier=b"TFL3")
    return bytes(builder.Output())


def _offset_vector(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _int32_vector(builder: flatbuffers.Builder, values: list[int] | tuple[int, ...]) -> int:
    return builder.CreateNumpyVector(np.asarray(values, dtype="<i4").reshape(-1))


def _buffer(builder: flatbuffers.Builder, payload: bytes) -> int:
    data = None
    if payload:
        # A ubyte vector aligned to 16 bytes: the builder's own CreateByteVector aligns to 4 only.
        builder.StartVector(1, len(payload), _BUFFER_ALIGNMENT)
        builder.head = builder.head - len(payload)
        builder.Bytes[builder.head:builder.head + len(payload)] = payload
        data = builder.EndVector()
    tflite.BufferStart(builder)
    if data is not None:
        tflite.BufferAddData(builder, data)
    return tflite.BufferEnd(builder)


def _tensor(builder: flatbuffers.Builder, record: _TensorRecord, buffer: int) -> int:
    name = builder.CreateString(record.name)
    shape = _int32_vector(builder, record.shape)
    quant = None
    if record.quant is not None:
        scale = builder.CreateNumpyVector(np.asarray(record.quant.scale, dtype="<f4"))
        zero_point = builder.CreateNumpyVector(np.asarray(record.quant.zero_point, dtype="<i8"))
        tflite.QuantizationParametersStart(builder)
        tflite.QuantizationParametersAddScale(builder, scale)
        tflite.QuantizationParametersAddZeroPoint(builder, zero_point)
        tflite.QuantizationParametersAddQuantizedDimension(builder, record.quant.axis or 0)
        quant = tflite.QuantizationParametersEnd(builder)
    tflite.TensorStart(builder)
    tflite.TensorAddShape(builder, shape)
    tflite.TensorAddType(builder, record.type_code)
    tflite.TensorAddBuffer(builder, buffer)
    tflite.TensorAddName(builder, name)
    if record.variable:
        tflite.TensorAddIsVariable(builder, True)
    if quant is not None:
        tflite.TensorAddQuantization(builder, quant)
    return tflite.TensorEnd(builder)


def _operator_code(builder: flatbuffers.Builder, kind: OpKind, version: int) -> int:
    code = BUILTIN_CODE[kind]
    tflite.OperatorCodeStart(builder)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, min(code, 127))
    tflite.OperatorCodeAddBuiltinCode(builder, code)
    tflite.OperatorCodeAddVersion(builder, version)
    return tflite.OperatorCodeEnd(builder)


def _operator(builder: flatbuffers.Builder, record: _OpRecord, opcode_index: int, plan: _Plan) -> int:
    output_name = plan.tensors[record.outputs[0]].name
    options = build_options(builder, record.kind, record.attrs, record.padding, output_name)
    inputs = _int32_vector(builder, record.inputs)
    outputs = _int32_vector(builder, record.outputs)
    tflite.OperatorStart(builder)
    tflite.OperatorAddOpcodeIndex(builder, opcode_index)
    tflite.OperatorAddInputs(builder, inputs)
    tflite.OperatorAddOutputs(builder, outputs)
    if options is not None:
        tflite.OperatorAddBuiltinOptionsType(builder, OPTIONS_OF_KIND[record.kind])
        tflite.OperatorAddBuiltinOptions(builder, options)
    return tflite.OperatorEnd(builder)
