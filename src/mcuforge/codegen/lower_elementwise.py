"""Lowering of the element-wise int8 ops: RELU, RELU6, HARD_SWISH, LOGISTIC, int8 -> int8 QUANTIZE,
ADD / MUL with a scalar constant, MUL of two tensors (numpy broadcasting), and
RESIZE_NEAREST_NEIGHBOR.

Unary ops go through a 256-entry lookup table. Every one of them is a function of the int8 input
value alone (the quantisation parameters are fixed per layer), so the generator evaluates the
reference runtime's own kernel (`runtime.kernels_elementwise`: TFLite's int16 HARD_SWISH, gemmlowp's
LOGISTIC, the requantising RELU, ...) on all 256 int8 values and emits the results as a per-layer
``int8_t[256]`` table in Flash: the C is then bit-exact by construction, and one byte load per
element. When the table is the identity clipped to a range (RELU6, and RELU with equal input and
output quantisation) the layer calls a clamp kernel instead and stores no table. ADD and MUL whose
second operand is a constant holding one value (MobileNetV3's hard sigmoid: ``relu6(x + 3)``,
``x * 1/6``) are unary functions of the other operand too and take the same path.

MUL of two tensors needs real arithmetic: ``(x1 - z1) * (x2 - z2)`` (at most 2^16 in magnitude)
rescaled with TFLite's MultiplyByQuantizedMultiplier(s1 s2 / s_out), plus the output zero point,
clamped; the multiplier and shift are computed here exactly as `kernels_elementwise.mul_int8` does
(a left shift that overflows int32 wraps in both, as the reference's ``wrap_int32`` does).
On Cortex-M with the DSP extension the rescale takes the SMMULR form of `mf_common.h` when the
generator proves |product| * 2^max(shift, 0) < 2^29 (the usual case: shift < 0).
Broadcasting is a 4-D loop with per-operand strides (0 along broadcast dimensions); adjacent
dimensions that are contiguous for both operands are merged first, so same-shape MUL is one flat
loop and the squeeze-excite gate ``[1,H,W,C] * [1,1,1,C]`` is H*W rows of C. The output is written
in order after its element's operands are read, so it may alias any operand with the output's shape
(the planner's ELEMENTWISE overlap); it never aliases a broadcast operand.

RESIZE_NEAREST_NEIGHBOR copies C-byte pixels through per-layer row and column index tables that the
reference runtime's own resize (TFLite's float32 ``GetNearestNeighbor``) gives for a map of source
pixel numbers.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir import ElementwiseAttrs, Graph, Op, OpKind, ResizeAttrs, Tensor
from ..arith.fixedpoint import calculate_activation_range_quantized, quantize_multiplier_scalar
from ..runtime import kernels_elementwise as ref
from ..runtime.kernels_misc import resize_nearest_neighbor
from .kernels import KernelSpec
from .layers import Buffer, ConstArray, LayerCall, c_ident, require_int8, unsupported
from .targets import Target

# Every int8 value, ordered by its unsigned byte: the C indexes the table with (uint8_t)x.
_BY_BYTE = np.arange(256, dtype=np.uint8).view(np.int8)

_LUT_SPEC = KernelSpec("mf_lut_s8", "elementwise_lut",
                       "const int8_t *in, int8_t *out, int32_t n, const int8_t *lut")
_CLAMP_SPEC = KernelSpec("mf_clamp_s8", "elementwise_clamp",
                         "const int8_t *in, int8_t *out, int32_t n, int32_t lo, int32_t hi")


def _unary_call(graph: Graph, index: int, op: Op, source: str, table: np.ndarray,
                overlapped: bool) -> LayerCall:
    """The layer for ``y = table[x]`` over ``source`` (a clamp when the table is a clipped identity)."""
    table = np.asarray(table).astype(np.int64).reshape(256)
    n = graph.tensors[source].num_elements
    io = (Buffer("tensor", source), Buffer("tensor", op.outputs[0]), n)
    lo, hi = int(table[_BY_BYTE == -128][0]), int(table[_BY_BYTE == 127][0])  # f(-128), f(127)
    if lo <= hi and np.array_equal(table, np.clip(_BY_BYTE.astype(np.int64), lo, hi)):
        return LayerCall(op.name, op.kind.value, _CLAMP_SPEC, (*io, lo, hi),
                         note=f"clamp [{lo}, {hi}]" + (", in place" if overlapped else ""))
    lut = ConstArray(c_ident(index, "lut"), "int8_t", table.astype(np.int8))
    return LayerCall(op.name, op.kind.value, _LUT_SPEC, (*io, lut),
                     note="256-entry table" + (", in place" if overlapped else ""))


def _reference_table(graph: Graph, index: int, op: Op, kernel: Callable[..., np.ndarray]) -> np.ndarray:
    """``kernel`` (a reference runtime kernel of x, x_q, y_q) on every int8 value, by byte order."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (x_t.name, y_t.name))
    try:
        return kernel(_BY_BYTE, x_t.quant, y_t.quant)
    except ValueError as exc:
        raise unsupported(graph, index, op, str(exc)) from None


