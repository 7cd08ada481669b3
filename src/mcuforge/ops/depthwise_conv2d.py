"""DEPTHWISE_CONV_2D: int8 depthwise convolution, bit-exact with TFLite Micro's
``reference_integer_ops::DepthwiseConvPerChannel``.

- Shape: x [N, H, W, C], filter [1, kh, kw, C * depth_multiplier]; output channel c reads input
  channel c // depth_multiplier. MACs ``OH*OW*C_out*kh*kw``.
- Window: the dilated kernel, stride and leading pad (patchable).
- Overlap: INPLACE_DEPTHWISE (TinyEngine): one output channel plane is computed into a temporary
  buffer and written into that channel's positions of the input (or a ring of output rows with the
  planner's ``depthwise_row_buffer``; see `analysis.overlap`).
- Reference kernel: one vectorised int32 multiply-add per tap (exact: |product| < 2^16).
- C: the channel-plane kernel unrolled over the window (``depthwise``), its DSP form (SMLAD pairs,
  `dsp_row_program`), and the in-place kernels ``depthwise_inplace`` / ``depthwise_rowring``. One
  input channel: a CONV_2D with depth_multiplier output channels (im2col needs far less scratch).
  The in-place kernels have no int4 variant: int4 values are stored widened there.
- .tflite: DepthwiseConv2DOptions.
- 16x8 (int16 activations, int8 weights, int64 bias): an int64 accumulator and the int64
  requantisation (TFLite Micro's int16 ``DepthwiseConvPerChannel``); C ``depthwise_s16``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from .row_ring import row_ring_rows
from ..ir.ops import ConvAttrs, OpKind
from ..ir.tensor import DType
from .conv_common import (REQUANT_FORM, ChannelQuantization, ConvolutionOp, lower_conv_weights,
                          prepare_conv, requant_constants, requantize, run_weighted,
                          weights_and_bias, zero_points)
from .weight_layout import weight_array
from .lowering_types import Buffer, ConstArray, KernelSpec, LayerCall, require_int8, unsupported
from .registry import OverlapRule
from .tflite_common import fused_activation
from .wide import is_acc32
from .wide_lowering import lower_wide_convolution
from .windows import output_hw, pad_spatial, window_taps


def depthwise_conv2d_int8(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                          attrs: ConvAttrs, x_q, w_q, y_q) -> np.ndarray:
    """DEPTHWISE_CONV_2D: x [N, H, W, C] int8, w [1, kh, kw, C * depth_multiplier] int8; output
    channel c reads input channel c // depth_multiplier. Returns y [N, OH, OW, C * dm] int8."""
    n, in_h, in_w, in_c = x.shape
    _, kh, kw, out_c = w.shape
    multiplier_count = attrs.depth_multiplier
    if out_c != in_c * multiplier_count:
        raise ValueError(f"depthwise filter has {out_c} channels, input {in_c} x depth multiplier "
                         f"{multiplier_count}")
    out_h, out_w = output_hw(in_h, in_w, (kh, kw), attrs.stride, attrs.pads, attrs.dilation)
    # int32 is exact for int8 (|product| < 2^16, fewer than 2^15 taps) and twice as fast as int64.
    wide = x.dtype == np.int16
    acc_type = np.int64 if wide else np.int32
    shifted = x.astype(acc_type) - acc_type(x_q.zero_point[0])
    if multiplier_count > 1:
        shifted = np.repeat(shifted, multiplier_count, axis=3)
    padded = pad_spatial(shifted, attrs.pads, 0)
    weights = (w[0].astype(np.int64) - zero_points(w_q, out_c)).astype(acc_type)
    acc = np.zeros((n, out_h, out_w, out_c), dtype=acc_type)
    for ky, kx, view in window_taps(padded, (kh, kw), attrs.stride, attrs.dilation,
                                    (out_h, out_w)):
        acc += view * weights[ky, kx]
    acc = acc.astype(np.int64)
    if bias is not None:
        acc += bias.astype(np.int64)
    return requantize(acc, prepare_conv(x_q, w_q, y_q, attrs.clamp, out_c, wide, is_acc32(bias)))


def depthwise_plane(graph, op) -> tuple[int, int]:
    """(PH, PW): the padded input plane the depthwise kernel gathers one channel into."""
    x_shape, y_shape = graph.tensors[op.inputs[0]].shape, graph.tensors[op.outputs[0]].shape
    _, kh, kw, _ = graph.tensors[op.inputs[1]].shape
    attrs = op.attrs
    ph = max(attrs.pads.top + x_shape[1], (y_shape[1] - 1) * attrs.stride[0] + kh)
    pw = max(attrs.pads.left + x_shape[2], (y_shape[2] - 1) * attrs.stride[1] + kw)
    return ph, pw


