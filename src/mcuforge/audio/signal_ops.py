"""TFLite Micro's signal-library integer kernels (``signal/src/*.cc``), bit for bit, vectorised with
numpy over any leading batch axes. Each function names the TFLM routine it repeats; the C emitted by
`mcuforge.audio.emit` repeats the same integer steps (same widths, same wrap-around).

Widths: int16 samples and spectra, uint32 energies and channel values, uint64 filter-bank sums.
Every shift of a uint32 or int32 value here is done on a numpy array of that width (or on a wider
one and then wrapped), so overflow behaves as in C.
"""

from __future__ import annotations

import numpy as np

_LOG_LUT = np.array([
    0, 224, 442, 654, 861, 1063, 1259, 1450, 1636, 1817, 1992, 2163, 2329, 2490, 2646, 2797, 2944,
    3087, 3224, 3358, 3487, 3611, 3732, 3848, 3960, 4068, 4172, 4272, 4368, 4460, 4549, 4633, 4714,
    4791, 4864, 4934, 5001, 5063, 5123, 5178, 5231, 5280, 5326, 5368, 5408, 5444, 5477, 5507, 5533,
    5557, 5578, 5595, 5610, 5622, 5631, 5637, 5640, 5641, 5638, 5633, 5626, 5615, 5602, 5586, 5568,
    5547, 5524, 5498, 5470, 5439, 5406, 5370, 5332, 5291, 5249, 5203, 5156, 5106, 5054, 5000, 4944,
    4885, 4825, 4762, 4697, 4630, 4561, 4490, 4416, 4341, 4264, 4184, 4103, 4020, 3935, 3848, 3759,
    3668, 3575, 3481, 3384, 3286, 3186, 3084, 2981, 2875, 2768, 2659, 2549, 2437, 2323, 2207, 2090,
    1971, 1851, 1729, 1605, 1480, 1353, 1224, 1094, 963, 830, 695, 559, 421, 282, 142, 0, 0],
    dtype=np.int64)
"""``kLogLut`` of signal/src/log.cc: log2(1 + x) - x on 128 segments, scale 65536."""

LOG_LUT: tuple[int, ...] = tuple(int(value) for value in _LOG_LUT)
LOG_COEFF = 45426  # kLogCoeff: ln(2) * 65536
PCAN_SNR_BITS = 12
PCAN_OUTPUT_BITS = 6


def bit_length(values: np.ndarray) -> np.ndarray:
    """``MostSignificantBit32/64`` for non-zero values: the number of bits (int64 array)."""
    values = np.asarray(values, dtype=np.uint64)
    result = np.zeros(values.shape, dtype=np.int64)
    remaining = values.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        big = remaining >= (np.uint64(1) << np.uint64(shift))
        result += np.where(big, shift, 0)
        remaining = np.where(big, remaining >> np.uint64(shift), remaining)
    return result + (remaining > 0)


def apply_window(samples: np.ndarray, window: np.ndarray, shift: int) -> np.ndarray:
    """``ApplyWindow``: ``(x * w) >> shift`` saturated to int16."""
    raw = (samples.astype(np.int32) * window.astype(np.int32)) >> shift
    return np.clip(raw, -32768, 32767).astype(np.int16)


def max_abs16(samples: np.ndarray) -> np.ndarray:
    """``MaxAbs16`` along the last axis, int16 result. TFLM's loop stores ``-(-32768)`` back into an
    int16 (it wraps to -32768, after which the "maximum" follows the next samples), so rows holding
    -32768 are replayed sample by sample; the others are ``max(|x|)``."""
    result = np.atleast_1d(np.abs(samples.astype(np.int32)).max(axis=-1).astype(np.int16))
    rows = samples.reshape(-1, samples.shape[-1])
    flat = result.reshape(-1)
    for index in np.flatnonzero((rows == -32768).any(axis=-1)):
        current = 0
        for value in rows[index].tolist():
            if value > current:
                current = value
            elif -value > current:
                current = ((-value + 32768) & 0xFFFF) - 32768
        flat[index] = current
    return result.reshape(samples.shape[:-1])


