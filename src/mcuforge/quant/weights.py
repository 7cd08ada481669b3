"""Weight and bias quantisation (TFLite's int8 scheme, and int4 weights).

Weights are quantised per output channel and symmetrically: zero point 0 and
``scale[c] = max |w[c]| / q_max`` with ``q_max = 127`` for int8 (values in [-127, 127], TFLite's
narrow range) and ``q_max = 7`` for int4 (values in [-7, 7]). The quantised dimension is the output
channel of the IR layout: 0 for CONV_2D (OHWI) and FULLY_CONNECTED ([out, in]), 3 for
DEPTHWISE_CONV_2D ([1, kh, kw, C]) — TFLite's ``quantized_dimension``. A channel whose weights are
all zero gets scale 1 (any scale represents it exactly).

With ``clip="mse"`` the per-channel range is searched instead of taken from the largest magnitude:
``scale[c] = r * max|w[c]| / q_max`` for the ratio ``r`` in [0.5, 1] (``CLIP_RATIOS``) that minimises
the squared rounding-and-clipping error of the channel. Few levels (int4) waste much of the grid on
a single outlier weight, and the search trades that outlier's clipping for finer steps everywhere
else; at int8 it changes little and TFLite's rule (``clip="max"``) is the default.

Int4 weights are stored unpacked in the IR: ``Tensor.data`` is an int8 array of values in [-7, 7]
with ``dtype=DType.INT4``; ``Tensor.nbytes`` counts half a byte per value, and packing two values
per byte (low nibble first, as TFLite's ``kTfLiteInt4``) is the writers' job.

Biases are int32 with zero point 0 and ``scale[c] = input_scale * weight_scale[c]``:
``round(b / scale)``, saturated to the int32 range.
"""

from __future__ import annotations

import numpy as np

from ..ir.checks import MIN_SCALE

# The smallest weight scale kept (2^-40): with any input scale above 2^-24 the bias scale stays above
# `ir.checks.MIN_SCALE` (2^-64).
DEAD_CHANNEL_SCALE = MIN_SCALE * 2.0 ** 24

from ..ir import DType, QuantParams

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def weight_qmax(bits: int) -> int:
    """Largest quantised weight magnitude: 127 for 8 bits, 7 for 4 bits."""
    if bits not in (4, 8):
        raise ValueError(f"weights are quantised to 8 or 4 bits, not {bits}")
    return (1 << (bits - 1)) - 1


CLIP_RATIOS = np.linspace(0.5, 1.0, 51)


def _mse_ratios(weights: np.ndarray, max_abs: np.ndarray, shape: list[int],
                reduce_axes: tuple[int, ...], qmax: int) -> np.ndarray:
    """Per channel, the ratio of ``CLIP_RATIOS`` with the least squared quantisation error."""
    best_error = np.full(max_abs.shape, np.inf)
    best_ratio = np.ones(max_abs.shape)
    for ratio in CLIP_RATIOS:
        scale = np.where(max_abs > 0, ratio * max_abs / qmax, 1.0).reshape(shape)
        error = ((np.clip(np.round(weights / scale), -qmax, qmax) * scale - weights) ** 2)
        error = np.atleast_1d(error.sum(axis=reduce_axes))
        better = error < best_error
        best_error = np.where(better, error, best_error)
        best_ratio = np.where(better, ratio, best_ratio)
    return best_ratio


BIAS_CODE_LIMIT = 2.0 ** 30  # |bias / (input_scale * weight_scale)| kept below half of int32


def bias_weight_scale_floor(bias: np.ndarray, input_scale: float) -> np.ndarray:
    """The smallest weight scale per channel that keeps the int32 bias code of ``bias`` within
    half of int32 (TFLite's converter raises weight scales the same way, AdjustWeightsForBiasScale):
    a channel whose weights are ~0 but whose folded bias is not would otherwise saturate its bias
    (and overflow the C kernel's folded bias)."""
    return np.abs(np.asarray(bias, dtype=np.float64)).reshape(-1) / (float(input_scale) * BIAS_CODE_LIMIT)


def quantize_weights(weights: np.ndarray, axis: int | None, bits: int = 8, clip: str = "max",
                     min_scale: np.ndarray | None = None) -> tuple[np.ndarray, QuantParams]:
    """Symmetric quantisation of float ``weights``, per channel along ``axis`` (per tensor when
    ``axis`` is None), with the range rule ``clip`` ("max" or "mse", see the module doc): (int8
    array holding the values, `QuantParams` with float32 scales and zero points 0). ``min_scale``
    (per channel, e.g. `bias_weight_scale_floor`) raises scales below it."""
    if clip not in ("max", "mse"):
        raise ValueError(f"unknown weight range rule {clip!r} (max, mse)")
    weights = np.asarray(weights, dtype=np.float64)
    qmax = weight_qmax(bits)
    reduce_axes = tuple(d for d in range(weights.ndim) if d != axis)
    max_abs = np.atleast_1d(np.abs(weights).max(axis=reduce_axes))
    shape = [1] * weights.ndim
    if axis is not None:
        shape[axis] = -1
    if clip == "mse":
        max_abs = max_abs * _mse_ratios(weights, max_abs, shape, reduce_axes, qmax)
    # A channel whose weights are all zero, or below `DEAD_CHANNEL_SCALE` per step (batch-norm
    # folding gives ~1e-18 for a dead channel, and its bias scale input_scale * weight_scale would
    # fall below the smallest TFLite accepts), gets scale 1 and all-zero weights: its output is
    # its bias, as it was to float precision.
    scales = np.where(max_abs / qmax >= DEAD_CHANNEL_SCALE, max_abs / qmax, 1.0)
    if min_scale is not None:
        floor = np.asarray(min_scale, dtype=np.float64)
        scales = np.maximum(scales, floor.max() if axis is None else floor)
    scales = scales.astype(np.float32)
    q = np.clip(np.round(weights / scales.astype(np.float64).reshape(shape)), -qmax, qmax)
    if axis is None:
        params = QuantParams.per_tensor(float(scales[0]), 0)
    else:
        params = QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), axis)
    return q.astype(np.int8), params


def dequantize_weights(q: np.ndarray, params: QuantParams) -> np.ndarray:
    """Real values of per-axis quantised weights (for tests and error reports)."""
    shape = [1] * q.ndim
    shape[params.axis if params.axis is not None else 0] = -1
    scales = np.asarray(params.scale, dtype=np.float64)
    if params.axis is None:
        return q.astype(np.float64) * scales[0]
    return q.astype(np.float64) * scales.reshape(shape)


def quantize_bias(bias: np.ndarray, input_scale: float, weight_params: QuantParams
                  ) -> tuple[np.ndarray, QuantParams]:
    """int32 bias with scale ``input_scale * weight_scale`` per channel (zero point 0)."""
    weight_scales = np.asarray(weight_params.scale, dtype=np.float64)
    scales = (np.float64(np.float32(input_scale)) * weight_scales).astype(np.float32)
    if scales.size == 1 and np.asarray(bias).size > 1:
        scales = np.full(np.asarray(bias).size, scales[0], dtype=np.float32)
    q = np.clip(np.round(np.asarray(bias, dtype=np.float64) / scales.astype(np.float64)),
                INT32_MIN, INT32_MAX).astype(np.int32)
    axis = 0 if weight_params.axis is not None else None
    if axis is None:
        params = QuantParams.per_tensor(float(scales[0]), 0)
    else:
        params = QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), 0)
    return q, params


def weight_dtype(bits: int) -> DType:
    """The IR dtype of weights quantised to ``bits``."""
    return DType.INT4 if bits == 4 else DType.INT8
