"""Decode a .tflite flatbuffer into plain Python records, defensively.

Every call into the `tflite` package's generated accessors happens here, and nowhere else in the
reader. A corrupt file can make those accessors raise almost anything (struct.error, IndexError,
ValueError, ...) or hand back absurd vector lengths, so this module:

- checks the file identifier ``TFL3`` and that the root offset lies inside the file;
- before iterating any vector, checks that its length fits in the file and reads its last element
  (which raises when the vector runs past the end), so no loop can run for long;
- checks every index: operator code, tensor, buffer (and ``-1`` only where TFLite allows it);
- turns every exception raised while decoding into a `ModelFileError` naming the file.

The records it returns (`RawModel`) hold only Python ints, floats, strings and bytes; `tflite.py`
turns them into the IR with its own, explicit checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import tflite

from ..errors import McuforgeError, ModelFileError
from ..ops import definitions

# Option fields the reader uses, per builtin options table: (generated class, accessor names), as
# the op modules declare them (`OpDef.tflite_option_fields`).
_OPTION_FIELDS: dict[int, tuple[type, tuple[str, ...]]] = {
    definition.tflite_options: definition.tflite_option_fields
    for definition in definitions() if definition.tflite_option_fields is not None
}
# UNPACK has no op module: the reader rewrites it into STRIDED_SLICEs first (`tflite_split`).
_OPTION_FIELDS.setdefault(tflite.BuiltinOptions.UnpackOptions,
                          (tflite.UnpackOptions, ("Num", "Axis")))


@dataclass(frozen=True)
class RawQuant:
    """Quantisation parameters as stored (scales, zero points, quantized dimension)."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int


@dataclass(frozen=True)
class RawTensor:
    """One tensor record of the subgraph."""

    index: int
    name: str
    shape: tuple[int, ...]
    type_code: int
    buffer: int
    quant: RawQuant | None


