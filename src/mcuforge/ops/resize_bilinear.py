"""RESIZE_BILINEAR of an int8 [N, H, W, C] tensor, bit-exact with TFLite Micro's
``kernels/resize_bilinear.cc`` (``reference_ops::ResizeBilinearInteger``, no floating point).

- Per output axis (`axis_table`): the Q10 scale ``(1024 * in + out / 2) / out``, or with
  ``align_corners`` (and out > 1) ``(1024 * (in - 1) + (out - 1) / 2) / (out - 1)``; output
  coordinate v maps to ``s = v * scale`` (``half_pixel_centers``: ``+ scale / 2 - 512``), the lower
  source ``max(s / 1024, 0)``, the upper ``min((s + 1023) / 1024, in - 1)`` (C division) and the
  Q10 weight ``s - 1024 * lower``, which may be negative at the first pixel.
- Per value: ``acc = Σ x[y, x] * wy * wx`` over the four corners (Q20), then
  ``(acc ± 2^19) / 2^20`` rounded half away from zero (TFLite without TFLITE_SINGLE_ROUNDING). The
  raw values are interpolated, so input and output must share one quantisation; align_corners and
  half_pixel_centers exclude each other, as in TFLite.
- Shape [N, size_h, size_w, C]; not patchable; no overlap.
- C: ``resize_bilinear`` with the generator's per-layer tables of lower and upper rows and columns
  and their weights; the accumulator is int32 (|acc| <= 128 * 1536^2 < 2^31).
  .tflite: ResizeBilinearOptions; the size input is kept as an attribute.
"""

from __future__ import annotations

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import InvalidValueError
from ..ir.checks import check_same_quantisation
from ..ir.ops import OpKind, ResizeAttrs
from . import reference_support as ref
from .lowering_types import Buffer, ConstArray, KernelSpec, LayerCall, c_ident, require_int8, unsupported
from .registry import OpDef
from .resize_nearest_neighbor import decode_resize_attrs


def _c_div(a: np.ndarray, b: int) -> np.ndarray:
    """C integer division (truncation toward zero)."""
    return np.sign(a) * (np.abs(a) // b)


def axis_table(in_size: int, out_size: int, align_corners: bool,
               half_pixel_centers: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower source, upper source, Q10 weight of the upper) for every output coordinate."""
    scale = ((1 << 10) * in_size + out_size // 2) // out_size
    if align_corners and out_size > 1:
        scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    scaled = np.arange(out_size, dtype=np.int64) * scale
    if half_pixel_centers:
        scaled += scale // 2 - (1 << 9)
    lower = np.maximum(_c_div(scaled, 1 << 10), 0)
    upper = np.minimum(_c_div(scaled + (1 << 10) - 1, 1 << 10), in_size - 1)
    if out_size and int(lower.max()) > in_size - 1:  # only for outputs over ~1000 times larger
        raise ValueError(f"RESIZE_BILINEAR from {in_size} to {out_size}: TFLite's Q10 source "
                         "coordinates leave the input")
    return lower, upper, scaled - (1 << 10) * lower


def resize_bilinear_int8(x: np.ndarray, attrs: ResizeAttrs) -> np.ndarray:
    """RESIZE_BILINEAR of int8 x [N, H, W, C] to ``attrs.size`` (see the module docstring)."""
    _, in_h, in_w, _ = x.shape
    y0, y1, wy = axis_table(in_h, attrs.size[0], attrs.align_corners, attrs.half_pixel_centers)
    x0, x1, wx = axis_table(in_w, attrs.size[1], attrs.align_corners, attrs.half_pixel_centers)
    v = x.astype(np.int64)
    wy, wx = wy[None, :, None, None], wx[None, None, :, None]
    one = 1 << 10
    acc = (v[:, y0][:, :, x0] * (one - wy) * (one - wx) + v[:, y1][:, :, x0] * wy * (one - wx)
           + v[:, y0][:, :, x1] * (one - wy) * wx + v[:, y1][:, :, x1] * wy * wx)
    rounded = _c_div(acc + np.where(acc > 0, 1 << 19, -(1 << 19)), 1 << 20)
    return rounded.astype(np.int8)


class ResizeBilinear(OpDef):
    """RESIZE_BILINEAR (see the module docstring)."""

    kinds = (OpKind.RESIZE_BILINEAR,)
    attrs_type = ResizeAttrs
    tflite_options = BuiltinOptions.ResizeBilinearOptions
    tflite_option_fields = (tflite.ResizeBilinearOptions, ("AlignCorners", "HalfPixelCenters"))
    folds_constant_input = True

    def output_shape(self, op, input_shapes):
        """[N, size_h, size_w, C]."""
        x = input_shapes[0]
        return (x[0], op.attrs.size[0], op.attrs.size[1], x[3])

    def check_values(self, graph, op, where):
        """Not both corner options; input and output quantised alike."""
        if op.attrs.align_corners and op.attrs.half_pixel_centers:
            raise InvalidValueError(f"{where}: RESIZE_BILINEAR align_corners and "
                                    "half_pixel_centers are both set (TFLite allows one)")
        check_same_quantisation(graph, op, where, "RESIZE_BILINEAR interpolates raw values")

    def run(self, graph, op, env):
        """`resize_bilinear_int8`."""
        ref.check_int8(graph, op, (op.inputs[0], op.outputs[0]))
        return resize_bilinear_int8(ref.value_of(graph, env, op.inputs[0]), op.attrs)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """The interpolation through per-layer row and column tables."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        attrs = op.attrs
        if len(x_t.shape) != 4:
            raise unsupported(graph, index, op, "RESIZE_BILINEAR of a tensor of rank other than 4")
        n, h, w, c = x_t.shape
        out_h, out_w = attrs.size
        tables = []
        for axis, (size_in, size_out) in (("y", (h, out_h)), ("x", (w, out_w))):
            for what, values in zip(("0", "1", "w"), axis_table(
                    size_in, size_out, attrs.align_corners, attrs.half_pixel_centers)):
                tables.append(ConstArray(c_ident(index, axis + what), "int32_t",
                                         values.astype(np.int32)))
        spec = KernelSpec(
            "mf_resize_bilinear_s8", "resize_bilinear",
            "const int8_t *in, int8_t *out, int32_t N, int32_t H, int32_t W, int32_t C, "
            "int32_t OH, int32_t OW, const int32_t *y0, const int32_t *y1, const int32_t *wy, "
            "const int32_t *x0, const int32_t *x1, const int32_t *wx")
        args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), n, h, w, c, out_h, out_w,
                *tables)
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """The size (a constant input of two values) and the corner options."""
        return decode_resize_attrs(reader, rop, where)

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """ResizeBilinearOptions."""
        tflite.ResizeBilinearOptionsStart(builder)
        tflite.ResizeBilinearOptionsAddAlignCorners(builder, attrs.align_corners)
        tflite.ResizeBilinearOptionsAddHalfPixelCenters(builder, attrs.half_pixel_centers)
        return tflite.ResizeBilinearOptionsEnd(builder)

    def folded_constants(self, attrs):
        """The size."""
        return (("size", np.array(attrs.size, dtype=np.int32)),)


OP_DEFS = (ResizeBilinear(),)
