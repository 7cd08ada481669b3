"""Lowering of the ops without weights: ADD, pooling, MEAN, PAD, RESHAPE, SOFTMAX, TRANSPOSE and
CONCATENATION here; RELU, RELU6, HARD_SWISH, LOGISTIC, int8 -> int8 QUANTIZE, MUL (with
broadcasting), ADD / MUL with a one-valued constant operand and RESIZE_NEAREST_NEIGHBOR in
`lower_elementwise` (unary ops as per-layer 256-entry tables computed with the reference runtime).
`LOWER_MISC` maps all of these op kinds to their lowering. Parameters are computed exactly as the
reference runtime's kernels compute them (`runtime.kernels_elementwise`, `kernels_pool`,
`kernels_misc`)."""

from __future__ import annotations

import math

import numpy as np

from ..ir import (ConcatAttrs, ElementwiseAttrs, Graph, MeanAttrs, Op, OpKind, PadAttrs, PoolAttrs,
                  SoftmaxAttrs, TransposeAttrs)
from ..arith.fixedpoint import (calculate_activation_range_quantized, calculate_input_radius,
                                preprocess_softmax_scaling, quantize_multiplier_scalar)
from .kernels import KernelSpec
from .layers import Buffer, LayerCall, require_int8, unsupported
from .lower_elementwise import LOWER_ELEMENTWISE, lower_binary_scalar, scalar_constant_operand
from .targets import Target

_ADD_LEFT_SHIFT = 20


def _four_d(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) * (4 - len(shape)) + tuple(shape)


def _io(graph: Graph, op: Op) -> tuple[Buffer, Buffer]:
    return Buffer("tensor", op.inputs[0]), Buffer("tensor", op.outputs[0])