def dsp_row_program(ky: int, kw: int, sw: int, outputs: int, pw: int | None = None) -> list[str]:
    """C statements of one kernel row of the DSP depthwise kernel for ``outputs`` adjacent outputs:
    32-bit loads of int16 input pairs ``L<p>`` (positions from the row pointer), one SMLAD per
    weight pair, and the odd last tap from one half of a loaded pair (or a halfword load). The row
    is ``r<ky>``, or with ``pw`` (the plane width) the immediate offset ``ky * pw`` from ``r0``."""
    row = f"r{ky}" if pw is None else f"r0 + {ky * pw}"
    pair_positions = sorted({j * sw + 2 * p for j in range(outputs) for p in range(kw // 2)})
    loads = set(pair_positions)
    lines = [f"const int32_t L{p} = mf_load2q({row} + {p});" for p in sorted(loads)]
    for j in range(outputs):
        for p in range(kw // 2):
            lines.append(f"a{j} = __smlad(L{j * sw + 2 * p}, W{ky}_{p}, a{j});")
        if kw % 2:
            q = j * sw + kw - 1
            if q in loads:
                lines.append(f"a{j} = __smlabb(L{q}, S{ky}, a{j});")
            elif q - 1 in loads:
                lines.append(f"a{j} = __smlatb(L{q - 1}, S{ky}, a{j});")
            else:
                lines.append(f"a{j} = __smlabb((int32_t)({row})[{q}], S{ky}, a{j});")
    return lines


def _run_cost(rows: int, run: int) -> float:
    """Rough instructions of the padded-plane kernel's loops over ``rows`` runs of ``run`` outputs
    (four per step, then two, then one, plus a fixed cost per run): picks the plane's orientation."""
    return rows * (70 * (run // 4) + 45 * (run % 4 // 2) + 35 * (run % 2) + 25)


def _lower_inplace(graph, index, op, w_arr: ConstArray, arrays: list, fast: int,
                   params: ChannelQuantization, row_ring: bool, macs: int) -> LayerCall:
    """In-place depthwise (output at the input's offset): the only buffer is the planner's H x W
    channel plane (its overlap buffer), so the layer needs no memory beyond the analytic figure.
    With ``row_ring`` that buffer is a ring of `row_ring_rows` output rows instead."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    attrs = op.attrs
    _, kh, kw, _ = graph.tensors[op.inputs[1]].shape
    sh, sw = attrs.stride
    full = int(params.full_range)
    channels, width = x_t.shape[3], x_t.shape[2]
    constants = {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "fast": fast, "full": full,
                 "channels": channels, "width": width}
    if row_ring:
        rows = row_ring_rows(x_t.shape[1], width, y_t.shape[1], y_t.shape[2], sh, attrs.pads.top)
        constants["rows"] = rows
        name = f"mf_dwrr_{kh}x{kw}_s{sh}x{sw}_c{channels}_w{width}_r{rows}"
    else:
        name = f"mf_dwip_{kh}x{kw}_s{sh}x{sw}_c{channels}_w{width}"
    spec = KernelSpec(
        f"{name}_{REQUANT_FORM[fast]}{'_full' if full else ''}",
        "depthwise_rowring" if row_ring else "depthwise_inplace",
        "const int8_t *in, int8_t *out, const int8_t *w, const int32_t *bias, const int32_t *mult, "
        "const int32_t *shift, const int32_t *round, int32_t H, int32_t OH, "
        "int32_t OW, int32_t pt, int32_t pl, int32_t in_zp, int32_t out_zp, int32_t act_min, "
        f"int32_t act_max, int8_t *{'ring' if row_ring else 'plane'}",
        constants)
    args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), w_arr, *arrays, x_t.shape[1],
            y_t.shape[1], y_t.shape[2], attrs.pads.top, attrs.pads.left,
            x_t.quant.zero_point[0], params.out_zero_point, params.act_min, params.act_max,
            Buffer("overlap", op.name))
    return LayerCall(op.name, op.kind.value, spec, args, 0, macs,
                     note="in place, row ring" if row_ring else "in place")


class DepthwiseConv2D(ConvolutionOp):
    """DEPTHWISE_CONV_2D (see the module docstring)."""

    kinds = (OpKind.DEPTHWISE_CONV_2D,)
    overlap = OverlapRule.INPLACE_DEPTHWISE
    tflite_options = BuiltinOptions.DepthwiseConv2DOptions
    tflite_option_fields = (tflite.DepthwiseConv2DOptions, (
        "Padding", "StrideW", "StrideH", "DepthMultiplier", "FusedActivationFunction",
        "DilationWFactor", "DilationHFactor"))

    def macs(self, graph, op):
        """OH * OW * C_out * kh * kw."""
        out = graph.tensors[op.outputs[0]].shape
        _, kh, kw, oc = graph.tensors[op.inputs[1]].shape
        return out[1] * out[2] * oc * kh * kw

    def weight_output_channels(self, graph, op):
        """C_out: the filter's last dimension."""
        return graph.tensors[op.inputs[1]].shape[3]

    def run(self, graph, op, env):
        """`depthwise_conv2d_int8` on the op's operands."""
        return run_weighted(depthwise_conv2d_int8, graph, op, env)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """Channel-plane kernel, unrolled over the window (in place when planned; ``row_ring`` with
        ``overlapped``: the in-place kernel whose overlap buffer is a ring of output rows); 16x8
        the direct loop of `conv_common.lower_wide_convolution`."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        if x_t.dtype is DType.INT16:
            return lower_wide_convolution(graph, index, op, self.macs(graph, op), overlapped)
        require_int8(graph, index, op, (x_t.name, y_t.name))
        attrs = op.attrs
        assert isinstance(attrs, ConvAttrs)
        if attrs.dilation != (1, 1):
            raise unsupported(graph, index, op, "dilated depthwise convolution")
        if x_t.shape[0] != 1:
            raise unsupported(graph, index, op, "batch size other than 1")
        w_t = graph.tensors[op.inputs[1]]
        _, kh, kw, cout = w_t.shape
        dm = attrs.depth_multiplier
        if overlapped and dm != 1:
            raise unsupported(graph, index, op, "in-place depthwise with a depth multiplier")
        weights, bias = weights_and_bias(graph, index, op, cout)
        macs = self.macs(graph, op)
        x_zp = x_t.quant.zero_point[0]
        if x_t.shape[3] == 1 and not overlapped:
            # One input channel: a depthwise conv with multiplier M is a CONV_2D with M output
            # channels (weights [1, kh, kw, M] -> OHWI [M, kh, kw, 1]).
            ohwi = np.transpose(weights, (3, 1, 2, 0))
            return lower_conv_weights(graph, index, op, ohwi, bias, target, overlapped, macs)
        taps = weights.reshape(kh * kw, cout)
        bias_folded = bias - x_zp * taps.sum(axis=0)
        params = prepare_conv(x_t.quant, w_t.quant, y_t.quant, attrs.clamp, cout)
        arrays, fast = requant_constants(index, bias_folded, np.abs(taps).sum(axis=0), params,
                                         target, per_channel=True)
        int4 = w_t.dtype is DType.INT4
        w_arr = weight_array(index, taps, int4 and not overlapped)
        if overlapped:
            return _lower_inplace(graph, index, op, w_arr, arrays, fast, params, row_ring, macs)
        sh, sw = attrs.stride
        ph, pw = depthwise_plane(graph, op)
        full = int(params.full_range)
        channels = x_t.shape[3]
        oh, ow = y_t.shape[1], y_t.shape[2]
        tr = _run_cost(ow, oh) < 0.9 * _run_cost(oh, ow)   # columns give longer runs of four
        kr, kc, si, rs = (kw, kh, sh, ph) if tr else (kh, kw, sw, pw)
        spec = KernelSpec(
            f"mf_dw_{kh}x{kw}_s{sh}x{sw}_dm{dm}_c{channels}_pw{pw}{f'_ph{ph}t{ow}' if tr else ''}_"
            f"{REQUANT_FORM[fast]}{'_full' if full else ''}{'_w4' if int4 else ''}",
            "depthwise",
            "const int8_t *in, int8_t *out, const int8_t *w, const int32_t *bias, "
            "const int32_t *mult, const int32_t *shift, const int32_t *round, int32_t H, int32_t W, "
            "int32_t OH, int32_t OW, int32_t pt, int32_t pl, int32_t PH, int32_t in_zp, "
            "int32_t out_zp, int32_t act_min, int32_t act_max, int16_t *plane",
            {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "dm": dm, "fast": int(fast), "full": full,
             "channels": channels, "pw": pw, "ph": ph, "ow": ow, "tr": int(tr), "int4": int(int4),
             "inner_tail": (oh if tr else ow) % 4,
             "dsp_quad": [dsp_row_program(i, kc, si, 4, rs) for i in range(kr)],
             "dsp_pair": [dsp_row_program(i, kc, si, 2, rs) for i in range(kr)],
             "dsp_single": [dsp_row_program(i, kc, si, 1, rs) for i in range(kr)]})
        args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), w_arr, *arrays, x_t.shape[1],
                x_t.shape[2], y_t.shape[1], y_t.shape[2], attrs.pads.top, attrs.pads.left,
                ph, x_zp, params.out_zero_point, params.act_min, params.act_max,
                Buffer("scratch", op.name, "int16_t"))
        return LayerCall(op.name, op.kind.value, spec, args, 2 * ph * pw, macs,
                         note="in place" if overlapped else "")

    def lower_without_scratch(self, graph, index, op, target, overlapped):
        """In place (``overlapped``, int8): the in-place kernel, whose only buffer is the planned
        channel plane; one input channel, int8, not in place: the CONV_2D it is as the direct loop
        ``conv_direct`` (no im2col rows); several channels: the direct loop ``depthwise_direct``
        (no padded plane); None for 16x8 and int4 weights."""
        x_t, w_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
        if overlapped and x_t.dtype is DType.INT8:
            layer = self.lower(graph, index, op, target, True)
            return layer if layer.scratch_bytes == 0 else None
        if (overlapped or x_t.dtype is not DType.INT8 or w_t.dtype is not DType.INT8
                or op.attrs.dilation != (1, 1) or x_t.shape[0] != 1):
            return None
        if x_t.shape[3] != 1:
            return _direct(self.lower(graph, index, op, target, False))
        require_int8(graph, index, op, (x_t.name, op.outputs[0]))
        weights, bias = weights_and_bias(graph, index, op, w_t.shape[3])
        return lower_conv_weights(graph, index, op, np.transpose(weights, (3, 1, 2, 0)), bias,
                                  target, False, self.macs(graph, op), scratch_free=True)

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """DepthwiseConv2DOptions."""
        tflite.DepthwiseConv2DOptionsStart(builder)
        tflite.DepthwiseConv2DOptionsAddPadding(builder, padding)
        tflite.DepthwiseConv2DOptionsAddStrideH(builder, attrs.stride[0])
        tflite.DepthwiseConv2DOptionsAddStrideW(builder, attrs.stride[1])
        tflite.DepthwiseConv2DOptionsAddDilationHFactor(builder, attrs.dilation[0])
        tflite.DepthwiseConv2DOptionsAddDilationWFactor(builder, attrs.dilation[1])
        tflite.DepthwiseConv2DOptionsAddDepthMultiplier(builder, attrs.depth_multiplier)
        tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(
            builder, fused_activation(kind, attrs.clamp, output_name))
        return tflite.DepthwiseConv2DOptionsEnd(builder)


OP_DEFS = (DepthwiseConv2D(),)


def _direct(plane_layer: LayerCall) -> LayerCall:
    """The padded-plane depthwise call ``plane_layer`` as the direct loop ``depthwise_direct``: the
    same constants and arguments without the plane height and the plane."""
    spec = plane_layer.kernel
    constants = {k: spec.constants[k] for k in ("kh", "kw", "sh", "sw", "dm", "fast", "full",
                                                 "channels")}
    args = plane_layer.args
    assert isinstance(args[-1], Buffer) and args[-1].kind == "scratch"
    name = (f"mf_dwd_{constants['kh']}x{constants['kw']}_s{constants['sh']}x{constants['sw']}_"
            f"dm{constants['dm']}_c{constants['channels']}_{REQUANT_FORM[constants['fast']]}"
            f"{'_full' if constants['full'] else ''}")
    prototype = ("const int8_t *in, int8_t *out, const int8_t *w, const int32_t *bias, "
                 "const int32_t *mult, const int32_t *shift, const int32_t *round, int32_t H, "
                 "int32_t W, int32_t OH, int32_t OW, int32_t pt, int32_t pl, int32_t in_zp, "
                 "int32_t out_zp, int32_t act_min, int32_t act_max")
    return replace(plane_layer, kernel=KernelSpec(name, "depthwise_direct", prototype, constants),
                   args=args[:13] + args[14:-1], scratch_bytes=0, note="no scratch")
