"""The C lowering of 16x8 weighted layers (see `wide`): direct loops over int16 activations and int8
weights with an int64 accumulator (``fully_connected_s16``, ``conv_s16``, ``depthwise_s16``, which
share the partial ``requant_s16.inc.j2``: the int64 MultiplyByQuantizedMultiplier)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..ir.ops import ConvAttrs, Op, OpKind
from .conv_common import ChannelQuantization, prepare_conv, weights_and_bias
from .lowering_types import Buffer, ConstArray, KernelSpec, LayerCall, c_ident, unsupported
from .wide import is_acc32, weighted_dtypes

if TYPE_CHECKING:  # only for annotations
    from ..ir.graph import Graph


WIDE_PARAMS = ("const int8_t *w, const int64_t *bias, const int32_t *mult, const int32_t *shift, "
               "int32_t act_min, int32_t act_max")


def lower_wide(graph: "Graph", index: int, op: Op, params: ChannelQuantization, name: str,
               template: str, geometry: str, geometry_args: tuple, constants: dict, macs: int,
               overlapped: bool) -> LayerCall:
    """A 16x8 weighted layer: ``template``'s kernel ``name`` with the int16 input and output, the
    ``geometry`` parameters and ``geometry_args``, then the int8 weights (as stored), the int64
    bias (int32 values widened; ``acc32`` tells the kernel to wrap like TFLite Micro's int32
    accumulator), the per-channel multipliers and shifts and the clamp (`WIDE_PARAMS`)."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    weighted_dtypes(graph, op, f"operator #{index} {op.name} ({op.kind.value})")
    if overlapped:
        raise unsupported(graph, index, op, "an overlap on a 16x8 layer")
    if x_t.quant is None or y_t.quant is None or x_t.quant.per_axis or y_t.quant.per_axis:
        raise unsupported(graph, index, op, "16x8 activations must be quantised per tensor")
    channels = len(params.multiplier)
    weights, bias = weights_and_bias(graph, index, op, channels)
    acc32 = params.acc32
    arrays = (ConstArray(c_ident(index, "w"), "int8_t", weights.astype(np.int8)),
              ConstArray(c_ident(index, "bias"), "int64_t", bias.astype(np.int64)),
              ConstArray(c_ident(index, "mult"), "int32_t", params.multiplier.astype(np.int32)),
              ConstArray(c_ident(index, "shift"), "int32_t", params.shift.astype(np.int32)))
    spec = KernelSpec(f"{name}{'_a32' if acc32 else ''}", template,
                      f"const int16_t *in, int16_t *out, {geometry}, {WIDE_PARAMS}",
                      {**constants, "acc32": int(acc32)})
    args = (Buffer("tensor", x_t.name, "int16_t"), Buffer("tensor", y_t.name, "int16_t"),
            *geometry_args, *arrays, params.act_min, params.act_max)
    return LayerCall(op.name, op.kind.value, spec, args, 0, macs)


def lower_wide_convolution(graph: "Graph", index: int, op: Op, macs: int,
                           overlapped: bool) -> LayerCall:
    """CONV_2D or DEPTHWISE_CONV_2D 16x8: the direct loops of ``conv_s16`` / ``depthwise_s16``."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    w_t = graph.tensors[op.inputs[1]]
    a = op.attrs
    assert isinstance(a, ConvAttrs)
    depthwise = op.kind is OpKind.DEPTHWISE_CONV_2D
    if depthwise:
        _, kh, kw, cout = w_t.shape
    else:
        cout, kh, kw, filter_in = w_t.shape
        if filter_in != x_t.shape[3]:
            raise unsupported(graph, index, op, "grouped convolution")
    bias = graph.tensors[op.inputs[2]].data if len(op.inputs) > 2 and op.inputs[2] else None
    params = prepare_conv(x_t.quant, w_t.quant, y_t.quant, a.clamp, cout, True, is_acc32(bias))
    (sh, sw), (dh, dw), cin = a.stride, a.dilation, x_t.shape[3]
    constants = {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "dh": dh, "dw": dw, "cin": cin}
    if depthwise:
        constants["dm"] = a.depth_multiplier
        name = f"mf_dw_s16_{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_c{cin}_dm{a.depth_multiplier}"
    else:
        constants["cout"] = cout
        name = f"mf_conv_s16_{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_{cin}x{cout}"
    geometry = ("int32_t N, int32_t H, int32_t W, int32_t OH, int32_t OW, int32_t pt, int32_t pl")
    geometry_args = (x_t.shape[0], x_t.shape[1], x_t.shape[2], y_t.shape[1], y_t.shape[2],
                     a.pads.top, a.pads.left)
    return lower_wide(graph, index, op, params, name,
                      "depthwise_s16" if depthwise else "conv_s16", geometry, geometry_args,
                      constants, macs, overlapped)
