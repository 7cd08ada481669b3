"""SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND of a 3-D [N, H, C] or 4-D [N, H, W, C] tensor (bytes move,
values do not change): how converters express a dilated convolution, as
SPACE_TO_BATCH_ND -> CONV_2D / DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND.

As TFLite Micro's ``kernels/space_to_batch_nd.cc`` / ``batch_to_space_nd.cc``
(``reference_ops::SpaceToBatchND`` / ``BatchToSpaceND``; a 3-D tensor is handled as [N, H, 1, C]
with block width 1). With block (bh, bw):

- SPACE_TO_BATCH_ND pads H and W by ``paddings`` [[top, bottom], [left, right]] with the output
  zero point, then output batch ``(sh * bw + sw) * N + n`` holds the padded pixels
  ``(h * bh + sh, w * bw + sw)`` of batch n. The padded sizes must be multiples of the block.
- BATCH_TO_SPACE_ND is its inverse, then removes ``crops`` [[top, bottom], [left, right]]; the
  input batch must be a multiple of bh * bw.

The padding value is the output zero point, as TFLite's kernel sets it (``output_offset``).
TFLite Micro never sets its ``SpaceToBatchParams.output_offset``: it pads with whatever its
persistent arena buffer holds (0 in a fresh arena, other bytes once the heap is reused), so its
padded values are indeterminate and only the unpadded values can be compared with it. Input
and output share one quantisation. Not patchable; no overlap. C: ``space_batch`` (one C-byte copy
or zero-point fill per output pixel; the direction is baked in). .tflite: the empty
SpaceToBatchNDOptions / BatchToSpaceNDOptions tables; the block shape and the paddings or crops
(constant inputs) are kept as attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import InvalidValueError
from ..ir.checks import check_same_quantisation
from ..ir.ops import OpKind
from . import reference_support as ref
from .lowering_types import KernelSpec, LayerCall, io_buffers, require_int8
from .registry import OpDef
from .tflite_common import empty_table

S2B, B2S = OpKind.SPACE_TO_BATCH_ND, OpKind.BATCH_TO_SPACE_ND


@dataclass(frozen=True)
class SpaceBatchAttrs:
    """SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND: ``block_shape`` (one value per spatial dimension)
    and ``pads``, (before, after) per spatial dimension: the paddings (SPACE_TO_BATCH_ND) or the
    crops (BATCH_TO_SPACE_ND)."""

    block_shape: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]


def _four_d(shape, attrs: SpaceBatchAttrs):
    """(N, H, W, C), (bh, bw), ((top, bottom), (left, right)) of a 3-D or 4-D case."""
    if len(shape) not in (3, 4):
        raise ValueError(f"input has shape {list(shape)}, expected 3-D or 4-D")
    spatial = len(shape) - 2
    if len(attrs.block_shape) != spatial or len(attrs.pads) != spatial:
        raise ValueError(f"block_shape {list(attrs.block_shape)} and paddings/crops "
                         f"{[list(p) for p in attrs.pads]} must have {spatial} entries for a "
                         f"{len(shape)}-D input")
    if any(b < 1 for b in attrs.block_shape):
        raise ValueError(f"block_shape {list(attrs.block_shape)} (each must be at least 1)")
    if any(p < 0 for pair in attrs.pads for p in pair):
        raise ValueError(f"paddings/crops {[list(p) for p in attrs.pads]} (must be at least 0)")
    if spatial == 1:
        return (shape[0], shape[1], 1, shape[2]), (attrs.block_shape[0], 1), (attrs.pads[0], (0, 0))
    return tuple(shape), tuple(attrs.block_shape), tuple(attrs.pads)


def space_batch_shape(kind: OpKind, shape: tuple[int, ...], attrs: SpaceBatchAttrs) -> tuple[int, ...]:
    """The output shape (ValueError when the block, paddings or crops do not fit)."""
    (n, h, w, c), (bh, bw), ((top, bottom), (left, right)) = _four_d(shape, attrs)
    if kind is S2B:
        ph, pw = h + top + bottom, w + left + right
        if ph % bh or pw % bw:
            raise ValueError(f"padded spatial size {ph} x {pw} is not a multiple of block_shape "
                             f"{list(attrs.block_shape)}")
        out = (n * bh * bw, ph // bh, pw // bw, c)
    else:
        if n % (bh * bw):
            raise ValueError(f"input batch {n} is not a multiple of the block size {bh * bw}")
        oh, ow = h * bh - top - bottom, w * bw - left - right
        if oh < 1 or ow < 1:
            raise ValueError(f"crops {[list(p) for p in attrs.pads]} leave {oh} x {ow} pixels")
        out = (n // (bh * bw), oh, ow, c)
    return out if len(shape) == 4 else (out[0], out[1], out[3])


def space_to_batch(x: np.ndarray, attrs: SpaceBatchAttrs, pad_value: int) -> np.ndarray:
    """SPACE_TO_BATCH_ND (any dtype; padding with ``pad_value``)."""
    shape, (bh, bw), ((top, bottom), (left, right)) = _four_d(x.shape, attrs)
    n, _, _, c = shape
    padded = np.pad(x.reshape(shape), ((0, 0), (top, bottom), (left, right), (0, 0)),
                    constant_values=pad_value)
    ph, pw = padded.shape[1:3]
    y = padded.reshape(n, ph // bh, bh, pw // bw, bw, c).transpose(2, 4, 0, 1, 3, 5)
    return np.ascontiguousarray(y).reshape(space_batch_shape(S2B, x.shape, attrs))


def batch_to_space(x: np.ndarray, attrs: SpaceBatchAttrs) -> np.ndarray:
    """BATCH_TO_SPACE_ND (any dtype), the inverse of `space_to_batch` then the crops."""
    (n, h, w, c), (bh, bw), ((top, bottom), (left, right)) = _four_d(x.shape, attrs)
    y = x.reshape(bh, bw, n // (bh * bw), h, w, c).transpose(2, 3, 0, 4, 1, 5)
    y = y.reshape(n // (bh * bw), h * bh, w * bw, c)[:, top:h * bh - bottom, left:w * bw - right]
    return np.ascontiguousarray(y).reshape(space_batch_shape(B2S, x.shape, attrs))


class SpaceBatch(OpDef):
    """SPACE_TO_BATCH_ND or BATCH_TO_SPACE_ND (see the module docstring)."""

    attrs_type = SpaceBatchAttrs
    folds_constant_input = True

    def __init__(self, kind: OpKind, options: int):
        self.kinds = (kind,)
        self.tflite_options = options

    def output_shape(self, op, input_shapes):
        """See `space_batch_shape`."""
        return space_batch_shape(op.kind, tuple(input_shapes[0]), op.attrs)

    def check_values(self, graph, op, where):
        """Block and paddings or crops that fit the input; input and output quantised alike."""
        x_t = graph.tensors[op.inputs[0]]
        try:
            space_batch_shape(op.kind, x_t.shape, op.attrs)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {op.kind.value} {exc}") from None
        check_same_quantisation(graph, op, where, f"{op.kind.value} moves values unchanged")

    def run(self, graph, op, env):
        """`space_to_batch` (padding with the output zero point, 0 when unquantised) or
        `batch_to_space`."""
        x = ref.value_of(graph, env, op.inputs[0])
        if op.kind is B2S:
            return batch_to_space(x, op.attrs)
        y_q = graph.tensors[op.outputs[0]].quant
        return space_to_batch(x, op.attrs, int(y_q.zero_point[0]) if y_q is not None else 0)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """One C-byte copy (or padding fill) per output pixel."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        (n, h, w, c), (bh, bw), ((top, _), (left, _)) = _four_d(x_t.shape, op.attrs)
        out = space_batch_shape(op.kind, x_t.shape, op.attrs)
        out_h, out_w = out[1], (out[2] if len(out) == 4 else 1)
        spec = KernelSpec(
            f"mf_{op.kind.value.lower()}_s8", "space_batch",
            "const int8_t *in, int8_t *out, int32_t N, int32_t IH, int32_t IW, int32_t C, "
            "int32_t OB, int32_t OH, int32_t OW, int32_t BH, int32_t BW, int32_t top, "
            "int32_t left, int32_t pad", {"to_batch": op.kind is S2B})
        args = (*io_buffers(op), n, h, w, c, out[0], out_h, out_w, bh, bw, top, left,
                int(y_t.quant.zero_point[0]))
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """The block shape and the paddings or crops (constant inputs 1 and 2)."""
        block = reader.constant(rop, 1, "block_shape", where).reshape(-1)
        pads = reader.constant(rop, 2, "paddings" if kind is S2B else "crops", where).reshape(-1, 2)
        return SpaceBatchAttrs(tuple(int(b) for b in block),
                               tuple((int(a), int(b)) for a, b in pads))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """The empty options table."""
        if kind is S2B:
            return empty_table(builder, tflite.SpaceToBatchNDOptionsStart,
                               tflite.SpaceToBatchNDOptionsEnd)
        return empty_table(builder, tflite.BatchToSpaceNDOptionsStart,
                           tflite.BatchToSpaceNDOptionsEnd)

    def folded_constants(self, attrs):
        """The block shape and the paddings or crops."""
        return (("block_shape", np.array(attrs.block_shape)),
                ("pads", np.array(attrs.pads).reshape(-1, 2)))


OP_DEFS = (SpaceBatch(S2B, BuiltinOptions.SpaceToBatchNDOptions),
           SpaceBatch(B2S, BuiltinOptions.BatchToSpaceNDOptions))
