"""RESIZE_NEAREST_NEIGHBOR of an [N, H, W, C] tensor, as TFLite Micro.

Source pixels are picked with TFLite's float32 ``GetNearestNeighbor`` (align_corners,
half_pixel_centers). Shape [N, size_h, size_w, C]; not patchable; no overlap. C: ``resize_nearest``
copies C-byte pixels through per-layer row and column index tables that this op's own reference
resize gives for a map of source pixel numbers. .tflite: ResizeNearestNeighborOptions; the size
input is kept as an attribute.
"""

from __future__ import annotations

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import round_half_away
from ..errors import ModelFileError
from ..ir.ops import OpKind, ResizeAttrs
from . import reference_support as ref
from .lowering_types import Buffer, ConstArray, KernelSpec, LayerCall, c_ident, require_int8, unsupported
from .registry import OpDef


def _nearest_indices(input_size: int, output_size: int, align_corners: bool,
                     half_pixel_centers: bool) -> np.ndarray:
    """TFLite ``GetNearestNeighbor`` for every output coordinate (float32 arithmetic)."""
    if align_corners and output_size > 1:
        scale = np.float32(input_size - 1) / np.float32(output_size - 1)
    else:
        scale = np.float32(input_size) / np.float32(output_size)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    coords = (np.arange(output_size, dtype=np.float32) + offset) * scale
    picked = round_half_away(coords) if align_corners else np.floor(coords)
    index = np.minimum(picked.astype(np.int64), input_size - 1)
    if half_pixel_centers:
        index = np.maximum(index, 0)
    return index


def resize_nearest_neighbor(x: np.ndarray, attrs: ResizeAttrs) -> np.ndarray:
    """RESIZE_NEAREST_NEIGHBOR of x [N, H, W, C] to ``attrs.size``."""
    _, in_h, in_w, _ = x.shape
    out_h, out_w = attrs.size
    rows = _nearest_indices(in_h, out_h, attrs.align_corners, attrs.half_pixel_centers)
    cols = _nearest_indices(in_w, out_w, attrs.align_corners, attrs.half_pixel_centers)
    return x[:, rows][:, :, cols]


def decode_resize_attrs(reader, rop, where: str) -> ResizeAttrs:
    """The size (a constant input of two values) and the corner options of a RESIZE_* op, as the
    .tflite reader hands them to `OpDef.decode_attrs`."""
    size = reader.constant(rop, 1, "size", where).reshape(-1)
    if size.shape != (2,):
        raise ModelFileError(f"{reader.source}: {where}: size has {size.size} values, expected 2")
    return ResizeAttrs((int(size[0]), int(size[1])), bool(rop.options.get("AlignCorners", False)),
                       bool(rop.options.get("HalfPixelCenters", False)))


class ResizeNearestNeighbor(OpDef):
    """RESIZE_NEAREST_NEIGHBOR (see the module docstring)."""

    kinds = (OpKind.RESIZE_NEAREST_NEIGHBOR,)
    attrs_type = ResizeAttrs
    tflite_options = BuiltinOptions.ResizeNearestNeighborOptions
    tflite_option_fields = (tflite.ResizeNearestNeighborOptions, (
        "AlignCorners", "HalfPixelCenters"))
    folds_constant_input = True

    def output_shape(self, op, input_shapes):
        """[N, size_h, size_w, C]."""
        x = input_shapes[0]
        return (x[0], op.attrs.size[0], op.attrs.size[1], x[3])

    def run(self, graph, op, env):
        """`resize_nearest_neighbor` (any dtype)."""
        return resize_nearest_neighbor(ref.value_of(graph, env, op.inputs[0]), op.attrs)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """A copy through row and column index tables."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        attrs = op.attrs
        assert isinstance(attrs, ResizeAttrs)
        if len(x_t.shape) != 4:
            raise unsupported(graph, index, op,
                              "RESIZE_NEAREST_NEIGHBOR of a tensor of rank other than 4")
        n, h, w, c = x_t.shape
        out_h, out_w = attrs.size
        # The reference resizing a map of source pixel numbers gives the source of every output
        # pixel; nearest-neighbour picks rows and columns independently.
        source = resize_nearest_neighbor(np.arange(h * w, dtype=np.int64).reshape(1, h, w, 1), attrs)
        rows, cols = source[0, :, 0, 0] // w, source[0, 0, :, 0] % w
        spec = KernelSpec(
            "mf_resize_nn_s8", "resize_nearest",
            "const int8_t *in, int8_t *out, int32_t N, int32_t H, int32_t W, int32_t C, int32_t OH, "
            "int32_t OW, const int32_t *rows, const int32_t *cols")
        args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), n, h, w, c, out_h, out_w,
                ConstArray(c_ident(index, "rows"), "int32_t", rows.astype(np.int32)),
                ConstArray(c_ident(index, "cols"), "int32_t", cols.astype(np.int32)))
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """The size (a constant input of two values) and the corner options."""
        return decode_resize_attrs(reader, rop, where)

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """ResizeNearestNeighborOptions."""
        tflite.ResizeNearestNeighborOptionsStart(builder)
        tflite.ResizeNearestNeighborOptionsAddAlignCorners(builder, attrs.align_corners)
        tflite.ResizeNearestNeighborOptionsAddHalfPixelCenters(builder, attrs.half_pixel_centers)
        return tflite.ResizeNearestNeighborOptionsEnd(builder)

    def folded_constants(self, attrs):
        """The size."""
        return (("size", np.array(attrs.size)),)


OP_DEFS = (ResizeNearestNeighbor(),)