def lower_add(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    """ADD of two same-shape int8 tensors (the output may overlap either input), or of a tensor and
    a one-valued constant (a 256-entry table, `lower_elementwise`)."""
    position = scalar_constant_operand(graph, op)
    if position is not None:
        return lower_binary_scalar(graph, index, op, target, overlapped, position)
    a_t, b_t, y_t = (graph.tensors[n] for n in (*op.inputs, op.outputs[0]))
    require_int8(graph, index, op, (a_t.name, b_t.name, y_t.name))
    if not (a_t.shape == b_t.shape == y_t.shape):
        raise unsupported(graph, index, op, "ADD with broadcasting")
    assert isinstance(op.attrs, ElementwiseAttrs)
    s1, s2, so = (float(np.float32(t.quant.scale[0])) for t in (a_t, b_t, y_t))
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier_scalar(s1 / twice_max)
    m2, sh2 = quantize_multiplier_scalar(s2 / twice_max)
    mo, sho = quantize_multiplier_scalar(twice_max / ((1 << _ADD_LEFT_SHIFT) * so))
    y_zp = y_t.quant.zero_point[0]
    act_min, act_max = calculate_activation_range_quantized(op.attrs.clamp, y_t.quant.scale[0], y_zp)
    fast = int(target.dsp and max(sh1, sh2, sho) <= 0)
    full = int(act_min == -128 and act_max == 127)
    spec = KernelSpec(
        f"mf_add_s8{'_fast' if fast else ''}{'_full' if full else ''}", "add",
        "const int8_t *in1, const int8_t *in2, int8_t *out, int32_t n, int32_t in1_offset, "
        "int32_t in2_offset, int32_t left_shift, int32_t in1_mult, int32_t in1_shift, "
        "int32_t in2_mult, int32_t in2_shift, int32_t out_mult, int32_t out_shift, int32_t out_zp, "
        "int32_t act_min, int32_t act_max", {"fast": fast, "full": full})
    args = (Buffer("tensor", a_t.name), Buffer("tensor", b_t.name), Buffer("tensor", y_t.name),
            y_t.num_elements, -a_t.quant.zero_point[0], -b_t.quant.zero_point[0], _ADD_LEFT_SHIFT,
            m1, sh1, m2, sh2, mo, sho, y_zp, act_min, act_max)
    return LayerCall(op.name, op.kind.value, spec, args, note="in place" if overlapped else "")


def lower_pool(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    """AVERAGE_POOL_2D and MAX_POOL_2D."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (x_t.name, y_t.name))
    attrs = op.attrs
    assert isinstance(attrs, PoolAttrs)
    if x_t.shape[0] != 1:
        raise unsupported(graph, index, op, "batch size other than 1")
    average = op.kind is OpKind.AVERAGE_POOL_2D
    act_min, act_max = calculate_activation_range_quantized(attrs.clamp, y_t.quant.scale[0],
                                                            y_t.quant.zero_point[0])
    (kh, kw), (sh, sw) = attrs.kernel, attrs.stride
    spec = KernelSpec(
        f"mf_{'avg' if average else 'max'}pool_{kh}x{kw}_s{sh}x{sw}", "pool",
        "const int8_t *in, int8_t *out, int32_t H, int32_t W, int32_t C, int32_t OH, int32_t OW, "
        "int32_t pt, int32_t pl, int32_t act_min, int32_t act_max",
        {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "average": average})
    args = (*_io(graph, op), x_t.shape[1], x_t.shape[2], x_t.shape[3], y_t.shape[1], y_t.shape[2],
            attrs.pads.top, attrs.pads.left, act_min, act_max)
    return LayerCall(op.name, op.kind.value, spec, args)


def lower_mean(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    """MEAN over any axes of an int8 tensor of rank <= 4 (int32 accumulators in scratch), as TFLite
    Micro's ``QuantizedMeanOrSum``: 1/count folded into the requantisation multiplier."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (x_t.name, y_t.name))
    attrs = op.attrs
    assert isinstance(attrs, MeanAttrs)
    rank = len(x_t.shape)
    if rank > 4:
        raise unsupported(graph, index, op, "MEAN of a tensor of rank > 4")
    axes = {a % rank for a in attrs.axes}
    count = math.prod(x_t.shape[a] for a in axes)
    kept = [d for i, d in enumerate(x_t.shape) if i not in axes]
    out_strides, stride = {}, 1
    for i in reversed([i for i in range(rank) if i not in axes]):
        out_strides[i] = stride
        stride *= x_t.shape[i]
    strides = [0] * (4 - rank) + [out_strides.get(i, 0) for i in range(rank)]
    n_out = math.prod(kept)
    x_q, y_q = x_t.quant, y_t.quant
    multiplier, shift = quantize_multiplier_scalar(
        float(np.float32(x_q.scale[0])) / float(np.float32(y_q.scale[0])))
    fold = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier = (multiplier << fold) // count
    shift -= fold
    spec = KernelSpec(
        "mf_mean_s8", "mean",
        "const int8_t *in, int8_t *out, int32_t *acc, int32_t D0, int32_t D1, int32_t D2, int32_t D3, "
        "int32_t S0, int32_t S1, int32_t S2, int32_t S3, int32_t n_out, int32_t count, "
        "int32_t in_zp, int32_t out_zp, int32_t multiplier, int32_t shift")
    args = (*_io(graph, op), Buffer("scratch", op.name, "int32_t"), *_four_d(x_t.shape), *strides,
            n_out, count, x_q.zero_point[0], y_q.zero_point[0], multiplier, shift)
    return LayerCall(op.name, op.kind.value, spec, args, scratch_bytes=4 * n_out)


def lower_pad(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    """PAD of a rank <= 4 tensor with the output zero point."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (x_t.name, y_t.name))
    attrs = op.attrs
    assert isinstance(attrs, PadAttrs)
    if len(x_t.shape) > 4:
        raise unsupported(graph, index, op, "PAD of a tensor of rank > 4")
    paddings = [(0, 0)] * (4 - len(x_t.shape)) + [tuple(p) for p in attrs.paddings]
    spec = KernelSpec(
        "mf_pad_s8", "pad",
        "const int8_t *in, int8_t *out, int32_t D0, int32_t D1, int32_t D2, int32_t D3, "
        "int32_t p0a, int32_t p0b, int32_t p1a, int32_t p1b, int32_t p2a, int32_t p2b, "
        "int32_t p3a, int32_t p3b, int8_t zp")
    flat_pads = [v for pair in paddings for v in pair]
    args = (*_io(graph, op), *_four_d(x_t.shape), *flat_pads, y_t.quant.zero_point[0])
    return LayerCall(op.name, op.kind.value, spec, args)


def lower_reshape(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    """RESHAPE: nothing when the planner aliases the output to the input, else a byte copy."""
    x_t = graph.tensors[op.inputs[0]]
    src, dst = _io(graph, op)
    return LayerCall(op.name, op.kind.value, None, (), copy=(src, dst, x_t.nbytes),
                     note="alias" if overlapped else "copy")


def lower_softmax(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    """SOFTMAX over the last axis, int8 -> int8 (output scale 1/256, zero point -128)."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (x_t.name, y_t.name))
    if y_t.quant.zero_point[0] != -128 or np.float32(y_t.quant.scale[0]) != np.float32(1 / 256):
        raise unsupported(graph, index, op, "int8 SOFTMAX needs output scale 1/256, zero point -128")
    assert isinstance(op.attrs, SoftmaxAttrs)
    multiplier, left_shift = preprocess_softmax_scaling(op.attrs.beta, x_t.quant.scale[0], 5)
    diff_min = -calculate_input_radius(5, left_shift)
    depth = x_t.shape[-1]
    spec = KernelSpec(
        "mf_softmax_s8", "softmax",
        "const int8_t *in, int8_t *out, int32_t rows, int32_t depth, int32_t multiplier, "
        "int32_t left_shift, int32_t diff_min")
    args = (*_io(graph, op), x_t.num_elements // depth, depth, multiplier, left_shift, diff_min)
    return LayerCall(op.name, op.kind.value, spec, args)


def lower_transpose(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    """TRANSPOSE of a rank <= 4 tensor."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (x_t.name, y_t.name))
    attrs = op.attrs
    assert isinstance(attrs, TransposeAttrs)
    rank = len(x_t.shape)
    if rank > 4:
        raise unsupported(graph, index, op, "TRANSPOSE of a tensor of rank > 4")
    in_strides = [math.prod(x_t.shape[i + 1:]) for i in range(rank)]
    extra = 4 - rank
    perm = list(range(extra)) + [p + extra for p in attrs.perm]
    strides4 = [0] * extra + in_strides
    out4 = _four_d(y_t.shape)
    spec = KernelSpec(
        "mf_transpose_s8", "transpose",
        "const int8_t *in, int8_t *out, int32_t O0, int32_t O1, int32_t O2, int32_t O3, "
        "int32_t S0, int32_t S1, int32_t S2, int32_t S3")
    args = (*_io(graph, op), *out4, *(strides4[p] for p in perm))
    return LayerCall(op.name, op.kind.value, spec, args)


def lower_concat(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    """CONCATENATION of inputs that share the output's quantisation (a byte copy)."""
    y_t = graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (*op.inputs, y_t.name))
    attrs = op.attrs
    assert isinstance(attrs, ConcatAttrs)
    for name in op.inputs:
        q = graph.tensors[name].quant
        if q.zero_point[0] != y_t.quant.zero_point[0] or \
                np.float32(q.scale[0]) != np.float32(y_t.quant.scale[0]):
            raise unsupported(graph, index, op, f"input {name} needs requantisation")
    if attrs.clamp != (-math.inf, math.inf):
        raise unsupported(graph, index, op, "a fused activation on CONCATENATION")
    axis = attrs.axis % len(y_t.shape)
    outer = math.prod(y_t.shape[:axis])
    n = len(op.inputs)
    params = ", ".join([f"const int8_t *in{i}" for i in range(n)] + ["int8_t *out", "int32_t outer"]
                       + [f"int32_t inner{i}" for i in range(n)])
    spec = KernelSpec(f"mf_concat{n}_s8", "concat", params, {"n_inputs": n})
    inners = [math.prod(graph.tensors[name].shape[axis:]) for name in op.inputs]
    args = (*(Buffer("tensor", name) for name in op.inputs), Buffer("tensor", y_t.name), outer, *inners)
    return LayerCall(op.name, op.kind.value, spec, args)


LOWER_MISC = {
    OpKind.ADD: lower_add,
    OpKind.AVERAGE_POOL_2D: lower_pool,
    OpKind.MAX_POOL_2D: lower_pool,
    OpKind.MEAN: lower_mean,
    OpKind.PAD: lower_pad,
    OpKind.RESHAPE: lower_reshape,
    OpKind.SOFTMAX: lower_softmax,
    OpKind.TRANSPOSE: lower_transpose,
    OpKind.CONCATENATION: lower_concat,
    **LOWER_ELEMENTWISE,
}
