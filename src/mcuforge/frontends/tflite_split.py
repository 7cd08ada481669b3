"""Read SPLIT, SPLIT_V and UNPACK as one STRIDED_SLICE per output.

The IR's ops have one output each (the planner, the reference runtime and the C lowering rely on
it), and the three operators that converters emit with several outputs only move bytes: output k
of ``SPLIT(axis, x)`` and ``SPLIT_V(x, size_splits, axis)`` is x's slice [offset_k, offset_k +
size_k) along the axis (the sizes are the output tensors' extents, which the file states), and
output k of ``UNPACK(x)`` (UnpackOptions axis) is x's index k along the axis with that dimension
removed (a shrink-axis STRIDED_SLICE). TFLite Micro's SPLIT, SPLIT_V and UNPACK copy those bytes
unchanged, whatever the quantisation, as STRIDED_SLICE does, so the rewrite is exact; the input
stays alive until the last slice has run, as it would for the one operator.

`split_into_slices` rewrites the decoded records before the IR is built: each output gets its own
STRIDED_SLICE operator with constant begin, end and strides tensors (new int32 constants named
after the output). Writing the graph back gives the STRIDED_SLICEs. A split whose axis is not a
constant, whose input has rank above 4 (STRIDED_SLICE's limit in TFLite Micro) or whose output
shapes do not tile its input is refused with a one-line `ModelFileError` or left for the reader to
refuse as an unsupported op.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tflite.BuiltinOperator import BuiltinOperator as B
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from ..errors import ModelFileError
from .tflite_decode import RawModel, RawOperator, RawTensor

_SLICE_OPTIONS = {"BeginMask": 0, "EndMask": 0, "EllipsisMask": 0, "NewAxisMask": 0,
                  "ShrinkAxisMask": 0, "Offset": False}
_NAMES = {B.SPLIT: "SPLIT", B.SPLIT_V: "SPLIT_V", B.UNPACK: "UNPACK"}
MAX_RANK = 4


def split_into_slices(raw: RawModel, source: str) -> RawModel:
    """A copy of ``raw`` with every SPLIT, SPLIT_V and UNPACK replaced by one STRIDED_SLICE per
    output (see the module docstring); ``raw`` itself when it has none."""
    if not any(rop.builtin_code in _NAMES for rop in raw.operators):
        return raw
    tensors, buffers, operators = list(raw.tensors), list(raw.buffers), []
    for rop in raw.operators:
        plan = _slices(raw, rop, source)
        if plan is None:
            operators.append(rop)
            continue
        x, slices = plan
        for out, begin, end, shrink in slices:
            constants = []
            for what, values in (("begin", begin), ("end", end), ("strides", [1] * len(begin))):
                constants.append(len(tensors))
                tensors.append(RawTensor(len(tensors), f"{raw.tensors[out].name}/{what}",
                                         (len(values),), TensorType.INT32, len(buffers), None))
                buffers.append(np.asarray(values, dtype="<i4").tobytes())
            operators.append(RawOperator(0, B.STRIDED_SLICE, None, 1, (x, *constants), (out,),
                                         BuiltinOptions.StridedSliceOptions,
                                         {**_SLICE_OPTIONS, "ShrinkAxisMask": shrink}))
    return replace(raw, tensors=tuple(tensors), buffers=tuple(buffers),
                   operators=tuple(replace(rop, index=i) for i, rop in enumerate(operators)))


def _constant_axis(raw: RawModel, index: int) -> int | None:
    """The one int32 value of constant tensor ``index``, or None when it is not a constant."""
    if index < 0:
        return None
    t = raw.tensors[index]
    payload = raw.buffers[t.buffer] if 0 <= t.buffer < len(raw.buffers) else b""
    if t.type_code != TensorType.INT32 or len(payload) != 4:
        return None
    return int(np.frombuffer(payload, dtype="<i4")[0])


def _slices(raw: RawModel, rop: RawOperator, source: str):
    """(data input, [(output, begin, end, shrink-axis mask)]) for a SPLIT, SPLIT_V or UNPACK
    record, or None for any other operator (or one left for the reader to refuse)."""
    name = _NAMES.get(rop.builtin_code)
    if name is None or not rop.outputs:
        return None
    where = f"{source}: {name} at operator #{rop.index}"
    if rop.builtin_code == B.SPLIT:
        if len(rop.inputs) != 2:
            return None
        axis, x = _constant_axis(raw, rop.inputs[0]), rop.inputs[1]
    elif rop.builtin_code == B.SPLIT_V:
        if len(rop.inputs) != 3:
            return None
        x, axis = rop.inputs[0], _constant_axis(raw, rop.inputs[2])
    else:
        if len(rop.inputs) != 1:
            return None
        x, axis = rop.inputs[0], int(rop.options.get("Axis", 0))
    if axis is None or x < 0:
        return None
    shape = raw.tensors[x].shape
    rank = len(shape)
    if rank > MAX_RANK or not -rank <= axis < rank:
        return None
    axis = axis + rank if axis < 0 else axis
    out_shapes = [raw.tensors[o].shape for o in rop.outputs]
    slices = []
    if rop.builtin_code == B.UNPACK:
        expected = tuple(shape[:axis]) + tuple(shape[axis + 1:])
        if len(rop.outputs) != shape[axis] or any(tuple(s) != expected for s in out_shapes):
            raise ModelFileError(f"{where}: outputs {[list(s) for s in out_shapes]} do not unpack "
                                 f"{list(shape)} along axis {axis}")
        for k, out in enumerate(rop.outputs):
            begin = [k if i == axis else 0 for i in range(rank)]
            end = [k + 1 if i == axis else d for i, d in enumerate(shape)]
            slices.append((out, begin, end, 1 << axis))
        return x, slices
    others_match = all(len(s) == rank and all(a == b for i, (a, b) in enumerate(zip(s, shape))
                                              if i != axis) for s in out_shapes)
    if not others_match or sum(s[axis] for s in out_shapes) != shape[axis]:
        raise ModelFileError(f"{where}: outputs {[list(s) for s in out_shapes]} do not split "
                             f"{list(shape)} along axis {axis}")
    offset = 0
    for out, s in zip(rop.outputs, out_shapes):
        begin = [offset if i == axis else 0 for i in range(rank)]
        end = [offset + s[axis] if i == axis else d for i, d in enumerate(shape)]
        slices.append((out, begin, end, 0))
        offset += s[axis]
    return x, slices
