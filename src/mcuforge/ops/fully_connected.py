"""FULLY_CONNECTED: ``y[..., out] = x[..., in] @ w.T + b`` in int8, bit-exact with TFLite Micro's
``reference_integer_ops::FullyConnected``.

- Shape: the input is flattened to rows of ``in`` -> [rows, out] (or x.shape[:-1] + (out,) with
  ``keep_num_dims``). MACs ``rows*in*out``. Not patchable, no overlap.
- Prepare: (multiplier, shift) per tensor or per output channel, double(in) * double(w) / double(out)
  (`fully_connected_multipliers`; a float32 product of the two scales, as some TFLite versions take,
  differs in the last bits; the pip TFLite Micro interpreter uses double).
- Reference kernel: an exact float64 matrix product of the rows (`conv_common.exact_matmul`).
- C: ``fully_connected`` (rows times the [out][in] weights, zero point folded into the bias).
- .tflite: FullyConnectedOptions (fused activation, keep_num_dims; shuffled weights are refused).
- 16x8 (int16 activations, int8 weights, int64 bias): an int64 accumulator and the int64
  requantisation (TFLite Micro's int16 ``FullyConnected``); C ``fully_connected_s16``.
"""

from __future__ import annotations

import math

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import quantize_multiplier
from ..errors import UnsupportedOpError
from ..ir.ops import FullyConnectedAttrs, OpKind
from ..ir.tensor import DType, QuantParams
from .conv_common import (REQUANT_FORM, ChannelQuantization, check_weighted_values, exact_matmul,
                          prepare_channels, requant_constants, requantize, run_weighted,
                          weights_and_bias, zero_points)
from .lowering_types import (REQUANT_PARAMS, Buffer, ConstArray, KernelSpec, LayerCall, c_ident,
                             require_int8, unsupported)
from .registry import OpDef
from .weight_layout import interleave_channel_pairs
from .tflite_common import fused_activation
from .wide import is_acc32
from .wide_lowering import lower_wide


def fully_connected_multipliers(x_q: QuantParams, w_q: QuantParams, y_q: QuantParams,
                                out_features: int) -> tuple[np.ndarray, np.ndarray]:
    """FULLY_CONNECTED (multiplier, shift), per tensor or per output channel:
    double(in) * double(w) / double(out) (see the module docstring)."""
    w_scales = np.asarray(w_q.scale, dtype=np.float32).astype(np.float64)
    product = float(np.float32(x_q.scale[0])) * w_scales
    multiplier, shift = quantize_multiplier(product / float(np.float32(y_q.scale[0])))
    if multiplier.size == 1:
        return np.full(out_features, multiplier[0]), np.full(out_features, shift[0])
    return multiplier, shift


def prepare_fully_connected(x_q: QuantParams, w_q: QuantParams, y_q: QuantParams,
                            clamp: tuple[float, float], out_features: int,
                            wide: bool = False, acc32: bool = False) -> ChannelQuantization:
    """The requantisation of a FULLY_CONNECTED layer, used by the reference kernel and the C
    (``wide``: 16x8, int16 output; ``acc32``: with an int32 bias)."""
    multiplier, shift = fully_connected_multipliers(x_q, w_q, y_q, out_features)
    return prepare_channels(multiplier, shift, y_q, clamp, wide, acc32)


def fully_connected_int8(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                         attrs: FullyConnectedAttrs, x_q: QuantParams, w_q: QuantParams,
                         y_q: QuantParams) -> np.ndarray:
    """FULLY_CONNECTED: x [..., in] int8 (flattened to rows of ``in``), w [out, in] int8, bias [out]
    int32 or None. Returns [rows, out], or x.shape[:-1] + (out,) with ``keep_num_dims``. An int16
    ``x`` is 16x8: int64 accumulator, int16 output."""
    out_features, in_features = w.shape
    if x.size % in_features:
        raise ValueError(f"input of {x.size} values cannot be split into rows of {in_features}")
    rows = x.reshape(-1, in_features).astype(np.int64) - x_q.zero_point[0]
    weights = w.astype(np.int64) - zero_points(w_q, out_features)[:, None]
    acc = exact_matmul(rows, weights.T)
    if bias is not None:
        acc += bias.astype(np.int64)
    y = requantize(acc, prepare_fully_connected(x_q, w_q, y_q, attrs.clamp, out_features,
                                                x.dtype == np.int16, is_acc32(bias)))
    if attrs.keep_num_dims:
        return y.reshape(tuple(x.shape[:-1]) + (out_features,))
    return y


