"""Constants of an ONNX model in the IR: weights, biases and broadcast operands, float32 or, behind a
DequantizeLinear, int8/int32 with their quantisation (helpers of `onnx_import`).

- A QuantizeLinear's per-tensor quantisation becomes int8's: uint8 zero points are shifted by -128
  (``q - 128``), as TFLite's converter does for uint8 models, so the real values are unchanged.
- Weights are transposed to the IR layouts; per-channel scales must lie along the output channels.
- Biases are int32 in TFLite's scale ``input scale * weight scale`` (float32 input scale times the
  weight scale in double, as TFLite Micro's kernels derive it): ORT's int32 values are kept when its
  bias scale is that product (to 1e-6), and re-rounded from the real values otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import DType, QuantParams
from .onnx_nodes import nhwc_constant


@dataclass(frozen=True)
class Weight:
    """A constant operand: its values in ONNX layout (int for QDQ, float32 otherwise) and, when
    quantised, scales, zero points and the ONNX axis of per-channel scales."""

    values: np.ndarray
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    axis: int | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The ONNX shape."""
        return tuple(self.values.shape)


def quant_equal(a: QuantParams | None, b: QuantParams) -> bool:
    """True when per-tensor ``a`` and ``b`` agree in float32 scale and zero point."""
    return (a is not None and a.zero_point[0] == b.zero_point[0]
            and np.float32(a.scale[0]) == np.float32(b.scale[0]))


def quantize_linear_params(scale: np.ndarray, zero_point: np.ndarray | None, where: str) -> QuantParams:
    """The int8 quantisation of a QuantizeLinear (uint8 shifted by -128; per-tensor only)."""
    zp = np.zeros((), np.uint8) if zero_point is None else zero_point
    if zp.size != 1 or scale.size != 1:
        raise UnsupportedOpError(f"unsupported per-axis QuantizeLinear at {where}")
    if zp.dtype not in (np.int8, np.uint8):
        raise UnsupportedOpError(f"unsupported {zp.dtype} QuantizeLinear at {where} (only int8 and uint8)")
    shift = 128 if zp.dtype == np.uint8 else 0
    return QuantParams.per_tensor(float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0]) - shift)


def dequantized_constant(data: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None,
                         axis: int, where: str) -> Weight:
    """The `Weight` of a DequantizeLinear of a constant (``axis`` as the node says, used when there
    is more than one scale); uint8 data is shifted to int8."""
    scale = scale.astype(np.float64).reshape(-1)
    zp = np.zeros(scale.shape, data.dtype) if zero_point is None else zero_point
    if data.dtype == np.uint8:
        data, zp = data.astype(np.int16) - 128, zp.astype(np.int16) - 128
    elif data.dtype not in (np.int8, np.int32):
        raise UnsupportedOpError(f"unsupported {data.dtype} DequantizeLinear at {where}")
    per_axis = axis % data.ndim if scale.size > 1 else None
    zp = np.broadcast_to(zp.reshape(-1).astype(np.int64), scale.shape)
    return Weight(np.asarray(data), scale, zp, per_axis)


def weight_values(weight: Weight, perm: tuple[int, ...], channel_axis: int, what: str
                  ) -> tuple[np.ndarray, DType, QuantParams | None]:
    """``weight`` transposed by ``perm``: (values, dtype, quantisation); per-channel scales must land
    on ``channel_axis`` (``what`` names the op and node in the refusal)."""
    values = np.ascontiguousarray(weight.values.transpose(perm))
    if weight.scale is None:
        return values.astype(np.float32), DType.FLOAT32, None
    if weight.scale.size > 1:
        axis = perm.index(weight.axis)
        if axis != channel_axis:
            raise UnsupportedOpError(f"unsupported {what} with weight scales along axis "
                                     f"{weight.axis} (not the output channels)")
        quant = QuantParams(tuple(float(s) for s in weight.scale),
                            tuple(int(z) for z in weight.zero_point), axis)
    else:
        quant = QuantParams.per_tensor(float(weight.scale[0]), int(weight.zero_point[0]))
    return values.astype(np.int8), DType.INT8, quant


def bias_values(weight: Weight, bias: Weight | np.ndarray | None, x_quant: QuantParams | None,
                out: int, what: str) -> tuple[np.ndarray, DType, QuantParams | None]:
    """The IR bias of a weighted op with ``out`` channels: (values, dtype, quantisation); zeros when
    ``bias`` is None (see the module docstring for the int32 scale)."""
    if weight.scale is None:
        data = np.zeros(out, np.float32) if bias is None else np.asarray(bias, np.float32)
        return data.reshape(out), DType.FLOAT32, None
    w_scale = np.broadcast_to(weight.scale.astype(np.float64), (out,))
    scale = np.float64(np.float32(x_quant.scale[0])) * w_scale
    if bias is None:
        data = np.zeros(out, np.int32)
    elif not isinstance(bias, Weight):
        raise UnsupportedOpError(f"unsupported {what} with an unquantised bias")
    else:
        b_scale = np.broadcast_to(bias.scale.astype(np.float64), (out,))
        raw = bias.values.astype(np.int64).reshape(out)
        data = raw if np.allclose(b_scale, scale, rtol=1e-6, atol=0) else np.round(raw * b_scale / scale)
        data = np.clip(data, -2**31, 2**31 - 1).astype(np.int32)
    quant = (QuantParams(tuple(float(s) for s in scale), (0,) * out, 0) if weight.scale.size > 1
             else QuantParams.per_tensor(float(scale[0]), 0))
    return data, DType.INT32, quant


def operand_values(constant: Weight | np.ndarray, rank: int, permuted: bool, what: str
                   ) -> tuple[np.ndarray, DType, QuantParams | None]:
    """A broadcast constant operand (Add/Mul) in the IR layout: int8 quantised per tensor, or float32."""
    if not isinstance(constant, Weight):
        return nhwc_constant(np.asarray(constant, np.float32), rank, permuted), DType.FLOAT32, None
    if constant.scale.size != 1 or constant.values.dtype == np.int32:
        raise UnsupportedOpError(f"unsupported {what} with a constant that is not int8 quantised per tensor")
    quant = QuantParams.per_tensor(float(constant.scale[0]), int(constant.zero_point[0]))
    return nhwc_constant(constant.values, rank, permuted).astype(np.int8), DType.INT8, quant
