"""Lowering of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED to specialised kernel calls.

The constants are computed here, in Python, with the same functions the reference runtime uses
(`arith.fixedpoint`, `runtime.kernels_conv`), so the C and the oracle share one definition:

- per-channel (multiplier, shift): `conv_channel_multipliers` / `fully_connected_multipliers`;
- the clamp: `calculate_activation_range_quantized` of the fused activation;
- the input zero point folded into the bias: bias'[c] = bias[c] - zp_in * sum_k w[c, k], so the
  kernels multiply raw int8 values; taps in the padding hold zp_in and cancel exactly.

The requantisation takes the fast DSP form (SMMULR + branch-free rounding shift) only when the target
has the DSP extension, every shift is negative, and |acc| < 2^29 is proved for every channel from
|bias'| + 128 * sum |w|; otherwise the exact TFLite form.

Int4 weights (``DType.INT4``, values in [-8, 7]) are emitted packed two per byte, low nibble first, and
the convolution kernels take an ``int4`` variant that unpacks them (a pair of output channels' rows into
scratch for the matrix cores, a channel's taps for the depthwise kernel). The in-place depthwise
kernels (channel plane or row ring) have no int4 variant: those layers, and fully connected ones, keep
one weight per byte (same values, so the results are unchanged; only their Flash is not halved).
"""

from __future__ import annotations

import math

import numpy as np

from ..analysis.cost import op_macs
from ..analysis.row_ring import row_ring_rows
from ..arith.int4 import pack_int4
from ..ir import ConvAttrs, DType, FullyConnectedAttrs, Graph, Op, OpKind
from ..arith.fixedpoint import calculate_activation_range_quantized, conv_channel_multipliers
from ..runtime.kernels_conv import fully_connected_multipliers
from .kernels import REQUANT_PARAMS, KernelSpec
from .layers import Buffer, ConstArray, LayerCall, c_ident, require_int8, unsupported
from .targets import Target

_FAST_BOUND = 1 << 29
_FORM = ("exact", "fast", "fastmix")


