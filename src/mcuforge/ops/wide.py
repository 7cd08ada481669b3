"""16x8 quantisation (int16 activations, zero point 0; int8 symmetric weights; int64 or int32 bias)
of the weighted ops, as TFLite Micro's int16 ``ConvPerChannel``, ``DepthwiseConvPerChannel`` and
``FullyConnected`` compute it: the products sum into an int64 accumulator (int32 when the bias is
int32: the kernels are templated on the bias type), which the int64
``MultiplyByQuantizedMultiplier`` (`multiply_by_quantized_multiplier_int64`; the int32 one for an
int32 accumulator) scales to the int16 output, clamped; no output offset.

`weighted_dtypes` says whether a weighted op is 16x8 and refuses every other dtype combination in
one line (operator, tensor, dtype); `check_wide_values` refuses at import what TFLite only asserts:
an accumulator beyond +-2^47 and a shift of 8 or more. The C lowering is `wide_lowering`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..arith.fixedpoint import as_int64, quantize_multiplier_scalar, wrap_int32
from ..errors import InvalidValueError, UnsupportedOpError
from ..ir.checks import quantised_scales
from ..ir.ops import Op, OpKind
from ..ir.tensor import DType

if TYPE_CHECKING:  # only for annotations
    from ..ir.graph import Graph

MAX_WIDE_SHIFT = 7  # TFLite asserts shift < 8 in the int64 MultiplyByQuantizedMultiplier


def multiply_by_quantized_multiplier_int64(x, multiplier, shift) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier(int64 x, int32 multiplier, int shift)``: the
    multiplier reduced to 16 bits (``(m + 2^15) >> 16``, 0x7FFF from 0x7FFF0000 up), then
    ``(x * reduced + 2^(14 - shift)) >> (15 - shift)``, truncated to int32 (|x| < 2^47)."""
    x = as_int64(x)
    multiplier = as_int64(multiplier)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    total_shift = 15 - as_int64(shift)
    rounding = np.left_shift(np.int64(1), total_shift - 1)
    return wrap_int32((x * reduced + rounding) >> total_shift)


def is_acc32(bias: np.ndarray | None) -> bool:
    """Whether a 16x8 layer's bias is int32 (TFLite Micro then accumulates in int32)."""
    return bias is not None and np.asarray(bias).dtype == np.int32


def weighted_dtypes(graph: "Graph", op: Op, where: str) -> bool:
    """Whether a weighted op is 16x8 (True) or int8 (False); any other dtype combination raises
    `UnsupportedOpError` of one line naming ``where`` (the operator), the tensor and its dtype.
    int8: int8 input and output, int8 or int4 weights, int32 bias. 16x8: int16 input and output,
    int8 weights, int64 or (not DEPTHWISE_CONV_2D) int32 bias."""
    x_t, w_t, y_t = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    wide = x_t.dtype is DType.INT16
    act = DType.INT16 if wide else DType.INT8
    weights = (DType.INT8,) if wide else (DType.INT8, DType.INT4)
    biases = (DType.INT64, DType.INT32) if wide else (DType.INT32,)
    if wide and op.kind is OpKind.DEPTHWISE_CONV_2D:
        biases = (DType.INT64,)  # TFLite Micro's int16 depthwise reads its bias as int64 only
    w_role = "weights" if op.kind is OpKind.FULLY_CONNECTED else "filter"
    roles = [(x_t, (act,), "input"), (y_t, (act,), "output"), (w_t, weights, w_role)]
    if len(op.inputs) > 2 and op.inputs[2]:
        roles.append((graph.tensor(op.inputs[2]), biases, "bias"))
    for tensor, allowed, role in roles:
        if tensor.dtype not in allowed:
            combo = "16x8 (int16 activations)" if wide else "int8"
            raise UnsupportedOpError(
                f"unsupported dtype at {where}: {role} tensor {tensor.name} is "
                f"{tensor.dtype.value}; a {combo} {op.kind.value} takes "
                f"{' or '.join(d.value for d in allowed)}")
    return wide


def _check_wide_bias(graph: "Graph", op: Op, where: str, taps: int) -> None:
    """A 16x8 layer's int64 accumulator must stay inside TFLite's +-2^47 (the int64
    MultiplyByQuantizedMultiplier's range): |bias| + taps * 2^22 < 2^47."""
    if len(op.inputs) < 3 or not op.inputs[2]:
        return
    b_t = graph.tensor(op.inputs[2])
    if b_t.data is None:
        return
    bound = int(np.max(np.abs(np.asarray(b_t.data, dtype=np.int64)), initial=0)) + taps * (1 << 22)
    if bound >= 1 << 47:
        raise InvalidValueError(f"{where}: bias tensor {b_t.name}: values up to 2^"
                                f"{np.log2(float(bound)):.1f} with {taps} taps overflow the 16x8 "
                                "accumulator range (+-2^47)")


def check_wide_values(graph: "Graph", op: Op, where: str) -> None:
    """The import checks of a weighted op with an int16 activation: 16x8 throughout
    (`weighted_dtypes`), the accumulator inside +-2^47 and every multiplier's shift at most
    `MAX_WIDE_SHIFT` (in * w[c] / out below 2^7)."""
    weighted_dtypes(graph, op, where)
    w_shape = graph.tensor(op.inputs[1]).shape
    channels = w_shape[3] if op.kind is OpKind.DEPTHWISE_CONV_2D else w_shape[0]
    _check_wide_bias(graph, op, where, int(np.prod(w_shape)) // max(channels, 1))
    x, y = quantised_scales(graph, op.inputs[0]), quantised_scales(graph, op.outputs[0])
    if x is None or y is None:
        return
    for channel, w_scale in enumerate(quantised_scales(graph, op.inputs[1]) or ()):
        real = float(np.float32(x[0])) * float(np.float32(w_scale)) / float(np.float32(y[0]))
        if real > 0 and quantize_multiplier_scalar(real)[1] > MAX_WIDE_SHIFT:
            raise InvalidValueError(f"{where}: output tensor {op.outputs[0]}: multiplier {real:g} "
                                    f"of channel {channel} (input * filter / output) is 2^7 or "
                                    "more, beyond the 16x8 requantisation")
