"""Fold shape computations whose values are known when the model is read.

Keras models with a dynamic batch size compute a RESHAPE's target at run time: ``SHAPE(x)`` gives
x's dimensions, ``STRIDED_SLICE`` picks the batch, ``PACK`` joins it with the constant rest
(``[batch, -1]``), and RESHAPE reads the packed tensor. In a .tflite file every shape is static
(the batch is 1), so the whole chain is a constant. `fold_shape_computations` evaluates, in
operator order, every operator whose output is an int32/int64 tensor computable from constants and
static shapes, turns that output into a constant tensor (a new buffer) and removes the operator;
RESHAPE, which keeps a constant shape input as its attribute, then reads the folded value. It works
on the decoded records, before the IR is built, so SHAPE needs no op module.

Folded kinds: SHAPE (of any tensor with a static shape), STRIDED_SLICE (the masks TFLite Micro
honours), PACK, CONCATENATION (no fused activation), GATHER (batch_dims 0) and RESHAPE, SQUEEZE,
EXPAND_DIMS (the output tensor's shape) of known int values. An operator writing a graph output, a
value that does not fit its output tensor's shape, or anything these rules cannot evaluate is left
alone (the reader then converts or refuses it as before). The values are integers, so folding is
exact. A RESHAPE whose output the converter declared with placeholder 1s for dimensions it could
not infer (a size that differs from its input's) takes the shape its folded target gives, as
TFLite resizes it at run time (Keras' UpSampling2D: EXPAND_DIMS -> TILE -> RESHAPE). The operators left keep their index in the file (errors name the file's operator #).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tflite.BuiltinOperator import BuiltinOperator as B
from tflite.TensorType import TensorType

from ..ops.strided_slice import StridedSliceAttrs, strided_slice
from .tflite_decode import RawModel, RawOperator, RawTensor

_INT_TYPES = {TensorType.INT32: "<i4", TensorType.INT64: "<i8"}
_RESHAPES = (B.RESHAPE, B.SQUEEZE, B.EXPAND_DIMS)


def fold_shape_computations(raw: RawModel) -> RawModel:
    """A copy of ``raw`` without the operators whose int outputs are known at import, their
    outputs made constants (see the module docstring); ``raw`` itself when nothing folds."""
    known: dict[int, np.ndarray] = {}
    for t in raw.tensors:
        payload = raw.buffers[t.buffer] if 0 <= t.buffer < len(raw.buffers) else b""
        if payload and t.type_code in _INT_TYPES and all(d >= 0 for d in t.shape):
            values = np.frombuffer(payload, dtype=_INT_TYPES[t.type_code])
            if values.size == int(np.prod(t.shape, dtype=np.int64)):
                known[t.index] = values.reshape(t.shape).astype(np.int64)
    graph_outputs = set(raw.outputs)
    tensors, buffers, kept = list(raw.tensors), list(raw.buffers), []
    for rop in raw.operators:
        out = rop.outputs[0] if len(rop.outputs) == 1 else -1
        value = None
        if out >= 0 and out not in graph_outputs and raw.tensors[out].type_code in _INT_TYPES:
            try:
                value = _evaluate(raw, rop, known)
            except (ValueError, IndexError, TypeError):
                value = None
        if value is None or tuple(value.shape) != tuple(raw.tensors[out].shape):
            kept.append(rop)
            if rop.builtin_code == B.RESHAPE and out >= 0:
                tensors[out] = _placeholder_fixed(raw, rop, known, tensors[out])
            continue
        known[out] = value
        tensors[out] = replace(tensors[out], buffer=len(buffers))
        buffers.append(value.astype(_INT_TYPES[raw.tensors[out].type_code]).tobytes())
    if len(kept) == len(raw.operators):
        return raw
    # The kept operators keep their index in the file, so that errors name the file's operator.
    return replace(raw, tensors=tuple(tensors), buffers=tuple(buffers), operators=tuple(kept))


def _placeholder_fixed(raw: RawModel, rop: RawOperator, known: dict[int, np.ndarray],
                       output: RawTensor) -> RawTensor:
    """A RESHAPE's output with the shape its (now known) shape input gives, where the file's
    declared shape cannot be right: the converter writes 1 for each dimension its shape
    inference left dynamic (``shape_signature`` -1), which TFLite resizes at run time. Only a
    declared shape whose size differs from the input's, and that differs from a target of the
    input's size only where it holds such a 1, is replaced."""
    if len(rop.inputs) < 2 or rop.inputs[1] not in known:
        return output
    source = raw.tensors[rop.inputs[0]].shape
    target = [int(v) for v in known[rop.inputs[1]].reshape(-1)]
    size = int(np.prod(source, dtype=np.int64))
    if target.count(-1) == 1:
        rest = int(np.prod([d for d in target if d != -1], dtype=np.int64))
        target[target.index(-1)] = size // rest if rest and size % rest == 0 else -1
    if (any(d < 0 for d in (*source, *target)) or int(np.prod(target, dtype=np.int64)) != size
            or int(np.prod(output.shape, dtype=np.int64)) == size or len(target) != len(output.shape)
            or any(d != t and d != 1 for d, t in zip(output.shape, target))):
        return output
    return replace(output, shape=tuple(target))


def _evaluate(raw: RawModel, rop: RawOperator, known: dict[int, np.ndarray]) -> np.ndarray | None:
    """The int value of ``rop``'s output, or None when it is not known at import."""
    code, options = rop.builtin_code, rop.options
    inputs = [i for i in rop.inputs if i >= 0]
    if code == B.SHAPE:
        shape = raw.tensors[inputs[0]].shape
        return np.array(shape, dtype=np.int64) if all(d >= 0 for d in shape) else None
    if not inputs or any(i not in known for i in inputs):
        return None
    values = [known[i] for i in inputs]
    if code == B.STRIDED_SLICE:
        if options.get("EllipsisMask") or options.get("NewAxisMask") or options.get("Offset"):
            return None
        begin, end, strides = (tuple(int(v) for v in a.reshape(-1)) for a in values[1:4])
        attrs = StridedSliceAttrs(begin, end, strides, int(options.get("BeginMask", 0)),
                                  int(options.get("EndMask", 0)),
                                  int(options.get("ShrinkAxisMask", 0)))
        return strided_slice(values[0], attrs)
    if code == B.PACK:
        return np.stack(values, axis=int(options.get("Axis", 0)))
    if code == B.CONCATENATION and not options.get("FusedActivationFunction"):
        return np.concatenate(values, axis=int(options.get("Axis", 0)))
    if code == B.GATHER and not options.get("BatchDims"):
        return np.take(values[0], values[1], axis=int(options.get("Axis", 0)))
    if code in _RESHAPES:
        return values[0].reshape(raw.tensors[rop.outputs[0]].shape)
    return None