class FullyConnected(OpDef):
    """FULLY_CONNECTED (see the module docstring)."""

    input_dtypes = frozenset({DType.INT8, DType.INT16})  # int16: 16x8 activations (`ops.wide`)
    output_dtypes = frozenset({DType.INT8, DType.INT16})

    kinds = (OpKind.FULLY_CONNECTED,)
    attrs_type = FullyConnectedAttrs
    input_count = (2, 3)
    input_roles = ("input", "weights", "bias")
    tflite_options = BuiltinOptions.FullyConnectedOptions
    tflite_option_fields = (tflite.FullyConnectedOptions, (
        "FusedActivationFunction", "WeightsFormat", "KeepNumDims"))

    def output_shape(self, op, input_shapes):
        """[rows, out], or the input's leading dimensions and ``out`` with ``keep_num_dims``."""
        x, w = input_shapes[0], input_shapes[1]
        in_features = w[1]
        total = math.prod(x)
        if total % in_features:
            raise ValueError(f"input {x} cannot be flattened to rows of {in_features}")
        if op.attrs.keep_num_dims:
            if x[-1] != in_features:
                raise ValueError(f"last dim of {x} != {in_features}")
            return tuple(x[:-1]) + (w[0],)
        return (total // in_features, w[0])

    def check_values(self, graph, op, where):
        """Representable per-channel multipliers and symmetric weights (`check_weighted_values`)."""
        check_weighted_values(graph, op, where)

    def macs(self, graph, op):
        """rows * in * out."""
        out_features, in_features = graph.tensors[op.inputs[1]].shape
        rows = math.prod(graph.tensors[op.outputs[0]].shape) // out_features
        return rows * in_features * out_features

    def weight_output_channels(self, graph, op):
        """``out``: the weights' first dimension."""
        return graph.tensors[op.inputs[1]].shape[0]

    def run(self, graph, op, env):
        """`fully_connected_int8` on the op's operands."""
        return run_weighted(fully_connected_int8, graph, op, env)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """Rows of the flattened input times the [out][in] weights (16x8: ``fully_connected_s16``)."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        assert isinstance(op.attrs, FullyConnectedAttrs)
        w_t = graph.tensors[op.inputs[1]]
        cout, cin = w_t.shape
        if x_t.dtype is DType.INT16:
            bias = graph.tensors[op.inputs[2]].data if len(op.inputs) > 2 and op.inputs[2] else None
            params = prepare_fully_connected(x_t.quant, w_t.quant, y_t.quant, op.attrs.clamp, cout,
                                             True, is_acc32(bias))
            return lower_wide(graph, index, op, params, f"mf_fc_s16_{cin}x{cout}",
                              "fully_connected_s16", "int32_t rows",
                              (math.prod(x_t.shape) // cin,), {"cin": cin, "cout": cout},
                              self.macs(graph, op), overlapped)
        require_int8(graph, index, op, (x_t.name, y_t.name))
        if overlapped:
            raise unsupported(graph, index, op, "an overlap on a fully connected layer")
        weights, bias = weights_and_bias(graph, index, op, cout)
        x_zp = x_t.quant.zero_point[0]
        bias_folded = bias - x_zp * weights.sum(axis=1)
        params = prepare_fully_connected(x_t.quant, w_t.quant, y_t.quant, op.attrs.clamp, cout)
        per_channel = w_t.quant.per_axis
        arrays, fast = requant_constants(index, bias_folded, np.abs(weights).sum(axis=1), params,
                                         target, per_channel=per_channel)
        # From eight outputs on, the input is expanded to int16 once per row and the weights are
        # laid out in channel pairs (mf_gemm_pairs_1row); below, the int8 one-row core.
        pairs = cout >= 8
        w_arr = ConstArray(c_ident(index, "w"), "int8_t",
                           interleave_channel_pairs(weights) if pairs else weights.astype(np.int8))
        mstride = 1 if per_channel else 0
        full = int(params.full_range)
        spec = KernelSpec(
            f"mf_fc_{cin}x{cout}_m{mstride}_{REQUANT_FORM[fast]}{'_full' if full else ''}",
            "fully_connected", "const int8_t *in, int8_t *out, int32_t rows, " + REQUANT_PARAMS
            + (", int16_t *xbuf" if pairs else ""),
            {"cin": cin, "cout": cout, "fast": int(fast), "mstride": mstride, "full": full,
             "pairs": int(pairs)})
        rows = math.prod(x_t.shape) // cin
        args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), rows, w_arr, *arrays,
                params.out_zero_point, params.act_min, params.act_max)
        if pairs:
            args = (*args, Buffer("scratch", op.name, "int16_t"))
        return LayerCall(op.name, op.kind.value, spec, args, 2 * cin if pairs else 0,
                         self.macs(graph, op))

    def decode_attrs(self, kind, reader, rop, where):
        """Fused activation and keep_num_dims; shuffled weights are unsupported."""
        if int(rop.options.get("WeightsFormat", 0)) != 0:
            raise UnsupportedOpError(f"unsupported shuffled weights in {where} "
                                     f"(tensor {reader.names[rop.outputs[0]]})")
        return FullyConnectedAttrs(reader.clamp(rop, where),
                                   bool(rop.options.get("KeepNumDims", False)))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """FullyConnectedOptions."""
        tflite.FullyConnectedOptionsStart(builder)
        tflite.FullyConnectedOptionsAddFusedActivationFunction(
            builder, fused_activation(kind, attrs.clamp, output_name))
        tflite.FullyConnectedOptionsAddKeepNumDims(builder, attrs.keep_num_dims)
        return tflite.FullyConnectedOptionsEnd(builder)


OP_DEFS = (FullyConnected(),)