def _weights_and_bias(graph: Graph, index: int, op: Op, out_channels: int,
                      channel_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The int8 weights and the int32 bias (zeros when absent); per-channel weight zero points must
    be 0 (symmetric int8 weights, as TFLite requires)."""
    w_t = graph.tensors[op.inputs[1]]
    if w_t.data is None:
        raise unsupported(graph, index, op, f"weight {w_t.name} has no values")
    if w_t.quant is None or any(z != 0 for z in w_t.quant.zero_point):
        raise unsupported(graph, index, op, "weights with a nonzero zero point")
    weights = np.asarray(w_t.data, dtype=np.int64)
    if len(op.inputs) > 2 and op.inputs[2]:
        bias = np.asarray(graph.tensors[op.inputs[2]].data, dtype=np.int64).reshape(-1)
    else:
        bias = np.zeros(out_channels, dtype=np.int64)
    return weights, bias


def _weight_array(index: int, values: np.ndarray, int4: bool) -> ConstArray:
    """The weights as a const int8 array: one value per byte, or with ``int4`` two values per byte
    (low nibble first, in the order of ``values`` flattened)."""
    if int4:
        return ConstArray(c_ident(index, "w"), "int8_t", np.frombuffer(pack_int4(values), np.int8))
    return ConstArray(c_ident(index, "w"), "int8_t", values.astype(np.int8))


def _requant_constants(index: int, bias_folded: np.ndarray, abs_weight_sum: np.ndarray,
                       multiplier: np.ndarray, shift: np.ndarray, target: Target,
                       per_channel: bool, out_zp: int) -> tuple[list, int]:
    """The bias, multiplier, shift and rounding arrays and the requantisation form: 0 exact, 1 fast
    (every shift negative; ``round`` = 2^(right-1) + zp_out * 2^right, so the output zero point is
    added by the rounding shift), 2 fast with mixed shifts. A fast form only where its bound is proved:
    |acc| * 2^max(shift, 0) < 2^29, and for form 1 also right <= 22 (the folded zero point cannot
    overflow). Without form 1 the ``round`` argument is a null pointer."""
    if np.any(np.abs(bias_folded) >= 1 << 31):
        raise OverflowError(f"layer {index}: folded bias does not fit int32")
    bound = int(np.max(np.abs(bias_folded) + 128 * abs_weight_sum))
    max_left = max(0, int(np.max(shift)))
    if not target.dsp or bound << max_left >= _FAST_BOUND:
        fast = 0
    elif bool(np.all(shift < 0)) and int(np.max(-shift)) <= 22:
        fast = 1
    else:
        fast = 2
    if not per_channel:
        multiplier, shift = multiplier[:1], shift[:1]
    arrays: list = [ConstArray(c_ident(index, "bias"), "int32_t", bias_folded.astype(np.int32)),
                    ConstArray(c_ident(index, "mult"), "int32_t", multiplier.astype(np.int32)),
                    ConstArray(c_ident(index, "shift"), "int32_t", shift.astype(np.int32))]
    if fast == 1:
        right = -shift.astype(np.int64)
        rounding = (np.left_shift(1, right) >> 1) + np.left_shift(out_zp, right)
        arrays.append(ConstArray(c_ident(index, "round"), "int32_t", rounding.astype(np.int32)))
    else:
        arrays.append(0)
    return arrays, fast


def _clamp(graph: Graph, op: Op) -> tuple[int, int, int]:
    y_q = graph.tensors[op.outputs[0]].quant
    act_min, act_max = calculate_activation_range_quantized(op.attrs.clamp, y_q.scale[0],
                                                            y_q.zero_point[0])
    return int(y_q.zero_point[0]), act_min, act_max


def lower_conv(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    """CONV_2D: a 1x1 stride-1 unpadded conv becomes a matrix product; others use im2col."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (x_t.name, y_t.name))
    attrs = op.attrs
    assert isinstance(attrs, ConvAttrs)
    cout, kh, kw, cin = graph.tensors[op.inputs[1]].shape
    if cin != x_t.shape[3]:
        raise unsupported(graph, index, op, "grouped convolution")
    weights, bias = _weights_and_bias(graph, index, op, cout, 0)
    return _lower_conv_weights(graph, index, op, weights, bias, target, overlapped)


def _lower_conv_weights(graph: Graph, index: int, op: Op, weights: np.ndarray, bias: np.ndarray,
                        target: Target, overlapped: bool) -> LayerCall:
    """A convolution with OHWI ``weights``: 1x1 matrix product or im2col (see `lower_conv`)."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    attrs = op.attrs
    cout, kh, kw, cin = weights.shape
    x_zp = x_t.quant.zero_point[0]
    flat = weights.reshape(cout, -1)
    bias_folded = bias - x_zp * flat.sum(axis=1)
    multiplier, shift = conv_channel_multipliers(x_t.quant.scale[0], graph.tensors[op.inputs[1]].quant.scale,
                                                 y_t.quant.scale[0], cout)
    out_zp, act_min, act_max = _clamp(graph, op)
    arrays, fast = _requant_constants(index, bias_folded, np.abs(flat).sum(axis=1), multiplier, shift,
                                      target, per_channel=True, out_zp=out_zp)
    int4 = graph.tensors[op.inputs[1]].dtype is DType.INT4
    w_arr = _weight_array(index, flat, int4)
    pads = attrs.pads
    pointwise = (kh == kw == 1 and attrs.stride == (1, 1)
                 and pads.top == pads.bottom == pads.left == pads.right == 0)
    requant_args = (w_arr, *arrays, out_zp, act_min, act_max)
    full = int(act_min == -128 and act_max == 127)
    suffix = _FORM[fast] + ("_full" if full else "") + ("_w4" if int4 else "")
    if pointwise:
        spec = KernelSpec(
            f"mf_conv1x1_{cin}x{cout}_{suffix}", "conv_1x1",
            "const int8_t *in, int8_t *out, int32_t n_pixels, " + REQUANT_PARAMS + ", int16_t *xbuf",
            {"cin": cin, "cout": cout, "fast": int(fast), "full": full, "int4": int(int4)})
        n_pixels = x_t.shape[0] * x_t.shape[1] * x_t.shape[2]
        args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), n_pixels, *requant_args,
                Buffer("scratch", op.name, "int16_t"))
        # int16 rows of four pixels, then (int4) two unpacked weight rows.
        scratch = 8 * cin + (2 * cin if int4 else 0)
        return LayerCall(op.name, op.kind.value, spec, args, scratch, op_macs(graph, op),
                         note="pointwise overlap" if overlapped else "")
    if overlapped:
        raise unsupported(graph, index, op, "an overlap on a non-pointwise convolution")
    sh, sw = attrs.stride
    dh, dw = attrs.dilation
    k = kh * kw * cin
    spec = KernelSpec(
        f"mf_conv_{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_{cin}x{cout}_{suffix}", "conv_im2col",
        "const int8_t *in, int8_t *out, int32_t H, int32_t W, int32_t OH, int32_t OW, int32_t pt, "
        "int32_t pl, int32_t in_zp, " + REQUANT_PARAMS + ", int16_t *xbuf",
        {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "dh": dh, "dw": dw, "cin": cin, "cout": cout,
         "fast": int(fast), "full": full, "int4": int(int4)})
    if x_t.shape[0] != 1:
        raise unsupported(graph, index, op, "batch size other than 1")
    args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), x_t.shape[1], x_t.shape[2],
            y_t.shape[1], y_t.shape[2], pads.top, pads.left, x_zp, *requant_args,
            Buffer("scratch", op.name, "int16_t"))
    # Two int16 im2col rows and the gather row, then (int4) two unpacked filter rows.
    return LayerCall(op.name, op.kind.value, spec, args, 5 * k + (2 * k if int4 else 0),
                     op_macs(graph, op))


def depthwise_plane(graph: Graph, op: Op) -> tuple[int, int]:
    """(PH, PW): the padded input plane the depthwise kernel gathers one channel into."""
    x_shape, y_shape = graph.tensors[op.inputs[0]].shape, graph.tensors[op.outputs[0]].shape
    _, kh, kw, _ = graph.tensors[op.inputs[1]].shape
    attrs = op.attrs
    ph = max(attrs.pads.top + x_shape[1], (y_shape[1] - 1) * attrs.stride[0] + kh)
    pw = max(attrs.pads.left + x_shape[2], (y_shape[2] - 1) * attrs.stride[1] + kw)
    return ph, pw


def dsp_row_program(ky: int, kw: int, sw: int, outputs: int) -> list[str]:
    """C statements of one kernel row of the DSP depthwise kernel for ``outputs`` (1 or 2) adjacent
    outputs: 32-bit loads of int16 input pairs ``L<p>`` (positions from the row pointer), one SMLAD per
    weight pair, and the odd last tap from one half of a loaded pair (or a halfword load)."""
    pair_positions = sorted({j * sw + 2 * p for j in range(outputs) for p in range(kw // 2)})
    loads = set(pair_positions)
    lines = [f"const int32_t L{p} = mf_load2q(r{ky} + {p});" for p in sorted(loads)]
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
                lines.append(f"a{j} = __smlabb((int32_t)r{ky}[{q}], S{ky}, a{j});")
    return lines


def lower_depthwise(graph: Graph, index: int, op: Op, target: Target, overlapped: bool,
                    row_ring: bool = False) -> LayerCall:
    """DEPTHWISE_CONV_2D: channel-plane kernel, unrolled over the window (in place when planned).
    ``row_ring`` (with ``overlapped``): the in-place kernel whose overlap buffer is a ring of output
    rows (`analysis.row_ring`, planner option ``depthwise_row_buffer``) instead of a channel plane."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (x_t.name, y_t.name))
    attrs = op.attrs
    assert isinstance(attrs, ConvAttrs)
    if attrs.dilation != (1, 1):
        raise unsupported(graph, index, op, "dilated depthwise convolution")
    if x_t.shape[0] != 1:
        raise unsupported(graph, index, op, "batch size other than 1")
    _, kh, kw, cout = graph.tensors[op.inputs[1]].shape
    dm = attrs.depth_multiplier
    if overlapped and dm != 1:
        raise unsupported(graph, index, op, "in-place depthwise with a depth multiplier")
    weights, bias = _weights_and_bias(graph, index, op, cout, 3)
    x_zp = x_t.quant.zero_point[0]
    if x_t.shape[3] == 1 and not overlapped:
        # One input channel: a depthwise conv with multiplier M is a CONV_2D with M output channels
        # (weights [1, kh, kw, M] -> OHWI [M, kh, kw, 1]); im2col needs far less scratch than a plane.
        ohwi = np.transpose(weights, (3, 1, 2, 0))
        return _lower_conv_weights(graph, index, op, ohwi, bias, target, overlapped)
    taps = weights.reshape(kh * kw, cout)
    bias_folded = bias - x_zp * taps.sum(axis=0)
    multiplier, shift = conv_channel_multipliers(x_t.quant.scale[0], graph.tensors[op.inputs[1]].quant.scale,
                                                 y_t.quant.scale[0], cout)
    out_zp, act_min, act_max = _clamp(graph, op)
    arrays, fast = _requant_constants(index, bias_folded, np.abs(taps).sum(axis=0), multiplier, shift,
                                      target, per_channel=True, out_zp=out_zp)
    int4 = graph.tensors[op.inputs[1]].dtype is DType.INT4
    # The in-place kernels read one weight per byte (no int4 variant): int4 values are stored widened.
    w_arr = _weight_array(index, taps, int4 and not overlapped)
    if overlapped:
        return _lower_depthwise_inplace(graph, index, op, w_arr, arrays, fast, out_zp, act_min, act_max,
                                        row_ring)
    sh, sw = attrs.stride
    ph, pw = depthwise_plane(graph, op)
    full = int(act_min == -128 and act_max == 127)
    channels = x_t.shape[3]
    spec = KernelSpec(
        f"mf_dw_{kh}x{kw}_s{sh}x{sw}_dm{dm}_c{channels}_pw{pw}_{_FORM[fast]}{'_full' if full else ''}"
        f"{'_w4' if int4 else ''}",
        "depthwise",
        "const int8_t *in, int8_t *out, const int8_t *w, const int32_t *bias, const int32_t *mult, "
        "const int32_t *shift, const int32_t *round, int32_t H, int32_t W, int32_t OH, int32_t OW, int32_t pt, "
        "int32_t pl, int32_t PH, int32_t in_zp, int32_t out_zp, int32_t act_min, "
        "int32_t act_max, int16_t *plane",
        {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "dm": dm, "fast": int(fast), "full": full,
         "channels": channels, "pw": pw, "int4": int(int4),
         "dsp_pair": [dsp_row_program(ky, kw, sw, 2) for ky in range(kh)],
         "dsp_single": [dsp_row_program(ky, kw, sw, 1) for ky in range(kh)]})
    args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), w_arr, *arrays, x_t.shape[1],
            x_t.shape[2], y_t.shape[1], y_t.shape[2], attrs.pads.top, attrs.pads.left,
            ph, x_zp, out_zp, act_min, act_max, Buffer("scratch", op.name, "int16_t"))
    return LayerCall(op.name, op.kind.value, spec, args, 2 * ph * pw, op_macs(graph, op),
                     note="in place" if overlapped else "")