def lower_unary(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    """RELU, RELU6, HARD_SWISH, LOGISTIC and int8 -> int8 QUANTIZE as a table (or a clamp)."""
    kernels: dict[OpKind, Callable[..., np.ndarray]] = {
        OpKind.RELU: ref.relu_int8, OpKind.RELU6: ref.relu6_int8,
        OpKind.HARD_SWISH: ref.hard_swish_int8, OpKind.LOGISTIC: ref.logistic_int8,
        OpKind.QUANTIZE: lambda x, x_q, y_q: ref.quantize(x, x_q, y_q, np.dtype(np.int8)),
    }
    table = _reference_table(graph, index, op, kernels[op.kind])
    return _unary_call(graph, index, op, op.inputs[0], table, overlapped)


def scalar_constant_operand(graph: Graph, op: Op) -> int | None:
    """For ADD / MUL: the position of a constant operand that holds a single value and does not
    widen the output (so the op is a unary function of the other operand), else None."""
    if len(op.inputs) != 2:
        return None
    y_shape = graph.tensors[op.outputs[0]].shape
    for position, name in enumerate(op.inputs):
        tensor, other = graph.tensors[name], graph.tensors[op.inputs[1 - position]]
        if tensor.constant and tensor.data is not None and not other.constant \
                and other.shape == y_shape and np.unique(np.asarray(tensor.data)).size == 1:
            return position
    return None


def lower_binary_scalar(graph: Graph, index: int, op: Op, target: Target, overlapped: bool,
                        position: int) -> LayerCall:
    """ADD or MUL of a tensor and a one-valued constant (operand ``position``) as a table."""
    names = tuple(op.inputs)
    require_int8(graph, index, op, (*names, op.outputs[0]))
    assert isinstance(op.attrs, ElementwiseAttrs)
    kernel = ref.add_int8 if op.kind is OpKind.ADD else ref.mul_int8
    constant = np.asarray(graph.tensors[names[position]].data).reshape(-1)[:1]
    operands = [_BY_BYTE, _BY_BYTE]
    operands[position] = np.broadcast_to(constant.astype(np.int8), (256,))
    quants = [graph.tensors[name].quant for name in names]
    table = kernel(operands[0], operands[1], op.attrs.clamp, quants[0], quants[1],
                   graph.tensors[op.outputs[0]].quant)
    return _unary_call(graph, index, op, names[1 - position], table, overlapped)


def _strides(shape: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    """Element strides of a (right-aligned, broadcast) operand along the output's dimensions."""
    shape = (1,) * (len(out) - len(shape)) + tuple(shape)
    strides, step = [0] * len(out), 1
    for axis in reversed(range(len(out))):
        strides[axis] = step if shape[axis] != 1 else 0
        step *= shape[axis]
    return strides


def merge_broadcast_dims(out: tuple[int, ...], strides: list[list[int]]
                         ) -> tuple[list[int], list[list[int]]]:
    """Merge adjacent output dimensions that are contiguous for every operand (stride of the outer
    one = stride of the inner one x its size, which holds for two zero strides too); size-1
    dimensions are dropped. Returns the merged sizes and strides, at least one dimension."""
    dims: list[int] = []
    merged: list[list[int]] = [[] for _ in strides]
    for axis, size in enumerate(out):
        if size == 1:
            continue
        if dims and all(m[-1] == s[axis] * size for m, s in zip(merged, strides)):
            dims[-1] *= size
            for m, s in zip(merged, strides):
                m[-1] = s[axis]
            continue
        dims.append(size)
        for m, s in zip(merged, strides):
            m.append(s[axis])
    if not dims:
        return [1], [[1] for _ in strides]
    return dims, merged


def _operand(graph: Graph, index: int, name: str, position: int) -> Buffer | ConstArray:
    tensor = graph.tensors[name]
    if tensor.constant:
        return ConstArray(c_ident(index, f"in{position + 1}"), "int8_t",
                          np.asarray(tensor.data).astype(np.int8).reshape(-1))
    return Buffer("tensor", name)


def _max_centred(tensor: Tensor) -> int:
    """The largest |x - zero point| of an int8 operand (over its values when it is a constant)."""
    zero_point = tensor.quant.zero_point[0]
    if tensor.constant:
        return int(np.abs(np.asarray(tensor.data).astype(np.int64) - zero_point).max())
    return max(127 - zero_point, zero_point + 128)


def lower_mul(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    """MUL of two int8 tensors with numpy broadcasting (rank <= 4) and a fused clamp."""
    position = scalar_constant_operand(graph, op)
    if position is not None:
        return lower_binary_scalar(graph, index, op, target, overlapped, position)
    a_t, b_t, y_t = (graph.tensors[n] for n in (*op.inputs, op.outputs[0]))
    require_int8(graph, index, op, (a_t.name, b_t.name, y_t.name))
    assert isinstance(op.attrs, ElementwiseAttrs)
    if len(y_t.shape) > 4:
        raise unsupported(graph, index, op, "MUL of tensors of rank > 4")
    a_q, b_q, y_q = a_t.quant, b_t.quant, y_t.quant
    scale = [float(np.float32(t.quant.scale[0])) for t in (a_t, b_t, y_t)]
    multiplier, shift = quantize_multiplier_scalar(scale[0] * scale[1] / scale[2])
    act_min, act_max = calculate_activation_range_quantized(op.attrs.clamp, y_q.scale[0],
                                                            y_q.zero_point[0])
    bound = _max_centred(a_t) * _max_centred(b_t)
    fast = int(target.dsp and bound << max(shift, 0) < 1 << 29)
    full = int(act_min == -128 and act_max == 127)
    dims, (sa, sb) = merge_broadcast_dims(
        tuple(y_t.shape), [_strides(a_t.shape, y_t.shape), _strides(b_t.shape, y_t.shape)])
    pad = 4 - len(dims)
    dims, sa, sb = [1] * pad + dims, [0] * pad + sa, [0] * pad + sb
    spec = KernelSpec(
        f"mf_mul_s8{'_fast' if fast else ''}{'_full' if full else ''}", "mul",
        "const int8_t *in1, const int8_t *in2, int8_t *out, int32_t D0, int32_t D1, int32_t D2, "
        "int32_t D3, int32_t A0, int32_t A1, int32_t A2, int32_t A3, int32_t B0, int32_t B1, "
        "int32_t B2, int32_t B3, int32_t in1_offset, int32_t in2_offset, int32_t out_mult, "
        "int32_t out_shift, int32_t out_zp, int32_t act_min, int32_t act_max",
        {"fast": fast, "full": full})
    args = (_operand(graph, index, a_t.name, 0), _operand(graph, index, b_t.name, 1),
            Buffer("tensor", y_t.name), *dims, *sa, *sb, -a_q.zero_point[0], -b_q.zero_point[0],
            multiplier, shift, y_q.zero_point[0], act_min, act_max)
    broadcast = a_t.shape != b_t.shape
    note = ", ".join(filter(None, ("broadcast" if broadcast else "", "in place" if overlapped else "")))
    return LayerCall(op.name, op.kind.value, spec, args, note=note)


def lower_resize_nearest(graph: Graph, index: int, op: Op, target: Target,
                         overlapped: bool) -> LayerCall:
    """RESIZE_NEAREST_NEIGHBOR of an [N, H, W, C] int8 tensor (a copy through index tables)."""
    x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    require_int8(graph, index, op, (x_t.name, y_t.name))
    attrs = op.attrs
    assert isinstance(attrs, ResizeAttrs)
    if len(x_t.shape) != 4:
        raise unsupported(graph, index, op, "RESIZE_NEAREST_NEIGHBOR of a tensor of rank other than 4")
    n, h, w, c = x_t.shape
    out_h, out_w = attrs.size
    # The reference kernel resizing a map of source pixel numbers gives the source of every output
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


LOWER_ELEMENTWISE = {
    OpKind.RELU: lower_unary,
    OpKind.RELU6: lower_unary,
    OpKind.HARD_SWISH: lower_unary,
    OpKind.LOGISTIC: lower_unary,
    OpKind.QUANTIZE: lower_unary,
    OpKind.MUL: lower_mul,
    OpKind.RESIZE_NEAREST_NEIGHBOR: lower_resize_nearest,
}
