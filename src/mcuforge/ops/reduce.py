"""SUM and REDUCE_MAX over any axes of an int8 tensor, bit-exact with TFLite Micro's
``kernels/reduce_common.cc``.

- SUM (``EvalSumHelper``, ``reference_ops::QuantizedMeanOrSum`` with ``compute_sum``): the raw
  int8 values are summed in int32 per output element; the zero-point-corrected sum
  ``sum - z_in * count`` is requantised by the ``in / out`` scale ratio (`prepare_sum`:
  ``QuantizeMultiplier(s_in / s_out)``), plus the output zero point, clamped to int8.
- REDUCE_MAX (``EvalMaxHelper``, ``reference_ops::ReduceGeneric`` with ``max``): the largest raw
  value (start -128); input and output must share one quantisation, as TFLite Micro requires.
- Attributes: `MeanAttrs` (axes, keep_dims; negative axes count from the end, repeats are ignored,
  no axes copies the input through the requantisation). Shape: the reduced axes become 1
  (``keep_dims``) or disappear. Not patchable; no overlap.
- C (rank <= 4): SUM uses MEAN's kernel ``mean`` (int32 accumulators in scratch) with the SUM
  multiplier and shift; REDUCE_MAX has ``reduce_max`` (the maximum kept in the output bytes).
  .tflite: ReducerOptions (keep_dims); the axes input is kept as an attribute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..arith.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier_scalar
from ..errors import InvalidValueError
from ..ir.checks import check_multiplier
from ..ir.ops import MeanAttrs, OpKind
from ..ir.tensor import QuantParams
from .lowering_types import (Buffer, KernelSpec, LayerCall, four_d, io_buffers, require_int8,
                             unsupported)
from .mean import Mean
from .reference_support import unary_int8_with_attrs


@dataclass(frozen=True)
class SumParams:
    """The prepared requantisation of an int8 SUM."""

    multiplier: int
    shift: int
    input_zero_point: int
    output_zero_point: int


def prepare_sum(x_q: QuantParams, y_q: QuantParams) -> SumParams:
    """`SumParams`: ``QuantizeMultiplier(s_in / s_out)`` (TFLite Micro's ``PrepareMeanOrSum``)."""
    multiplier, shift = quantize_multiplier_scalar(
        float(np.float32(x_q.scale[0])) / float(np.float32(y_q.scale[0])))
    return SumParams(multiplier, shift, int(x_q.zero_point[0]), int(y_q.zero_point[0]))


def resolve_axes(axes: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """The distinct axes in [0, rank), sorted (ValueError for one out of range)."""
    resolved = set()
    for axis in axes:
        if not -rank <= axis < rank:
            raise ValueError(f"axis {axis} out of range for a rank-{rank} input")
        resolved.add(axis % rank)
    return tuple(sorted(resolved))


def sum_int8(x: np.ndarray, attrs: MeanAttrs, x_q: QuantParams, y_q: QuantParams) -> np.ndarray:
    """SUM over ``attrs.axes`` of an int8 tensor (TFLite Micro's integer sum)."""
    axes = resolve_axes(attrs.axes, x.ndim)
    count = math.prod(x.shape[a] for a in axes)
    total = x.astype(np.int64).sum(axis=axes, keepdims=attrs.keep_dims)
    p = prepare_sum(x_q, y_q)
    shifted = (total - p.input_zero_point * count).astype(np.int32).astype(np.int64)
    y = multiply_by_quantized_multiplier(shifted, p.multiplier, p.shift) + p.output_zero_point
    return np.clip(y, -128, 127).astype(np.int8)


def reduce_max_int8(x: np.ndarray, attrs: MeanAttrs, x_q: QuantParams,
                    y_q: QuantParams) -> np.ndarray:
    """REDUCE_MAX over ``attrs.axes`` of an int8 tensor (raw values; one quantisation)."""
    axes = resolve_axes(attrs.axes, x.ndim)
    return np.max(x, axis=axes, keepdims=attrs.keep_dims).astype(np.int8) if axes else x.copy()


def reduce_layout(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[tuple[int, ...], int, int]:
    """For the C loop over the 4-D input: the stride of each input dimension into the output
    (0 for a reduced one), the number of outputs and the count of values per output."""
    rank = len(shape)
    out_strides, stride = {}, 1
    for i in reversed([i for i in range(rank) if i not in axes]):
        out_strides[i] = stride
        stride *= shape[i]
    strides = (0,) * (4 - rank) + tuple(out_strides.get(i, 0) for i in range(rank))
    return strides, stride, math.prod(shape[a] for a in axes)


class Reduce(Mean):
    """SUM or REDUCE_MAX (see the module docstring); shape, options and the folded axes are
    MEAN's."""

    def __init__(self, kind: OpKind, kernel):
        self.kinds = (kind,)
        self._run = unary_int8_with_attrs(kernel)

    def check_values(self, graph, op, where):
        """Axes in range; SUM: a representable ``in / out`` multiplier; REDUCE_MAX: one
        quantisation for input and output."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        try:
            resolve_axes(op.attrs.axes, len(x_t.shape))
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {op.kind.value} {exc}") from None
        if x_t.quant is None or y_t.quant is None:
            return
        x_q, y_q = x_t.quant, y_t.quant
        if op.kind is OpKind.SUM:
            check_multiplier(where, f"requantisation (tensor {x_t.name} / output)",
                             x_q.scale[0] / y_q.scale[0])
        elif (float(np.float32(x_q.scale[0])) != float(np.float32(y_q.scale[0]))
              or x_q.zero_point[0] != y_q.zero_point[0]):
            raise InvalidValueError(
                f"{where}: tensor {y_t.name}: scale {y_q.scale[0]:.6g}, zero point "
                f"{y_q.zero_point[0]} differs from the input's ({x_q.scale[0]:.6g}, "
                f"{x_q.zero_point[0]}); REDUCE_MAX needs one quantisation for both")

    def run(self, graph, op, env):
        """`sum_int8` or `reduce_max_int8`."""
        return self._run(graph, op, env)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """The reduction of a rank <= 4 tensor (see the module docstring)."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        rank = len(x_t.shape)
        if rank > 4:
            raise unsupported(graph, index, op, f"{op.kind.value} of a tensor of rank > 4")
        axes = resolve_axes(op.attrs.axes, rank)
        strides, n_out, count = reduce_layout(x_t.shape, axes)
        dims = (*four_d(x_t.shape), *strides)
        if op.kind is OpKind.REDUCE_MAX:
            spec = KernelSpec(
                "mf_reduce_max_s8", "reduce_max",
                "const int8_t *in, int8_t *out, int32_t D0, int32_t D1, int32_t D2, int32_t D3, "
                "int32_t S0, int32_t S1, int32_t S2, int32_t S3, int32_t n_out")
            return LayerCall(op.name, op.kind.value, spec, (*io_buffers(op), *dims, n_out))
        p = prepare_sum(x_t.quant, y_t.quant)
        spec = KernelSpec(
            "mf_mean_s8", "mean",
            "const int8_t *in, int8_t *out, int32_t *acc, int32_t D0, int32_t D1, int32_t D2, "
            "int32_t D3, int32_t S0, int32_t S1, int32_t S2, int32_t S3, int32_t n_out, "
            "int32_t count, int32_t in_zp, int32_t out_zp, int32_t multiplier, int32_t shift")
        args = (*io_buffers(op), Buffer("scratch", op.name, "int32_t"), *dims, n_out, count,
                p.input_zero_point, p.output_zero_point, p.multiplier, p.shift)
        return LayerCall(op.name, op.kind.value, spec, args, scratch_bytes=4 * n_out)


OP_DEFS = (Reduce(OpKind.SUM, sum_int8), Reduce(OpKind.REDUCE_MAX, reduce_max_int8))