def fft_auto_scale(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``FftAutoScale`` along the last axis: shift left so that the largest magnitude fills 15
    bits; returns the scaled int16 samples and the shift (int32 per leading index)."""
    max_abs = max_abs16(samples).astype(np.int64)
    scale_bits = np.where(max_abs > 0, np.maximum(15 - bit_length(np.maximum(max_abs, 1)), 0), 0)
    scale_bits = scale_bits.astype(np.int32)
    scaled = (samples.astype(np.int32) << scale_bits[..., None]).astype(np.int16)
    return scaled, scale_bits


def spectrum_to_energy(spectrum: np.ndarray, start: int, end: int, length: int) -> np.ndarray:
    """``SpectrumToEnergy``: uint32 ``re^2 + im^2`` of bins ``start .. end - 1`` of an int16
    [..., bins, 2] spectrum; bins outside are 0 (the preprocessor model zeroes them)."""
    part = spectrum[..., start:end, :].astype(np.int64)
    energy = np.zeros(spectrum.shape[:-2] + (length,), dtype=np.uint32)
    energy[..., start:end] = ((part[..., 0] ** 2 + part[..., 1] ** 2) & 0xFFFFFFFF).astype(np.uint32)
    return energy


def filterbank_matrix(weights, unweights, frequency_starts, weight_starts, widths, bins: int,
                      num_channels: int) -> np.ndarray:
    """The dense [bins, num_channels] uint64 matrix of ``FilterbankAccumulateChannels``: channel
    ``i`` sums its own weights and the unweights of the slot before it (slot 0 is discarded)."""
    matrix = np.zeros((bins, num_channels + 1), dtype=np.uint64)
    for slot in range(num_channels + 1):
        for j in range(widths[slot]):
            bin_index = frequency_starts[slot] + j
            matrix[bin_index, slot] += np.uint64(weights[weight_starts[slot] + j])
            if slot + 1 <= num_channels:
                matrix[bin_index, slot + 1] += np.uint64(unweights[weight_starts[slot] + j])
    return matrix[:, 1:]


def filterbank(energy: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``FilterbankAccumulateChannels``: uint64 sums of weight × energy (an integer matrix product
    over the bins any band uses; float64 would round sums above 2^53)."""
    used = np.flatnonzero(matrix.any(axis=1))
    return energy[..., used].astype(np.uint64) @ matrix[used]


def _isqrt_rounded(values: np.ndarray, cap: int) -> np.ndarray:
    """``Sqrt32``/``Sqrt64``: floor square root, plus one when the remainder exceeds the root
    (round to nearest), unless the root is already ``cap``."""
    values = values.astype(np.uint64)
    root = np.floor(np.sqrt(values.astype(np.float64))).astype(np.uint64)
    root = np.where(root * root > values, root - np.uint64(1), root)
    root = np.where((root + np.uint64(1)) * (root + np.uint64(1)) <= values, root + np.uint64(1), root)
    remainder = values - root * root
    bump = (remainder > root) & (root != np.uint64(cap))
    return root + bump.astype(np.uint64)


def filterbank_sqrt(channels: np.ndarray, scale_bits: np.ndarray) -> np.ndarray:
    """``FilterbankSqrt``: ``Sqrt64(x) >> scale_bits`` (Sqrt64 takes Sqrt32's path below 2^32)."""
    channels = channels.astype(np.uint64)
    small = (channels >> np.uint64(32)) == 0
    root = np.where(small, _isqrt_rounded(channels, 0xFFFF), _isqrt_rounded(channels, 0xFFFFFFFF))
    shifted = root >> np.asarray(scale_bits, dtype=np.uint64)[..., None]
    return (shifted & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def spectral_subtraction(signal: np.ndarray, noise_estimate: np.ndarray, smoothing: np.ndarray,
                         one_minus_smoothing: np.ndarray, smoothing_bits: int,
                         spectral_subtraction_bits: int, min_signal_remaining: int,
                         clamping: bool) -> tuple[np.ndarray, np.ndarray]:
    """``FilterbankSpectralSubtraction``: returns (output, new noise estimate), both uint32;
    ``smoothing`` and ``one_minus_smoothing`` are per channel (even/odd alternate)."""
    signal64 = signal.astype(np.uint64)
    scaled_up = (signal64 << np.uint64(smoothing_bits)) & np.uint64(0xFFFFFFFF)
    estimate = ((scaled_up * smoothing.astype(np.uint64)
                 + noise_estimate.astype(np.uint64) * one_minus_smoothing.astype(np.uint64))
                >> np.uint64(spectral_subtraction_bits)) & np.uint64(0xFFFFFFFF)
    estimate_capped = np.minimum(estimate, scaled_up)
    if clamping:
        estimate = estimate_capped
    floor = ((signal64 * np.uint64(min_signal_remaining)) >> np.uint64(spectral_subtraction_bits)) \
        & np.uint64(0xFFFFFFFF)
    subtracted = (scaled_up - estimate_capped) >> np.uint64(smoothing_bits)
    return np.maximum(subtracted, floor).astype(np.uint32), estimate.astype(np.uint32)


def wide_dynamic_function(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``WideDynamicFunction``: the PCAN gain, a piecewise quadratic in log2(x) from ``lut``
    (int16); returns the int16 result as int64."""
    x = x.astype(np.int64)
    lut = lut.astype(np.int64)
    interval = bit_length(np.maximum(x, 1))
    base = np.clip(4 * interval - 6, 0, len(lut) - 3)
    frac = np.where(interval < 11, x << np.maximum(11 - interval, 0), x >> np.maximum(interval - 11, 0))
    frac = frac & 0x3FF
    result = (lut[base + 2] * frac) >> 5
    result = result + lut[base + 1] * 32
    result = _wrap(result * frac, 32)
    result = ((result + (1 << 14)) >> 15) + lut[base]
    result = _wrap(result, 16)
    return np.where(x <= 2, lut[np.minimum(x, 2)], result)


def _wrap(values: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to ``bits`` bits (still int64)."""
    half = 1 << (bits - 1)
    return ((values + half) & ((1 << bits) - 1)) - half


def pcan(signal: np.ndarray, noise_estimate: np.ndarray, lut: np.ndarray, snr_shift: int) -> np.ndarray:
    """``ApplyPcanAutoGainControlFixed``: per-channel automatic gain from the noise estimate, then
    ``PcanShrink``; uint32 in and out."""
    gain = wide_dynamic_function(noise_estimate, lut) & 0xFFFFFFFF  # int16 → uint32 (sign-extended)
    snr = ((signal.astype(np.uint64) * gain.astype(np.uint64)) >> np.uint64(snr_shift)) \
        & np.uint64(0xFFFFFFFF)
    small = snr < np.uint64(2 << PCAN_SNR_BITS)
    squared = ((snr * snr) & np.uint64(0xFFFFFFFF)) >> np.uint64(2 + 2 * PCAN_SNR_BITS - PCAN_OUTPUT_BITS)
    linear = ((snr >> np.uint64(PCAN_SNR_BITS - PCAN_OUTPUT_BITS)) - np.uint64(1 << PCAN_OUTPUT_BITS)) \
        & np.uint64(0xFFFFFFFF)
    return np.where(small, squared, linear).astype(np.uint32)


def log32(x: np.ndarray, out_scale: int) -> np.ndarray:
    """``Log32``: fixed-point natural log of uint32 ``x >= 2`` times ``out_scale``, uint32."""
    x = x.astype(np.int64)
    integer = bit_length(x) - 1
    frac = _wrap(x - (np.int64(1) << integer), 32)
    frac = np.where(integer < 16, _wrap(frac << np.maximum(16 - integer, 0), 32),
                    frac >> np.maximum(integer - 16, 0))
    base_seg = (frac & 0xFFFFFFFF) >> 9
    c0, c1 = _LOG_LUT[base_seg], _LOG_LUT[base_seg + 1]
    rel_pos = _wrap((c1 - c0) * (frac - 512 * base_seg), 32) >> 16
    fraction = (frac + c0 + rel_pos) & 0xFFFFFFFF
    log2 = ((integer << 16) + fraction) & 0xFFFFFFFF
    loge = ((LOG_COEFF * log2 + 32768) >> 16) & 0xFFFFFFFF
    return (((out_scale * loge) & 0xFFFFFFFF) + 32768 & 0xFFFFFFFF) >> 16


def filterbank_log(channels: np.ndarray, output_scale: int, correction_bits: int) -> np.ndarray:
    """``FilterbankLog``: int16 ``min(Log32(x << correction_bits), 32767)``, 0 where that is <= 1."""
    scaled = (channels.astype(np.int64) << correction_bits) & 0xFFFFFFFF
    logs = log32(np.maximum(scaled, 2), output_scale)
    return np.where(scaled > 1, np.minimum(logs, 32767), 0).astype(np.int16)
