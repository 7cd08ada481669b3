"""What CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED share (TFLite Micro's ``conv_common.cc``).

All three compute

    acc[c] = sum_k (x_k - x_zero_point) * (w[c, k] - w_zero_point[c]) + bias[c]     (int32)
    y[c]   = clamp(MultiplyByQuantizedMultiplier(acc[c], M[c], shift[c]) + y_zero_point)

`ChannelQuantization` is that requantisation, prepared once (per-channel multipliers and shifts,
output zero point, integer clamp) and used by the reference kernels (`requantize`) and the C
lowerings alike. The reference kernels' dot products run as float64 matrix products (BLAS): every
product is an integer below 2^16 in magnitude and every partial sum stays far below 2^53, so the
float64 result is the exact integer in any summation order (`exact_matmul`).

The C lowerings fold the input zero point into the bias: bias'[c] = bias[c] - zp_in * sum_k w[c, k],
so the kernels multiply raw int8 values; taps in the padding hold zp_in and cancel exactly. The
requantisation takes the fast DSP form (SMMULR + branch-free rounding shift) only when the target has
the DSP extension, every shift is negative, and |acc| < 2^29 is proved for every channel from
|bias'| + 128 * sum |w|; otherwise the exact TFLite form (`requant_constants`).

Int4 weights (``DType.INT4``, values in [-8, 7]) are emitted packed two per byte, low nibble first,
and the convolution kernels take an ``int4`` variant that unpacks them.

16x8 (int16 activations, zero point 0, int8 symmetric weights, int64 or int32 bias), as TFLite
Micro's int16 ``ConvPerChannel`` / ``DepthwiseConvPerChannel`` / ``FullyConnected``: the accumulator
is int64, requantised with the int64 ``MultiplyByQuantizedMultiplier`` (the multiplier rounded to
16 bits, one rounding shift by 15 - shift; `multiply_by_quantized_multiplier_int64`), clamped to the
int16 activation range; no output offset (zero point 0). `ChannelQuantization.wide` marks it;
`wide.weighted_dtypes` refuses every other dtype combination in one line; the C lowering is
`wide_lowering`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import ThreadpoolController

from ..arith.fixedpoint import (calculate_activation_range_quantized, conv_channel_multipliers,
                                multiply_by_quantized_multiplier, wrap_int32)
from ..errors import InvalidValueError, ModelFileError
from ..ir.ops import ConvAttrs, Op, OpKind
from ..ir.checks import check_multiplier, check_requantisation, quantised_scales
from ..ir.shapes import conv_output_hw
from ..ir.tensor import DType, QuantParams
from . import reference_support as ref
from .lowering_types import (REQUANT_PARAMS, Buffer, ConstArray, KernelSpec, LayerCall,
                             LoweringTarget, c_ident, unsupported)
from .registry import OpDef
from .weight_layout import interleave_channel_pairs, weight_array
from .wide import check_wide_values, multiply_by_quantized_multiplier_int64, weighted_dtypes

if TYPE_CHECKING:  # only for annotations
    from ..ir.graph import Graph

FAST_BOUND = 1 << 29
REQUANT_FORM = ("exact", "fast", "fastmix")


@dataclass(frozen=True)
class ChannelQuantization:
    """The prepared requantisation of a weighted op: per-output-channel ``multiplier`` and
    ``shift``, the output zero point and the integer clamp of the fused activation."""

    multiplier: np.ndarray = field(compare=False, repr=False)
    shift: np.ndarray = field(compare=False, repr=False)
    out_zero_point: int
    act_min: int
    act_max: int
    wide: bool = False
    acc32: bool = False

    @property
    def full_range(self) -> bool:
        """The clamp is the whole output range, int8 (or int16 when ``wide``): the kernels skip it."""
        if self.wide:
            return self.act_min == -32768 and self.act_max == 32767
        return self.act_min == -128 and self.act_max == 127


def prepare_channels(multiplier: np.ndarray, shift: np.ndarray, y_q: QuantParams,
                     clamp: tuple[float, float], wide: bool = False,
                     acc32: bool = False) -> ChannelQuantization:
    """`ChannelQuantization` of multipliers already derived, for output ``y_q`` and ``clamp``
    (``wide``: a 16x8 layer, int16 output; ``acc32``: its bias is int32, so TFLite Micro's
    accumulator is int32 and the requantisation the int32 one)."""
    y_zp = int(y_q.zero_point[0])
    qmin, qmax = (-32768, 32767) if wide else (-128, 127)
    act_min, act_max = calculate_activation_range_quantized(clamp, y_q.scale[0], y_zp, qmin, qmax)
    return ChannelQuantization(multiplier, shift, y_zp, act_min, act_max, wide, wide and acc32)


def prepare_conv(x_q: QuantParams, w_q: QuantParams, y_q: QuantParams, clamp: tuple[float, float],
                 out_channels: int, wide: bool = False, acc32: bool = False
                 ) -> ChannelQuantization:
    """CONV_2D / DEPTHWISE_CONV_2D: double(in) * double(w[c]) / double(out) per channel."""
    multiplier, shift = conv_channel_multipliers(x_q.scale[0], w_q.scale, y_q.scale[0], out_channels)
    return prepare_channels(multiplier, shift, y_q, clamp, wide, acc32)


def requantize(acc: np.ndarray, params: ChannelQuantization) -> np.ndarray:
    """Scale an accumulator to the output: MultiplyByQuantizedMultiplier, add the output zero
    point, clamp to the fused activation range. int8 output, or int16 with ``params.wide`` (the
    int64 form of the multiplication; with ``acc32`` the int32 one on the wrapped accumulator)."""
    if params.acc32:
        y = multiply_by_quantized_multiplier(wrap_int32(acc), params.multiplier, params.shift)
        return np.clip(y + params.out_zero_point, params.act_min, params.act_max).astype(np.int16)
    if params.wide:
        y = multiply_by_quantized_multiplier_int64(acc, params.multiplier, params.shift)
        return np.clip(y + params.out_zero_point, params.act_min, params.act_max).astype(np.int16)
    y = multiply_by_quantized_multiplier(acc, params.multiplier, params.shift) + params.out_zero_point
    return np.clip(y, params.act_min, params.act_max).astype(np.int8)


def requantize_accumulator(acc: np.ndarray, multiplier, shift, y_q: QuantParams,
                           clamp: tuple[float, float], qmin: int = -128, qmax: int = 127
                           ) -> np.ndarray:
    """Scale an int32 accumulator to the output: MultiplyByQuantizedMultiplier, add the output zero
    point, clamp to the fused activation range. Returns int8 (or the dtype of [qmin, qmax])."""
    y_scale, y_zp = y_q.scale[0], y_q.zero_point[0]
    act_min, act_max = calculate_activation_range_quantized(clamp, y_scale, y_zp, qmin, qmax)
    y = multiply_by_quantized_multiplier(acc, multiplier, shift) + y_zp
    dtype = np.int8 if qmin >= -128 and qmax <= 127 else np.int16
    return np.clip(y, act_min, act_max).astype(dtype)


def zero_points(q: QuantParams, channels: int) -> np.ndarray:
    """The weight zero point of every output channel (one per tensor repeated, or per channel)."""
    zp = np.asarray(q.zero_point, dtype=np.int64)
    return np.full(channels, zp[0], dtype=np.int64) if zp.size == 1 else zp


@functools.lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer matrix product a @ b through float64 BLAS (exact for int8-sized operands).

    BLAS runs single-threaded here: these products are small and many, and OpenBLAS's thread
    start-up and spinning cost more than they save (3x the CPU time when the cores are busy)."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        product = np.asarray(a, dtype=np.float64) @ np.asarray(b, dtype=np.float64)
    return product.astype(np.int64)  # already integral: the conversion is exact


# --- shape rule, window and .tflite attributes of the two convolutions -----------------------------

def conv_output_shape(op: Op, input_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """Output shape of CONV_2D (OHWI filter) and DEPTHWISE_CONV_2D ([1, kh, kw, C * dm] filter)."""
    a = op.attrs
    assert isinstance(a, ConvAttrs)
    x = input_shapes[0]
    kind = op.kind
    if len(x) != 4:
        raise ValueError(f"{kind.value} needs a 4-D NHWC input, got {x}")
    w = input_shapes[1]
    if kind is OpKind.CONV_2D:
        out_c, kh, kw, in_c = w
        if in_c == 0 or x[3] % in_c:
            raise ValueError(f"filter {w} takes {in_c} input channels, input has {x[3]}")
    else:
        _, kh, kw, out_c = w
        if out_c != x[3] * a.depth_multiplier:
            raise ValueError(f"depthwise filter {w} needs {x[3] * a.depth_multiplier} channels, "
                             f"input has {x[3]}")
    if len(input_shapes) > 2 and tuple(input_shapes[2]) != (out_c,):
        raise ValueError(f"bias shape {input_shapes[2]} != ({out_c},)")
    oh, ow = conv_output_hw(x[1], x[2], (kh, kw), a.stride, a.pads, a.dilation)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"input {x} too small for kernel {(kh, kw)}")
    return (x[0], oh, ow, out_c)


def conv_window(graph: "Graph", op: Op, axis: int) -> tuple[int, int, int]:
    """(dilated kernel, stride, pad before) of a convolution along spatial ``axis``."""
    a = op.attrs
    assert isinstance(a, ConvAttrs)
    kernel = graph.tensor(op.inputs[1]).shape[axis]
    dilation = a.dilation[axis - 1]
    pad = a.pads.top if axis == 1 else a.pads.left
    return (kernel - 1) * dilation + 1, a.stride[axis - 1], pad


def decode_conv_attrs(kind: OpKind, reader, rop, where: str) -> ConvAttrs:
    """ConvAttrs of a CONV_2D or DEPTHWISE_CONV_2D record (the depth multiplier from the shapes, as
    TFLite's kernels check it)."""
    x = reader.spatial_input(rop, where)
    if len(rop.inputs) < 2 or rop.inputs[1] < 0:
        raise ModelFileError(f"{reader.source}: {where} has no filter")
    w = reader.shape(rop.inputs[1])
    if len(w) != 4:
        raise ModelFileError(f"{reader.source}: {where}: filter has shape {list(w)}, expected 4-D")
    stride = reader.positive(rop, where, "StrideH", "StrideW")
    dilation = reader.positive(rop, where, "DilationHFactor", "DilationWFactor")
    pads = reader.pads(rop, where, (x[1], x[2]), (w[1], w[2]), stride, dilation)
    multiplier = 1
    if kind is OpKind.DEPTHWISE_CONV_2D and x[3] > 0:
        multiplier = max(w[3] // x[3], 1)
    return ConvAttrs(stride, pads, dilation, reader.clamp(rop, where), multiplier)


def conv_tflite_window(graph: "Graph", op: Op):
    """(kernel, stride, dilation, pads) of a convolution for the .tflite padding option."""
    a = op.attrs
    assert isinstance(a, ConvAttrs)
    _, kh, kw, _ = graph.tensors[op.inputs[1]].shape
    return (kh, kw), a.stride, a.dilation, a.pads


def check_weighted_values(graph: "Graph", op: Op, where: str) -> None:
    """The value checks of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: every per-channel
    multiplier ``in * w[c] / out`` is representable (as `prepare_conv` derives it), the input's
    requantisation too, and the weights are symmetric. A layer with an int16 activation must be
    16x8 throughout, within the 16x8 ranges (`wide.check_wide_values`)."""
    if DType.INT16 in (graph.tensor(op.inputs[0]).dtype, graph.tensor(op.outputs[0]).dtype):
        check_wide_values(graph, op, where)
    x = quantised_scales(graph, op.inputs[0])
    y = quantised_scales(graph, op.outputs[0])
    if x is not None and y is not None:
        for channel, w_scale in enumerate(quantised_scales(graph, op.inputs[1]) or ()):
            check_multiplier(where, f"output (channel {channel}: input * filter / output)",
                             x[0] * w_scale / y[0])
    check_requantisation(graph, op, where, op.inputs[:1])
    check_symmetric_weights(graph, op, where)


def check_symmetric_weights(graph: "Graph", op: Op, where: str) -> None:
    """TFLite's int8 spec: the weights of a weighted op are symmetric, zero point 0 in every
    channel. TFLite Micro asserts it (``TFLITE_DCHECK(filter->params.zero_point == 0)`` in
    ``CalculateOpDataFullyConnected``), its per-channel conv kernels ignore the weight zero point
    and the C kernels here fold none, so a nonzero one is refused at import."""
    w_t = graph.tensors[op.inputs[1]]
    if w_t.quant is None or w_t.dtype is DType.FLOAT32:
        return
    for channel, zero_point in enumerate(w_t.quant.zero_point):
        if zero_point != 0:
            raise InvalidValueError(f"{where}: {_weights_role(op)} tensor {w_t.name}: zero point "
                                    f"{zero_point} of channel {channel} (weights must be symmetric, "
                                    "zero point 0)")


def _weights_role(op: Op) -> str:
    """How refusals name the second input of a weighted op: "weights" or "filter"."""
    return "weights" if op.kind is OpKind.FULLY_CONNECTED else "filter"


def run_weighted(kernel, graph: "Graph", op: Op, env) -> np.ndarray:
    """Run a weighted op's reference ``kernel(x, w, bias, attrs, x_q, w_q, y_q)`` (int4 weights
    arrive unpacked, one int8 value each; int16 activations with int8 weights are 16x8)."""
    x_name, w_name = op.inputs[0], op.inputs[1]
    weighted_dtypes(graph, op, ref.op_location(graph, op))
    bias = ref.value_of(graph, env, op.inputs[2]) if len(op.inputs) > 2 else None
    return kernel(ref.value_of(graph, env, x_name), ref.value_of(graph, env, w_name), bias, op.attrs,
                  ref.quant_of(graph, op, x_name), ref.quant_of(graph, op, w_name),
                  ref.quant_of(graph, op, op.outputs[0]))


class ConvolutionOp(OpDef):
    """What CONV_2D and DEPTHWISE_CONV_2D share: `ConvAttrs`, the shape rule, the window, the
    .tflite attributes and padding (an explicit PAD is written in front of pads TFLite cannot say)."""

    input_dtypes = frozenset({DType.INT8, DType.INT16})  # int16: 16x8 activations (`ops.wide`)
    output_dtypes = frozenset({DType.INT8, DType.INT16})

    attrs_type = ConvAttrs
    explicit_pad_op = True
    input_count = (2, 3)
    input_roles = ("input", "filter", "bias")

    def check_values(self, graph, op, where):
        """Representable per-channel multipliers and symmetric weights (`check_weighted_values`)."""
        check_weighted_values(graph, op, where)

    def output_shape(self, op, input_shapes):
        """[N, OH, OW, C_out] (`conv_output_shape`)."""
        return conv_output_shape(op, input_shapes)

    def window(self, graph, op, axis):
        """The dilated kernel, stride and leading pad along ``axis``."""
        return conv_window(graph, op, axis)

    def decode_attrs(self, kind, reader, rop, where):
        """Strides, dilations, SAME/VALID pads, the fused activation (`decode_conv_attrs`)."""
        return decode_conv_attrs(kind, reader, rop, where)

    def tflite_window(self, graph, op):
        """Filter size, strides, dilations and pads."""
        return conv_tflite_window(graph, op)


# --- C lowering helpers ----------------------------------------------------------------------------

def weights_and_bias(graph: "Graph", index: int, op: Op, out_channels: int
                     ) -> tuple[np.ndarray, np.ndarray]:
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


def requant_constants(index: int, bias_folded: np.ndarray, abs_weight_sum: np.ndarray,
                      params: ChannelQuantization, target: LoweringTarget,
                      per_channel: bool) -> tuple[list, int]:
    """The bias, multiplier, shift and rounding arrays and the requantisation form: 0 exact, 1 fast
    (every shift negative; ``round`` = 2^(right-1) + zp_out * 2^right, so the output zero point is
    added by the rounding shift), 2 fast with mixed shifts. A fast form only where its bound is proved:
    |acc| * 2^max(shift, 0) < 2^29, and for form 1 also right <= 22 (the folded zero point cannot
    overflow). Without form 1 the ``round`` argument is a null pointer."""
    multiplier, shift, out_zp = params.multiplier, params.shift, params.out_zero_point
    if np.any(np.abs(bias_folded) >= 1 << 31):
        raise OverflowError(f"layer {index}: folded bias does not fit int32")
    bound = int(np.max(np.abs(bias_folded) + 128 * abs_weight_sum))
    max_left = max(0, int(np.max(shift)))
    if not target.dsp or bound << max_left >= FAST_BOUND:
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


def lower_conv_weights(graph: "Graph", index: int, op: Op, weights: np.ndarray, bias: np.ndarray,
                       target: LoweringTarget, overlapped: bool, macs: int,
                       scratch_free: bool = False) -> LayerCall:
    """A convolution with OHWI ``weights``: a 1x1 stride-1 unpadded one is a matrix product
    (``conv_1x1``, which may overlap its input pixel by pixel), others use im2col. With
    ``scratch_free`` (int8 weights) kernels that need no scratch (`OpDef.lower_without_scratch`):
    the direct loop ``conv_direct``, or overlapped, ``conv_1x1_inplace`` (one pixel at a time
    through the overlap's buffer)."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    attrs = op.attrs
    cout, kh, kw, cin = weights.shape
    x_zp = x_t.quant.zero_point[0]
    flat = weights.reshape(cout, -1)
    bias_folded = bias - x_zp * flat.sum(axis=1)
    w_t = graph.tensors[op.inputs[1]]
    params = prepare_conv(x_t.quant, w_t.quant, y_t.quant, attrs.clamp, cout)
    arrays, fast = requant_constants(index, bias_folded, np.abs(flat).sum(axis=1), params, target,
                                     per_channel=True)
    int4 = w_t.dtype is DType.INT4
    pads = attrs.pads
    pointwise = (kh == kw == 1 and attrs.stride == (1, 1)
                 and pads.top == pads.bottom == pads.left == pads.right == 0)
    if not int4 and not scratch_free:  # in the order the kernels (mf_gemm_q15_pairs) read them
        if not pointwise and flat.shape[1] % 4 >= 2:
            # im2col rows padded to a multiple of four taps with zero weights: one or two extra pair
            # steps instead of a scalar tail of two or three taps (a tail of one stays: cheaper).
            flat = np.pad(flat, ((0, 0), (0, -flat.shape[1] % 4)))
        w_arr = ConstArray(c_ident(index, "w"), "int8_t", interleave_channel_pairs(flat))
    else:  # OHWI rows, as int4 and the kernels without scratch read them
        w_arr = weight_array(index, flat, int4)
    requant_args = (w_arr, *arrays, params.out_zero_point, params.act_min, params.act_max)
    full = int(params.full_range)
    suffix = REQUANT_FORM[fast] + ("_full" if full else "") + ("_w4" if int4 else "")
    if scratch_free and overlapped:
        if not pointwise:
            raise unsupported(graph, index, op, "an overlap on a non-pointwise convolution")
        spec = KernelSpec(
            f"mf_conv1x1ip_{cin}x{cout}_{suffix}", "conv_1x1_inplace",
            "const int8_t *in, int8_t *out, int32_t n_pixels, " + REQUANT_PARAMS + ", int8_t *xp",
            {"cin": cin, "cout": cout, "fast": int(fast), "full": full})
        n_pixels = x_t.shape[0] * x_t.shape[1] * x_t.shape[2]
        args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), n_pixels, *requant_args,
                Buffer("overlap", op.name))
        return LayerCall(op.name, op.kind.value, spec, args, 0, macs,
                         note="pointwise overlap, no scratch")
    if scratch_free:
        return _lower_direct(graph, index, op, weights, requant_args, suffix, fast, full, macs)
    if pointwise:
        n_pixels = x_t.shape[0] * x_t.shape[1] * x_t.shape[2]
        args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), n_pixels, *requant_args,
                Buffer("scratch", op.name, "int16_t"))
        prototype = "const int8_t *in, int8_t *out, int32_t n_pixels, " + REQUANT_PARAMS + ", int16_t *xbuf"
        if int4 or target.optimise != "size":  # specialised for its shape
            spec = KernelSpec(f"mf_conv1x1_{cin}x{cout}_{suffix}", "conv_1x1", prototype,
                              {"cin": cin, "cout": cout, "fast": int(fast), "full": full,
                               "int4": int(int4), "generic": 0})
        else:  # --size: one function for every shape, the channel counts are arguments
            spec = KernelSpec(f"mf_conv1x1_{suffix}", "conv_1x1",
                              prototype + ", int32_t cin, int32_t cout",
                              {"fast": int(fast), "full": full, "int4": 0, "generic": 1})
            args = (*args, cin, cout)
        # int16 rows of four pixels, then (int4) two unpacked weight rows.
        scratch = 8 * cin + (2 * cin if int4 else 0)
        return LayerCall(op.name, op.kind.value, spec, args, scratch, macs,
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
    # int4: two int16 im2col rows, the gather row and two unpacked filter rows; int8: four int16
    # rows and the gather row, of K padded as the weights are.
    k4 = k + (-k % 4 if k % 4 >= 2 else 0)
    return LayerCall(op.name, op.kind.value, spec, args, 7 * k if int4 else 9 * k4, macs)


def _lower_direct(graph: "Graph", index: int, op: Op, weights: np.ndarray, requant_args: tuple,
                  suffix: str, fast: int, full: int, macs: int) -> LayerCall:
    """The scratch-free direct convolution (``conv_direct``), int8 OHWI weights."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x_t.shape[0] != 1:
        raise unsupported(graph, index, op, "batch size other than 1")
    cout, kh, kw, cin = weights.shape
    attrs = op.attrs
    (sh, sw), (dh, dw), pads = attrs.stride, attrs.dilation, attrs.pads
    spec = KernelSpec(
        f"mf_convd_{kh}x{kw}_s{sh}x{sw}_d{dh}x{dw}_{cin}x{cout}_{suffix}", "conv_direct",
        "const int8_t *in, int8_t *out, int32_t H, int32_t W, int32_t OH, int32_t OW, int32_t pt, "
        "int32_t pl, int32_t in_zp, " + REQUANT_PARAMS,
        {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "dh": dh, "dw": dw, "cin": cin, "cout": cout,
         "fast": int(fast), "full": full})
    args = (Buffer("tensor", x_t.name), Buffer("tensor", y_t.name), x_t.shape[1], x_t.shape[2],
            y_t.shape[1], y_t.shape[2], pads.top, pads.left, x_t.quant.zero_point[0], *requant_args)
    return LayerCall(op.name, op.kind.value, spec, args, 0, macs, note="no scratch")
