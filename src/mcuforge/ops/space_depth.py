"""SPACE_TO_DEPTH and DEPTH_TO_SPACE: NHWC blocks of ``block_size`` x ``block_size`` pixels move
between the spatial dimensions and the channels (bytes move, values do not change).

As TFLite Micro's ``kernels/space_to_depth.cc`` / ``depth_to_space.cc`` (``reference_ops::
SpaceToDepth`` / ``DepthToSpace``, the DCR order): for a block offset (by, bx) and a channel c,
``SPACE_TO_DEPTH(x)[n, h, w, (by * b + bx) * C + c] = x[n, h * b + by, w * b + bx, c]`` and
DEPTH_TO_SPACE is its inverse. The input must be 4-D, its height and width (SPACE_TO_DEPTH) or
its depth (DEPTH_TO_SPACE, by b * b) divisible; input and output share one quantisation (int8).
Not patchable; no overlap. C: ``space_depth`` (one loop nest over the (n, h, w, by, bx) blocks
copying C contiguous bytes; the direction is baked in). .tflite: SpaceToDepthOptions /
DepthToSpaceOptions with block_size.
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


@dataclass(frozen=True)
class BlockAttrs:
    """SPACE_TO_DEPTH / DEPTH_TO_SPACE: the side of the square block of pixels."""

    block_size: int


def block_shape(kind: OpKind, shape: tuple[int, ...], block: int) -> tuple[int, ...]:
    """The output shape of ``kind`` for an NHWC ``shape`` (ValueError when it does not divide)."""
    name = kind.value
    if len(shape) != 4:
        raise ValueError(f"{name} input has shape {list(shape)}, expected 4-D NHWC")
    if block < 1:
        raise ValueError(f"{name} block_size is {block} (must be at least 1)")
    n, h, w, c = shape
    if kind is OpKind.SPACE_TO_DEPTH:
        if h % block or w % block:
            raise ValueError(f"{name} input height {h} and width {w} must be multiples of "
                             f"block_size {block}")
        return (n, h // block, w // block, c * block * block)
    if c % (block * block):
        raise ValueError(f"{name} input depth {c} must be a multiple of block_size^2 "
                         f"{block * block}")
    return (n, h * block, w * block, c // (block * block))


def space_to_depth(x: np.ndarray, block: int) -> np.ndarray:
    """SPACE_TO_DEPTH of an NHWC array (any dtype)."""
    n, h, w, c = x.shape
    blocks = x.reshape(n, h // block, block, w // block, block, c).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(blocks).reshape(n, h // block, w // block, block * block * c)


def depth_to_space(x: np.ndarray, block: int) -> np.ndarray:
    """DEPTH_TO_SPACE of an NHWC array (any dtype), the inverse of `space_to_depth`."""
    n, h, w, c = x.shape
    out_c = c // (block * block)
    pixels = x.reshape(n, h, w, block, block, out_c).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(pixels).reshape(n, h * block, w * block, out_c)


class SpaceDepth(OpDef):
    """SPACE_TO_DEPTH or DEPTH_TO_SPACE (see the module docstring)."""

    attrs_type = BlockAttrs

    def __init__(self, kind: OpKind, options: int, table):
        self.kinds = (kind,)
        self.tflite_options = options
        self.tflite_option_fields = (table, ("BlockSize",))

    def output_shape(self, op, input_shapes):
        """The NHWC shape with the blocks moved (see `block_shape`)."""
        return block_shape(op.kind, tuple(input_shapes[0]), op.attrs.block_size)

    def check_values(self, graph, op, where):
        """A 4-D input the block divides; input and output quantised alike."""
        x_t = graph.tensors[op.inputs[0]]
        try:
            block_shape(op.kind, x_t.shape, op.attrs.block_size)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {exc}") from None
        check_same_quantisation(graph, op, where, f"{op.kind.value} moves values unchanged")

    def run(self, graph, op, env):
        """`space_to_depth` or `depth_to_space` (any dtype)."""
        x = ref.value_of(graph, env, op.inputs[0])
        if op.kind is OpKind.SPACE_TO_DEPTH:
            return space_to_depth(x, op.attrs.block_size)
        return depth_to_space(x, op.attrs.block_size)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """One copy of C bytes per (n, h, w, by, bx) block, h and w those of the deep tensor."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        to_depth = op.kind is OpKind.SPACE_TO_DEPTH
        deep, shallow = (y_t, x_t) if to_depth else (x_t, y_t)
        n, h, w, _ = deep.shape
        spec = KernelSpec(
            f"mf_{op.kind.value.lower()}_s8", "space_depth",
            "const int8_t *in, int8_t *out, int32_t N, int32_t H, int32_t W, int32_t B, "
            "int32_t C", {"to_depth": to_depth})
        args = (*io_buffers(op), n, h, w, op.attrs.block_size, shallow.shape[3])
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """block_size of the options table."""
        return BlockAttrs(int(rop.options.get("BlockSize", 0)))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """The options table with block_size."""
        prefix = "SpaceToDepthOptions" if kind is OpKind.SPACE_TO_DEPTH else "DepthToSpaceOptions"
        getattr(tflite, prefix + "Start")(builder)
        getattr(tflite, prefix + "AddBlockSize")(builder, attrs.block_size)
        return getattr(tflite, prefix + "End")(builder)


OP_DEFS = (SpaceDepth(OpKind.SPACE_TO_DEPTH, BuiltinOptions.SpaceToDepthOptions,
                      tflite.SpaceToDepthOptions),
           SpaceDepth(OpKind.DEPTH_TO_SPACE, BuiltinOptions.DepthToSpaceOptions,
                      tflite.DepthToSpaceOptions))
