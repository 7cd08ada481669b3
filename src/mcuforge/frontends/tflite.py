"""Read a .tflite model into the IR: ``read_tflite(path) -> Graph``.

The flatbuffer is decoded defensively by `tflite_decode.py` (every schema accessor is guarded there);
this module maps the decoded records to IR tensors and ops:

- tensors keep their (de-duplicated) names, shapes, dtypes, quantisation (per-tensor, or per-axis
  with ``quantized_dimension``) and, for constants, their buffer as a numpy array (int4 weights,
  packed two per byte in the file, are unpacked to one int8 per value);
- SAME/VALID padding becomes explicit pads exactly as TFLite computes them (`Pads.same`);
- fused activations become clamp bounds (NONE, RELU, RELU6, RELU_N1_TO_1);
- the constant operands of PAD, RESHAPE, MEAN, TRANSPOSE and RESIZE_NEAREST_NEIGHBOR become
  attributes and leave the op's inputs (and the graph, when nothing else reads them);
- the depthwise multiplier is taken from the filter and input shapes (as TFLite's kernels check it);
- shape computations known at import (SHAPE -> STRIDED_SLICE -> PACK feeding a RESHAPE, as
  Keras' dynamic batch produces) are evaluated and removed (`tflite_shape_fold.py`);
- SPLIT, SPLIT_V and UNPACK become one STRIDED_SLICE per output (`tflite_split.py`; exact);
- a PAD that only pads a conv's input is folded into the conv's pads (`tflite_fold.py`; exact, and
  what TinyEngine does), unless ``fold_pad_ops=False``;
- QUANTIZE/DEQUANTIZE/TRANSPOSE at the graph's edges stay ops; blocks come from `tflite_blocks.py`.

An operator no op module implements (`mcuforge.ops`) raises ``UnsupportedOpError("unsupported op
GATHER_ND at operator #12 (tensor NAME)")``; each op module decodes its own options
(`OpDef.decode_attrs`, through the public helpers of `_Reader`); a missing, truncated or corrupt
file raises `ModelFileError`. The graph returned has passed `mcuforge.ir.validate`.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
from tflite.Padding import Padding

from ..arith.int4 import unpack_int4
from ..errors import (InvalidGraphError, InvalidValueError, McuforgeError, ModelFileError,
                      UnsupportedOpError)
from ..ir import DType, Graph, Op, OpKind, Pads, QuantParams, Tensor, validate
from ..ir.ops import Attrs
from ..ops import op_def
from ..ops.tflite_common import ACTIVATION_NAME, CLAMP_OF_ACTIVATION
from ..ops.validation import validate_model
from .tflite_blocks import infer_blocks
from .tflite_decode import RawModel, RawOperator, RawTensor, decode_model, read_model_bytes
from .tflite_dilation_fold import fold_dilated_convs
from .tflite_fold import fold_pads
from .tflite_shape_fold import fold_shape_computations
from .tflite_split import split_into_slices
from .tflite_schema import BUILTIN_NAME, DTYPE_OF_TYPE, KIND_OF_CODE, TYPE_NAME

_CUSTOM_CODE = 32
# Control flow: each runs other subgraphs; mcuforge compiles one straight-line subgraph.
_CONTROL_FLOW = ("WHILE", "IF", "CALL_ONCE", "CALL")


def read_tflite(path: str | os.PathLike[str], fold_pad_ops: bool = True) -> Graph:
    """Read the .tflite file at ``path`` into a validated `Graph` (blocks inferred). With
    ``fold_pad_ops``, PAD ops that only pad a conv's input become that conv's pads
    (`tflite_fold.fold_pads`) and SPACE_TO_BATCH_ND -> conv -> BATCH_TO_SPACE_ND chains become
    dilated convs (`tflite_dilation_fold`); without it, every operator of the file is one op."""
    path = Path(path)
    raw = decode_model(read_model_bytes(path), str(path))
    return graph_from_raw(raw, name=path.stem, source=str(path), fold_pad_ops=fold_pad_ops)


def graph_from_raw(raw: RawModel, name: str, source: str, fold_pad_ops: bool = True) -> Graph:
    """Turn a decoded model into a validated IR graph (``source`` is named in errors)."""
    try:
        raw = fold_shape_computations(split_into_slices(raw, source))
        return _build_graph(raw, name, source, fold_pad_ops)
    except InvalidValueError:
        raise
    except InvalidGraphError as exc:
        raise ModelFileError(f"{source}: inconsistent model: {exc}") from None
    except McuforgeError:
        raise
    except (ArithmeticError, ValueError, IndexError, KeyError, TypeError) as exc:
        # A safety net: the checks in `_Reader` should have named the problem already.
        raise ModelFileError(f"{source}: inconsistent model ({type(exc).__name__}: {exc})") from None


def _build_graph(raw: RawModel, name: str, source: str, fold_pad_ops: bool) -> Graph:
    reader = _Reader(raw, source)
    reader.refuse_dynamic_shapes()
    ops = [reader.op(rop) for rop in raw.operators]
    used: set[int] = set(raw.inputs) | set(raw.outputs)
    for rop in raw.operators:
        used.update(reader.kept_inputs[rop.index])
        used.update(rop.outputs)
    tensors = {reader.names[i]: reader.tensor(raw.tensors[i]) for i in sorted(used)}
    metadata = {
        "source": source,
        "format": "tflite",
        "tflite_version": raw.version,
        "description": raw.description,
        "subgraphs": raw.subgraph_count,
        "op_versions": {op.name: rop.version for op, rop in zip(ops, raw.operators)},
        "tflite_metadata": _text_metadata(raw.metadata),
    }
    graph = Graph(name=name, tensors=tensors, ops=tuple(ops),
                  inputs=tuple(reader.names[i] for i in raw.inputs),
                  outputs=tuple(reader.names[i] for i in raw.outputs), metadata=metadata)
    validate_model(graph, source)
    validate(graph)
    if fold_pad_ops:
        graph = _number_ops(fold_pads(fold_dilated_convs(graph)))
    graph = graph.with_ops(graph.ops, blocks=infer_blocks(graph))
    return validate(graph)


def _text_metadata(entries: tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    """The file's Model.metadata entries whose buffer is UTF-8 text (e.g. mcuforge's ``mcuforge.kws``
    JSON, the converter's ``min_runtime_version``), by name; binary entries are left out."""
    texts = {}
    for name, payload in entries:
        try:
            texts[name] = payload.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def _number_ops(graph: Graph) -> Graph:
    """Ops named ``<kind>_<position>`` again after folding removed some (so that the names do not
    depend on how many PAD ops the file had: read -> write -> read keeps them)."""
    names = {op.name: f"{op.kind.value.lower()}_{i}" for i, op in enumerate(graph.ops)}
    versions = graph.metadata.get("op_versions", {})
    metadata = {**graph.metadata,
                "op_versions": {names[old]: v for old, v in versions.items() if old in names}}
    ops = [replace(op, name=names[op.name]) for op in graph.ops]
    return replace(graph.with_ops(ops), metadata=metadata)