def _lower_depthwise_inplace(graph: Graph, index: int, op: Op, w_arr: ConstArray, arrays: list,
                             fast: int, out_zp: int, act_min: int, act_max: int,
                             row_ring: bool = False) -> LayerCall:
    """In-place depthwise (output at the input's offset): the only buffer is the planner's H x W
    channel plane (its overlap buffer), so the layer needs no memory beyond the analytic figure.
    With ``row_ring`` that buffer is a ring of `row_ring_rows` output rows instead."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    attrs = op.attrs
    _, kh, kw, _ = graph.tensors[op.inputs[1]].shape
    sh, sw = attrs.stride
    full = int(act_min == -128 and act_max == 127)
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
        f"{name}_{_FORM[fast]}{'_full' if full else ''}",
        "depthwise_rowring" if row_ring else "depthwise_inplace",
        "const int8_t *in, int8_t *out, const int8_t *w, const int32_t *bias, const int32_t *mult, "
        "const int32_t *shift, const int32_t *round, int32_t H, int32_t OH, "
        "int32_t OW, int32_t pt, int32_t pl, int32_t in_zp, int32_t out_zp, int32_t act_min, "
        f"int32_t act_max, int8_t *{'ring' if row_ring else 'plane'}",
        constants)
    args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), w_arr, *arrays, x_t.shape[1],
            y_t.shape[1], y_t.shape[2], attrs.pads.top, attrs.pads.left,
            x_t.quant.zero_point[0], out_zp, act_min, act_max, Buffer("overlap", op.name))
    return LayerCall(op.name, op.kind.value, spec, args, 0, op_macs(graph, op),
                     note="in place, row ring" if row_ring else "in place")


def lower_fully_connected(graph: Graph, index: int, op: Op, target: Target,
                          overlapped: bool) -> LayerCall:
    """FULLY_CONNECTED: rows of the flattened input times the [out][in] weights."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (x_t.name, y_t.name))
    if overlapped:
        raise unsupported(graph, index, op, "an overlap on a fully connected layer")
    assert isinstance(op.attrs, FullyConnectedAttrs)
    w_t = graph.tensors[op.inputs[1]]
    cout, cin = w_t.shape
    weights, bias = _weights_and_bias(graph, index, op, cout, 0)
    x_zp = x_t.quant.zero_point[0]
    bias_folded = bias - x_zp * weights.sum(axis=1)
    multiplier, shift = fully_connected_multipliers(x_t.quant, w_t.quant, y_t.quant, cout)
    per_channel = w_t.quant.per_axis
    out_zp, act_min, act_max = _clamp(graph, op)
    arrays, fast = _requant_constants(index, bias_folded, np.abs(weights).sum(axis=1), multiplier,
                                      shift, target, per_channel=per_channel, out_zp=out_zp)
    w_arr = ConstArray(c_ident(index, "w"), "int8_t", weights.astype(np.int8))
    mstride = 1 if per_channel else 0
    full = int(act_min == -128 and act_max == 127)
    spec = KernelSpec(
        f"mf_fc_{cin}x{cout}_m{mstride}_{_FORM[fast]}{'_full' if full else ''}",
        "fully_connected", "const int8_t *in, int8_t *out, int32_t rows, " + REQUANT_PARAMS,
        {"cin": cin, "cout": cout, "fast": int(fast), "mstride": mstride, "full": full})
    rows = math.prod(x_t.shape) // cin
    args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), rows, w_arr, *arrays, out_zp,
            act_min, act_max)
    return LayerCall(op.name, op.kind.value, spec, args, 0, op_macs(graph, op))


LOWER_CONV = {
    OpKind.CONV_2D: lower_conv,
    OpKind.DEPTHWISE_CONV_2D: lower_depthwise,
    OpKind.FULLY_CONNECTED: lower_fully_connected,
}
