"""TRANSPOSE_CONV: int8 transposed convolution with per-channel weights, bit-exact with TFLite
Micro's ``kernels/transpose_conv.cc`` (``reference_integer_ops::TransposeConv``).

- Inputs: x [N, H, W, C_in], filter [C_out, kh, kw, C_in] (OHWI, symmetric int8, per-channel or
  per-tensor scales), optional int32 bias [C_out]. In the .tflite operator the inputs are
  (output_shape, filter, x, bias); the output shape (a constant) is kept as an attribute.
- Padding (as TFLite Micro's ``CalculateOpData``): ``ComputePaddingHeightWidth`` of the *output*
  size with the kernel and stride (dilation 1): SAME pads ``max(0, (ceil(O / s) - 1) * s + k - O)
  // 2`` before, VALID ``max(0, ((O - k) // s) * s + k - O) // 2``.
- Arithmetic: every input pixel (iy, ix) scatters ``(x - zp_in) * w[c, fy, fx, :]`` to output pixel
  ``(iy * s_h - pad_top + fy, ix * s_w - pad_left + fx)`` when it lies inside the output; the int32
  sums plus the bias are requantised per channel with ``PopulateConvolutionQuantizationParams``'s
  multipliers (`conv_common.prepare_conv`) and clamped to the fused activation (NONE, RELU,
  RELU6, RELU_N1_TO_1: TFLite Micro applies it).
- Shape: the output_shape attribute. MACs ``N * H * W * C_in * kh * kw * C_out`` (every scatter).
  Not patchable; no overlap.
- C: ``transpose_conv`` gathers instead of scattering (for each output pixel, the taps with
  ``(o + pad - f) % s == 0`` whose input pixel exists): the same integer sums, no scratch.
- .tflite: TransposeConvOptions (padding, strides, fused activation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding

from ..errors import InvalidValueError, ModelFileError
from ..ir.ops import NO_CLAMP, OpKind
from .conv_common import (check_weighted_values, exact_matmul, prepare_conv, requantize,
                          run_weighted, weights_and_bias)
from .lowering_types import ConstArray, KernelSpec, LayerCall, c_ident, io_buffers, require_int8
from .registry import OpDef
from .tflite_common import fused_activation


@dataclass(frozen=True)
class TransposeConvAttrs:
    """TRANSPOSE_CONV to ``output_shape`` [N, OH, OW, C_out] with ``stride`` (h, w), TFLite SAME
    (``same``) or VALID padding and a fused activation ``clamp``."""

    output_shape: tuple[int, int, int, int]
    stride: tuple[int, int] = (1, 1)
    same: bool = True
    clamp: tuple[float, float] = NO_CLAMP


def transpose_conv_pads(out_size: int, kernel: int, stride: int, same: bool) -> int:
    """The leading pad of one axis (TFLite ``ComputePaddingWithOffset`` of the output size)."""
    windows = (out_size + stride - 1) // stride if same else (out_size + stride - kernel) // stride
    return max(0, (windows - 1) * stride + kernel - out_size) // 2


def transpose_conv_int8(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                        attrs: TransposeConvAttrs, x_q, w_q, y_q) -> np.ndarray:
    """TRANSPOSE_CONV of int8 x [N, H, W, C_in] with w [C_out, kh, kw, C_in] (see the module
    docstring). Returns y [N, OH, OW, C_out] int8."""
    n, in_h, in_w, in_c = x.shape
    out_c, kh, kw, filter_c = w.shape
    if filter_c != in_c:
        raise ValueError(f"filter takes {filter_c} input channels, input has {in_c}")
    _, out_h, out_w, _ = attrs.output_shape
    (sh, sw) = attrs.stride
    top = transpose_conv_pads(out_h, kh, sh, attrs.same)
    left = transpose_conv_pads(out_w, kw, sw, attrs.same)
    # A canvas holding every scattered position, cropped to the output afterwards.
    canvas_h = max((in_h - 1) * sh + kh, top + out_h)
    canvas_w = max((in_w - 1) * sw + kw, left + out_w)
    canvas = np.zeros((n, canvas_h, canvas_w, out_c), dtype=np.int64)
    cols = (x.astype(np.float64) - x_q.zero_point[0]).reshape(-1, in_c)
    weights = w.astype(np.float64)
    for fy in range(kh):
        for fx in range(kw):
            part = exact_matmul(cols, weights[:, fy, fx, :].T).reshape(n, in_h, in_w, out_c)
            canvas[:, fy:fy + (in_h - 1) * sh + 1:sh, fx:fx + (in_w - 1) * sw + 1:sw] += part
    acc = canvas[:, top:top + out_h, left:left + out_w]
    acc = acc.astype(np.int32).astype(np.int64)  # TFLite's int32 scratch
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    return requantize(acc, prepare_conv(x_q, w_q, y_q, attrs.clamp, out_c))


class TransposeConv(OpDef):
    """TRANSPOSE_CONV (see the module docstring)."""

    kinds = (OpKind.TRANSPOSE_CONV,)
    attrs_type = TransposeConvAttrs
    input_count = (2, 3)
    input_roles = ("input", "filter", "bias")
    tflite_options = BuiltinOptions.TransposeConvOptions
    tflite_option_fields = (tflite.TransposeConvOptions,
                            ("Padding", "StrideH", "StrideW", "FusedActivationFunction"))

    def output_shape(self, op, input_shapes):
        """The output_shape attribute (its channels must be the filter's first dimension)."""
        shape = tuple(op.attrs.output_shape)
        x, w = input_shapes[0], input_shapes[1]
        if len(x) != 4 or len(w) != 4 or len(shape) != 4:
            raise ValueError(f"TRANSPOSE_CONV takes a 4-D input, filter and output_shape, got "
                             f"{list(x)}, {list(w)}, {list(shape)}")
        if shape[0] != x[0] or shape[3] != w[0] or w[3] != x[3] or min(shape) < 1:
            raise ValueError(f"TRANSPOSE_CONV output_shape {list(shape)} does not fit input "
                             f"{list(x)} and filter {list(w)} (batch, channels)")
        return shape

    def check_values(self, graph, op, where):
        """Shapes that fit, strides of at least 1, representable per-channel multipliers,
        symmetric weights."""
        try:
            self.output_shape(op, [graph.tensors[n].shape for n in op.inputs])
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {exc}") from None
        if min(op.attrs.stride) < 1:
            raise InvalidValueError(f"{where}: TRANSPOSE_CONV stride {list(op.attrs.stride)} "
                                    "(must be at least 1)")
        check_weighted_values(graph, op, where)

    def macs(self, graph, op):
        """N * H * W * C_in * kh * kw * C_out."""
        n, h, w, _ = graph.tensors[op.inputs[0]].shape
        oc, kh, kw, ic = graph.tensors[op.inputs[1]].shape
        return n * h * w * ic * kh * kw * oc

    def weight_output_channels(self, graph, op):
        """C_out: the filter's first dimension."""
        return graph.tensors[op.inputs[1]].shape[0]

    def run(self, graph, op, env):
        """`transpose_conv_int8` on the op's operands."""
        return run_weighted(transpose_conv_int8, graph, op, env)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """A gathering loop over the output (see the module docstring)."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        attrs = op.attrs
        n, in_h, in_w, in_c = x_t.shape
        _, out_h, out_w, out_c = y_t.shape
        w_t = graph.tensors[op.inputs[1]]
        _, kh, kw, _ = w_t.shape
        weights, bias = weights_and_bias(graph, index, op, out_c)
        p = prepare_conv(x_t.quant, w_t.quant, y_t.quant, attrs.clamp, out_c)
        top = transpose_conv_pads(out_h, kh, attrs.stride[0], attrs.same)
        left = transpose_conv_pads(out_w, kw, attrs.stride[1], attrs.same)
        spec = KernelSpec(
            "mf_transpose_conv_s8", "transpose_conv",
            "const int8_t *in, int8_t *out, const int8_t *w, const int32_t *bias, "
            "const int32_t *mult, const int32_t *shift, int32_t N, int32_t IH, int32_t IW, "
            "int32_t IC, int32_t OH, int32_t OW, int32_t OC, int32_t KH, int32_t KW, int32_t SH, "
            "int32_t SW, int32_t top, int32_t left, int32_t in_zp, int32_t out_zp, "
            "int32_t act_min, int32_t act_max")
        args = (*io_buffers(op),
                ConstArray(c_ident(index, "w"), "int8_t", weights.astype(np.int8)),
                ConstArray(c_ident(index, "bias"), "int32_t", bias.astype(np.int32)),
                ConstArray(c_ident(index, "mult"), "int32_t", np.asarray(p.multiplier, np.int32)),
                ConstArray(c_ident(index, "shift"), "int32_t", np.asarray(p.shift, np.int32)),
                n, in_h, in_w, in_c, out_h, out_w, out_c, kh, kw, *attrs.stride, top, left,
                int(x_t.quant.zero_point[0]), p.out_zero_point, p.act_min, p.act_max)
        return LayerCall(op.name, op.kind.value, spec, args, macs=self.macs(graph, op))

    def tflite_kept_inputs(self, kind, inputs):
        """x (input 2), the filter (input 1) and the bias (input 3) when present."""
        if len(inputs) < 3 or inputs[1] < 0 or inputs[2] < 0:
            return tuple(i for i in inputs[1:] if i >= 0)
        bias = (inputs[3],) if len(inputs) > 3 and inputs[3] >= 0 else ()
        return (inputs[2], inputs[1], *bias)

    def tflite_inputs(self, kind, inputs, folded):
        """(output_shape, filter, x, bias)."""
        return [folded[0], inputs[1], inputs[0], *inputs[2:]]

    def decode_attrs(self, kind, reader, rop, where):
        """The output shape (constant input 0), strides, padding and fused activation."""
        shape = reader.constant(rop, 0, "output_shape", where).reshape(-1)
        if shape.size != 4:
            raise ModelFileError(f"{reader.source}: {where}: output_shape has {shape.size} "
                                 "values, expected 4")
        stride = reader.positive(rop, where, "StrideH", "StrideW")
        padding = int(rop.options.get("Padding", Padding.SAME))
        return TransposeConvAttrs(tuple(int(s) for s in shape), stride, padding == Padding.SAME,
                                  reader.clamp(rop, where))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """TransposeConvOptions."""
        tflite.TransposeConvOptionsStart(builder)
        tflite.TransposeConvOptionsAddPadding(builder, Padding.SAME if attrs.same else Padding.VALID)
        tflite.TransposeConvOptionsAddStrideH(builder, attrs.stride[0])
        tflite.TransposeConvOptionsAddStrideW(builder, attrs.stride[1])
        tflite.TransposeConvOptionsAddFusedActivationFunction(
            builder, fused_activation(kind, attrs.clamp, output_name))
        return tflite.TransposeConvOptionsEnd(builder)

    def folded_constants(self, attrs):
        """The output shape."""
        return (("output_shape", np.array(attrs.output_shape)),)


OP_DEFS = (TransposeConv(),)