@dataclass(frozen=True)
class RawOperator:
    """One operator record: builtin code (or custom name), tensor indices and its options."""

    index: int
    builtin_code: int
    custom_code: str | None
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options_type: int
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RawModel:
    """The decoded model: one subgraph's tensors and operators, and the buffers' bytes."""

    version: int
    description: str
    subgraph_count: int
    subgraph_name: str
    buffers: tuple[bytes, ...]
    tensors: tuple[RawTensor, ...]
    operators: tuple[RawOperator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    metadata: tuple[tuple[str, bytes], ...] = ()  # Model.metadata: (name, its buffer's bytes)


def read_model_bytes(path: Path) -> bytes:
    """The bytes of ``path``; `ModelFileError` when it is missing or unreadable."""
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
    if not path.is_file():
        raise ModelFileError(f"model file {path} is not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None


def decode_model(data: bytes, source: str) -> RawModel:
    """Decode the flatbuffer ``data`` (read from ``source``, named in errors) into a `RawModel`."""
    if len(data) < 8:
        raise ModelFileError(f"{source}: not a .tflite file (only {len(data)} bytes)")
    if data[4:8] != b"TFL3":
        raise ModelFileError(f"{source}: not a .tflite file (file identifier {data[4:8]!r}, "
                             "expected b'TFL3')")
    try:
        return _decode(data, source)
    except McuforgeError:
        raise
    except RecursionError:
        raise ModelFileError(f"{source}: corrupt flatbuffer (nesting too deep)") from None
    except Exception as exc:  # any failure inside the generated accessors means a corrupt file
        raise ModelFileError(f"{source}: corrupt or truncated flatbuffer "
                             f"({type(exc).__name__}: {exc})") from None


def _decode(data: bytes, source: str) -> RawModel:
    root = int.from_bytes(data[0:4], "little")
    if root + 4 > len(data):
        raise ModelFileError(f"{source}: truncated (root table at {root}, file is {len(data)} bytes)")
    model = tflite.Model.GetRootAsModel(data, 0)
    n_subgraphs = _length(data, model.SubgraphsLength(), model.Subgraphs, "subgraphs", source)
    if n_subgraphs == 0:
        raise ModelFileError(f"{source}: the model has no subgraph")
    n_buffers = _length(data, model.BuffersLength(), model.Buffers, "buffers", source)
    buffers = tuple(_buffer_bytes(data, model.Buffers(i), i, source) for i in range(n_buffers))
    n_codes = _length(data, model.OperatorCodesLength(), model.OperatorCodes, "operator codes", source)
    codes = [_operator_code(model.OperatorCodes(i)) for i in range(n_codes)]
    subgraph = model.Subgraphs(0)
    n_tensors = _length(data, subgraph.TensorsLength(), subgraph.Tensors, "tensors", source)
    tensors = tuple(_tensor(data, subgraph.Tensors(i), i, n_buffers, source) for i in range(n_tensors))
    n_ops = _length(data, subgraph.OperatorsLength(), subgraph.Operators, "operators", source)
    operators = tuple(_operator(data, subgraph.Operators(i), i, codes, n_tensors, source)
                      for i in range(n_ops))
    inputs = _indices(data, subgraph.InputsLength(), subgraph.Inputs, n_tensors, False,
                      "subgraph inputs", source)
    outputs = _indices(data, subgraph.OutputsLength(), subgraph.Outputs, n_tensors, False,
                       "subgraph outputs", source)
    n_metadata = _length(data, model.MetadataLength(), model.Metadata, "metadata", source)
    metadata = []
    for i in range(n_metadata):
        entry = model.Metadata(i)
        index = int(entry.Buffer())
        if not 0 <= index < n_buffers:
            raise ModelFileError(f"{source}: metadata entry {i} refers to buffer {index} of {n_buffers}")
        metadata.append((_text(entry.Name()), buffers[index]))
    return RawModel(
        version=int(model.Version()),
        description=_text(model.Description()),
        subgraph_count=n_subgraphs,
        subgraph_name=_text(subgraph.Name()),
        buffers=buffers,
        tensors=tensors,
        operators=operators,
        inputs=inputs,
        outputs=outputs,
        metadata=tuple(metadata),
    )


def _length(data: bytes, n: int, element: Callable[[int], object], what: str, source: str,
            element_bytes: int = 4) -> int:
    """Check that a vector of ``n`` elements fits in the file; reading its last element raises
    when the vector runs past the end of the file."""
    if n < 0 or n * element_bytes > len(data):
        raise ModelFileError(f"{source}: corrupt vector of {what} (length {n})")
    if n:
        element(n - 1)
    return n


def _indices(data: bytes, n: int, element: Callable[[int], int], bound: int, allow_absent: bool,
             what: str, source: str) -> tuple[int, ...]:
    _length(data, n, element, what, source)
    values = tuple(int(element(j)) for j in range(n))
    low = -1 if allow_absent else 0
    for value in values:
        if not low <= value < bound:
            raise ModelFileError(f"{source}: {what} refer to tensor {value}, the subgraph has {bound}")
    return values


def _numpy(values: object, n: int) -> list:
    """A vector read with the generated ``...AsNumpy`` accessor (0 when absent) as a list."""
    if n == 0 or not isinstance(values, np.ndarray):
        return []
    if values.shape != (n,):
        raise ValueError(f"vector of {values.shape} where {n} values were expected")
    return values.tolist()


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", errors="replace") if raw else ""


def _buffer_bytes(data: bytes, buffer: "tflite.Buffer", index: int, source: str) -> bytes:
    offset = int(buffer.Offset())
    if offset > 1:  # data stored outside the flatbuffer, after it (models over 2 GB)
        size = int(buffer.Size())
        if offset + size > len(data):
            raise ModelFileError(f"{source}: buffer {index} runs past the end of the file "
                                 f"({offset} + {size} > {len(data)} bytes)")
        return data[offset:offset + size]
    if buffer.DataIsNone():
        return b""
    _length(data, buffer.DataLength(), buffer.Data, f"buffer {index} bytes", source, 1)
    array = buffer.DataAsNumpy()
    return array.tobytes() if isinstance(array, np.ndarray) else b""


def _operator_code(code: "tflite.OperatorCode") -> tuple[int, str | None, int]:
    # TFLite's GetBuiltinCode: the larger of the deprecated int8 field and the int32 field.
    builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
    custom = code.CustomCode()
    return builtin, (_text(custom) if custom is not None else None), int(code.Version())


def _tensor(data: bytes, tensor: "tflite.Tensor", index: int, n_buffers: int,
            source: str) -> RawTensor:
    shape_len = _length(data, tensor.ShapeLength(), tensor.Shape, f"tensor {index} shape", source)
    shape = tuple(int(d) for d in _numpy(tensor.ShapeAsNumpy(), shape_len))
    buffer = int(tensor.Buffer())
    if not 0 <= buffer < max(n_buffers, 1):
        raise ModelFileError(f"{source}: tensor {index} refers to buffer {buffer}, "
                             f"the model has {n_buffers}")
    quant = None
    params = tensor.Quantization()
    if params is not None and not params.ScaleIsNone() and params.ScaleLength() > 0:
        n_scale = _length(data, params.ScaleLength(), params.Scale, f"tensor {index} scales", source)
        n_zero = 0
        if not params.ZeroPointIsNone():
            n_zero = _length(data, params.ZeroPointLength(), params.ZeroPoint,
                             f"tensor {index} zero points", source, 8)
        quant = RawQuant(
            scale=tuple(float(v) for v in _numpy(params.ScaleAsNumpy(), n_scale)),
            zero_point=tuple(int(v) for v in _numpy(params.ZeroPointAsNumpy(), n_zero)),
            quantized_dimension=int(params.QuantizedDimension()),
        )
    return RawTensor(index, _text(tensor.Name()), shape, int(tensor.Type()), buffer, quant)


def _operator(data: bytes, op: "tflite.Operator", index: int, codes: list[tuple[int, str | None, int]],
              n_tensors: int, source: str) -> RawOperator:
    opcode_index = int(op.OpcodeIndex())
    if not 0 <= opcode_index < len(codes):
        raise ModelFileError(f"{source}: operator #{index} uses operator code {opcode_index}, "
                             f"the model has {len(codes)}")
    builtin, custom, version = codes[opcode_index]
    inputs = _indices(data, op.InputsLength(), op.Inputs, n_tensors, True,
                      f"operator #{index} inputs", source)
    outputs = _indices(data, op.OutputsLength(), op.Outputs, n_tensors, False,
                       f"operator #{index} outputs", source)
    options_type = int(op.BuiltinOptionsType())
    options: dict[str, object] = {}
    table = op.BuiltinOptions()
    if table is not None and options_type in _OPTION_FIELDS:
        options_class, names = _OPTION_FIELDS[options_type]
        reader = options_class()
        reader.Init(table.Bytes, table.Pos)
        for name in names:
            if hasattr(reader, f"{name}IsNone"):  # a vector field: read only when present
                if not getattr(reader, f"{name}IsNone")():
                    element = getattr(reader, name)
                    n = _length(data, getattr(reader, f"{name}Length")(), element,
                                f"operator #{index} {name}", source)
                    options[name] = tuple(int(element(j)) for j in range(n))
            else:
                options[name] = getattr(reader, name)()
    return RawOperator(index, builtin, custom, version, inputs, outputs, options_type, options)