def _unique_names(tensors: tuple[RawTensor, ...]) -> list[str]:
    """Tensor names, made unique (``name_1``, ``name_2`` ...) where the file repeats a name."""
    taken = {t.name for t in tensors if t.name}
    seen: set[str] = set()
    names = []
    for t in tensors:
        name = t.name or f"tensor_{t.index}"
        if name in seen:
            k = 1
            while f"{name}_{k}" in taken or f"{name}_{k}" in seen:
                k += 1
            name = f"{name}_{k}"
        seen.add(name)
        names.append(name)
    return names


class _Reader:
    """Converts the records of one decoded model; holds the tensor names and kept op inputs."""

    def __init__(self, raw: RawModel, source: str):
        self.raw = raw
        self.source = source
        self.names = _unique_names(raw.tensors)
        self.kept_inputs: dict[int, tuple[int, ...]] = {}

    # --- tensors -----------------------------------------------------------------------------

    def dtype(self, t: RawTensor) -> DType:
        """The IR dtype of a tensor record; unsupported types raise `UnsupportedOpError`."""
        if t.type_code not in DTYPE_OF_TYPE:
            type_name = TYPE_NAME.get(t.type_code, str(t.type_code))
            raise UnsupportedOpError(f"unsupported tensor type {type_name} "
                                     f"(tensor {self.names[t.index]})")
        return DTYPE_OF_TYPE[t.type_code]

    def shape(self, index: int) -> tuple[int, ...]:
        """The shape of tensor ``index``; negative (dynamic) dimensions are refused."""
        shape = self.raw.tensors[index].shape
        if any(d < 0 for d in shape):
            raise ModelFileError(f"{self.source}: tensor {self.names[index]} has a dynamic or "
                                 f"negative shape {list(shape)}")
        return shape

    def data(self, t: RawTensor) -> np.ndarray | None:
        """The constant data of a tensor record, or None for activations."""
        payload = self.raw.buffers[t.buffer] if t.buffer < len(self.raw.buffers) else b""
        if not payload:
            return None
        dtype = self.dtype(t)
        shape = self.shape(t.index)
        count = math.prod(shape)
        expected = (count + 1) // 2 if dtype is DType.INT4 else count * dtype.numpy.itemsize
        if len(payload) != expected:
            raise ModelFileError(f"{self.source}: tensor {self.names[t.index]} {list(shape)} "
                                 f"{dtype.value} needs {expected} bytes, its buffer {t.buffer} "
                                 f"holds {len(payload)}")
        if dtype is DType.INT4:
            return unpack_int4(payload, count).reshape(shape)
        return np.frombuffer(payload, dtype=dtype.numpy.newbyteorder("<")).reshape(shape)

    def quant(self, t: RawTensor) -> QuantParams | None:
        """The quantisation of a tensor record (None when it has no scales)."""
        q = t.quant
        if q is None or not q.scale:
            return None
        name = self.names[t.index]
        n = len(q.scale)
        zero_points = q.zero_point or (0,) * n
        if len(zero_points) == 1 and n > 1:
            zero_points = zero_points * n
        if len(zero_points) != n:
            raise ModelFileError(f"{self.source}: tensor {name} has {n} scales and "
                                 f"{len(q.zero_point)} zero points")
        if n == 1:
            return QuantParams((q.scale[0],), (zero_points[0],), None)
        shape = t.shape
        axis = q.quantized_dimension
        if len(shape) == 1 and axis != 0 and shape[0] == n:
            axis = 0  # converters write biases with the filter's quantized_dimension; TFLite allows it
        if not 0 <= axis < len(shape) or shape[axis] != n:
            raise ModelFileError(f"{self.source}: tensor {name} {list(shape)} has {n} scales along "
                                 f"quantized_dimension {axis}")
        return QuantParams(tuple(q.scale), tuple(zero_points), axis)

    def tensor(self, t: RawTensor) -> Tensor:
        """The IR tensor of a tensor record."""
        data = self.data(t)
        return Tensor(self.names[t.index], self.shape(t.index), self.dtype(t), self.quant(t),
                      data is not None, data)

    # --- operators ---------------------------------------------------------------------------

    def op(self, rop: RawOperator) -> Op:
        """The IR op of an operator record (its folded constant inputs become attributes)."""
        kind = self._kind(rop)
        where = f"{kind.value} at operator #{rop.index}"
        if not rop.inputs or rop.inputs[0] < 0:
            raise ModelFileError(f"{self.source}: {where} has no input")
        if len(rop.outputs) != 1:
            raise ModelFileError(f"{self.source}: {where} has {len(rop.outputs)} outputs, expected 1")
        kept = op_def(kind).tflite_kept_inputs(kind, tuple(rop.inputs))
        self.kept_inputs[rop.index] = kept
        attrs = self._attrs(kind, rop, where)
        return Op(name=f"{kind.value.lower()}_{rop.index}", kind=kind,
                  inputs=tuple(self.names[i] for i in kept),
                  outputs=tuple(self.names[i] for i in rop.outputs), attrs=attrs)

    def _kind(self, rop: RawOperator) -> OpKind:
        if rop.builtin_code in KIND_OF_CODE:
            return KIND_OF_CODE[rop.builtin_code]
        if rop.builtin_code == _CUSTOM_CODE:
            op_name = f"CUSTOM({rop.custom_code or '?'})"
        else:
            op_name = BUILTIN_NAME.get(rop.builtin_code, f"builtin code {rop.builtin_code}")
        tensor = self.names[rop.outputs[0]] if rop.outputs else "none"
        why = ""
        if op_name in _CONTROL_FLOW:
            why = (f": control flow is not supported (the model has {self.raw.subgraph_count} "
                   "subgraphs; mcuforge compiles one straight-line subgraph)")
        raise UnsupportedOpError(f"unsupported op {op_name} at operator #{rop.index} "
                                 f"(tensor {tensor}){why}")

    def refuse_dynamic_shapes(self) -> None:
        """Refuse, naming the operator, a tensor whose shape keeps a -1 (dynamic) dimension after
        the shape computations were folded (a -1 batch of ``shape_signature`` with a static
        ``shape``, as Keras writes, is fine: TFLite Micro plans ``shape`` too)."""
        for rop in self.raw.operators:
            for index in (*rop.inputs, *rop.outputs):
                if index >= 0 and any(d < 0 for d in self.raw.tensors[index].shape):
                    code = rop.builtin_code
                    op_name = (f"CUSTOM({rop.custom_code or '?'})" if code == _CUSTOM_CODE
                               else BUILTIN_NAME.get(code, f"builtin code {code}"))
                    raise UnsupportedOpError(
                        f"{self.source}: dynamic shape: tensor {self.names[index]} of {op_name} at "
                        f"operator #{rop.index} has shape {list(self.raw.tensors[index].shape)} "
                        "after folding the shape computations; mcuforge compiles static shapes "
                        "only (batch 1)")

    def clamp(self, rop: RawOperator, where: str) -> tuple[float, float]:
        code = int(rop.options.get("FusedActivationFunction", 0))
        if code not in CLAMP_OF_ACTIVATION:
            name = ACTIVATION_NAME.get(code, str(code))
            raise UnsupportedOpError(f"unsupported fused activation {name} in {where} "
                                     f"(tensor {self.names[rop.outputs[0]]})")
        return CLAMP_OF_ACTIVATION[code]

    def positive(self, rop: RawOperator, where: str, *fields: str) -> tuple[int, ...]:
        values = tuple(int(rop.options.get(f, 0)) for f in fields)
        if any(v < 1 for v in values):
            raise ModelFileError(f"{self.source}: {where} has {'/'.join(fields)} = {values} "
                                 "(must be at least 1)")
        return values

    def pads(self, rop: RawOperator, where: str, in_hw: tuple[int, int], kernel: tuple[int, int],
              stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> Pads:
        padding = int(rop.options.get("Padding", Padding.SAME))
        if padding == Padding.VALID:
            return Pads()
        if padding == Padding.SAME:
            return Pads.same(in_hw[0], in_hw[1], kernel, stride, dilation)
        raise ModelFileError(f"{self.source}: {where} has unknown padding {padding}")

    def spatial_input(self, rop: RawOperator, where: str) -> tuple[int, ...]:
        shape = self.shape(rop.inputs[0])
        if len(shape) != 4:
            raise ModelFileError(f"{self.source}: {where} needs a 4-D input, got {list(shape)}")
        return shape

    def constant(self, rop: RawOperator, position: int, what: str, where: str) -> np.ndarray:
        """The values of the constant input ``position`` of ``rop`` (folded into attributes)."""
        if len(rop.inputs) <= position or rop.inputs[position] < 0:
            raise ModelFileError(f"{self.source}: {where} has no {what} input")
        values = self.constant_or_none(rop, position, what, where)
        if values is None:
            raise UnsupportedOpError(f"{where} has non-constant {what} "
                                     f"(tensor {self.names[rop.inputs[position]]})")
        return values

    def constant_or_none(self, rop: RawOperator, position: int, what: str,
                         where: str) -> np.ndarray | None:
        """The values of the optional constant int32 input ``position`` of ``rop``; None when the
        input is absent or not a constant."""
        if len(rop.inputs) <= position or rop.inputs[position] < 0:
            return None
        t = self.raw.tensors[rop.inputs[position]]
        values = self.data(t)
        if values is not None and self.dtype(t) not in (DType.INT32, DType.INT64):
            raise ModelFileError(f"{self.source}: {where}: {what} tensor {self.names[t.index]} "
                                 f"is {self.dtype(t).value}, expected int32")
        return values

    def _attrs(self, kind: OpKind, rop: RawOperator, where: str) -> Attrs:
        return op_def(kind).decode_attrs(kind, self, rop, where)
