"""MEAN over any axes of an int8 tensor (``reference_ops::QuantizedMeanOrSum``), bit-exact with
TFLite Micro.

- Prepare (`prepare_mean`, used by the reference kernel and the C): the int32 sum minus zero point
  times count is rescaled by the input/output scale ratio with 1/count folded into the multiplier:
  (multiplier << s) / count and shift - s, with s = min(floor(log2(count)), 32, 31 + shift). The pip
  TFLite Micro interpreter takes this path for int8 even when input and output share their
  quantisation (checked bit for bit).
- Shape: the reduced axes become 1 (``keep_dims``) or disappear. Not patchable; no overlap.
- C: ``mean`` (rank <= 4; int32 accumulators in scratch). .tflite: ReducerOptions (keep_dims); the
  axes input is kept as an attribute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..arith.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier_scalar
from ..ir.ops import MeanAttrs, OpKind
from ..ir.tensor import QuantParams
from .lowering_types import (Buffer, KernelSpec, LayerCall, four_d, io_buffers, require_int8,
                             unsupported)
from .reference_support import unary_int8_with_attrs
from .registry import OpDef


@dataclass(frozen=True)
class MeanParams:
    """The prepared rescaling of an int8 MEAN over ``count`` elements per output."""

    count: int
    multiplier: int
    shift: int
    input_zero_point: int
    output_zero_point: int


def prepare_mean(x_q: QuantParams, y_q: QuantParams, count: int) -> MeanParams:
    """`MeanParams` with 1/count folded into the multiplier (see the module docstring)."""
    multiplier, shift = quantize_multiplier_scalar(
        float(np.float32(x_q.scale[0])) / float(np.float32(y_q.scale[0])))
    fold = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier = (multiplier << fold) // count
    shift -= fold
    return MeanParams(count, multiplier, shift, int(x_q.zero_point[0]), int(y_q.zero_point[0]))


def _resolve_axes(axes: tuple[int, ...], rank: int) -> tuple[int, ...]:
    resolved: list[int] = []
    for axis in axes:
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < rank:
            raise ValueError(f"MEAN axis {axis} out of range for rank {rank}")
        if a not in resolved:
            resolved.append(a)
    return tuple(resolved)


def mean_int8(x: np.ndarray, attrs: MeanAttrs, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """MEAN over ``attrs.axes`` of an int8 tensor (TFLite Micro's integer mean)."""
    axes = _resolve_axes(attrs.axes, x.ndim)
    count = math.prod(x.shape[a] for a in axes)
    total = x.astype(np.int64).sum(axis=axes, keepdims=attrs.keep_dims)
    if count == 0:
        return np.zeros(total.shape, dtype=np.int8)
    return mean_from_sums(total, count, x_q, y_q)


def mean_from_sums(total: np.ndarray, count: int, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """The int8 means of ``count`` values with sums ``total`` (int64): `prepare_mean`'s rescaling."""
    p = prepare_mean(x_q, y_q, count)
    shifted_sum = total - p.input_zero_point * count
    y = multiply_by_quantized_multiplier(shifted_sum, p.multiplier, p.shift) + p.output_zero_point
    return np.clip(y, -128, 127).astype(np.int8)


class Mean(OpDef):
    """MEAN (see the module docstring)."""

    kinds = (OpKind.MEAN,)
    attrs_type = MeanAttrs
    tflite_options = BuiltinOptions.ReducerOptions
    tflite_option_fields = (tflite.ReducerOptions, ("KeepDims",))
    folds_constant_input = True
    _run = staticmethod(unary_int8_with_attrs(mean_int8))

    def output_shape(self, op, input_shapes):
        """The input shape with the reduced axes 1 (``keep_dims``) or removed."""
        a = op.attrs
        x = input_shapes[0]
        axes = {ax % len(x) for ax in a.axes}
        if a.keep_dims:
            return tuple(1 if i in axes else d for i, d in enumerate(x))
        return tuple(d for i, d in enumerate(x) if i not in axes)

    def run(self, graph, op, env):
        """`mean_int8`."""
        return self._run(graph, op, env)

    def pools_globally(self, graph, op):
        """A MEAN over H and W of a [1, H, W, C] tensor."""
        x_t = graph.tensor(op.inputs[0])
        return len(x_t.shape) == 4 and x_t.shape[0] == 1 and \
            set(_resolve_axes(op.attrs.axes, 4)) == {1, 2}

    def global_pool_from_sums(self, graph, op, sums):
        """`mean_from_sums` over H and W."""
        x_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        count = x_t.shape[1] * x_t.shape[2]
        out = mean_from_sums(np.asarray(sums, dtype=np.int64), count, x_t.quant, y_t.quant)
        return out.reshape(y_t.shape)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """MEAN of a rank <= 4 tensor, int32 accumulators in scratch."""
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
        p = prepare_mean(x_t.quant, y_t.quant, count)
        spec = KernelSpec(
            "mf_mean_s8", "mean",
            "const int8_t *in, int8_t *out, int32_t *acc, int32_t D0, int32_t D1, int32_t D2, "
            "int32_t D3, int32_t S0, int32_t S1, int32_t S2, int32_t S3, int32_t n_out, "
            "int32_t count, int32_t in_zp, int32_t out_zp, int32_t multiplier, int32_t shift")
        args = (*io_buffers(op), Buffer("scratch", op.name, "int32_t"), *four_d(x_t.shape),
                *strides, n_out, count, p.input_zero_point, p.output_zero_point, p.multiplier,
                p.shift)
        return LayerCall(op.name, op.kind.value, spec, args, scratch_bytes=4 * n_out)

    def decode_attrs(self, kind, reader, rop, where):
        """The axes (a constant input) and keep_dims."""
        axes = reader.constant(rop, 1, "axes", where).reshape(-1)
        return MeanAttrs(tuple(int(a) for a in axes), bool(rop.options.get("KeepDims", False)))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """ReducerOptions."""
        tflite.ReducerOptionsStart(builder)
        tflite.ReducerOptionsAddKeepDims(builder, attrs.keep_dims)
        return tflite.ReducerOptionsEnd(builder)

    def folded_constants(self, attrs):
        """The axes."""
        return (("axes", np.array(attrs.axes)),)


OP_DEFS = (Mean(),)
