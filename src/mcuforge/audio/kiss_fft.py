"""KISS FFT's int16 fixed-point real FFT (``FIXED_POINT=16``, the v1.3.0 code TFLite Micro's
``SignalRfft`` compiles), bit for bit, vectorised over a batch with numpy.

The algorithm, as kissfft does it for a real input of length ``n`` (even):

1. the ``n`` reals are read as ``n/2`` complex values and put through a complex FFT of length
   ``n/2``, factored into radix-4 stages (then radix 2, 3, 5 ...; the lengths used here, 256 and
   64, are powers of 4, so only radix 4 is implemented); the input is first put in base-4
   digit-reversed order (what kissfft's recursive ``kf_work`` does at its leaves), then each stage
   ``m = 1, 4, 16 ...`` runs ``kf_bfly4`` on every block of ``4m`` values;
2. ``kf_bfly4`` divides its four inputs by 4 first (``C_FIXDIV``: multiply by ``32767/4 = 8191``
   and round with ``sround``), so the transform is scaled by ``1/n`` overall and never overflows;
3. the half-length spectrum is split into the real spectrum with the "super twiddles"
   (each input halved by ``C_FIXDIV(x, 2)``, each output halved by ``>> 1``).

Integer semantics, which the C emitted by `mcuforge.audio.emit` repeats line by line:
``smul(a, b)`` is an int32 product, ``sround(x) = (int16)((x + 2^14) >> 15)`` (arithmetic shift,
int32 wrap-around), every sum stored into a ``kiss_fft_scalar`` wraps to int16. Twiddles are
``floor(0.5 + 32767 * cos/sin(phase))`` with kissfft's own phase formulas (in double).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import McuforgeError

SAMP_MAX = 32767
_PI_KISS = 3.14159265358979323846264338327


@dataclass(frozen=True)
class RfftTables:
    """The twiddles of one real-FFT length: ``twiddles`` [n/2, 2] (re, im) of the complex FFT,
    ``super_twiddles`` [n/4, 2] of the real split, and ``order`` the digit-reversed input order."""

    fft_length: int
    twiddles: np.ndarray
    super_twiddles: np.ndarray
    order: np.ndarray


def _cexp(phase: float) -> tuple[int, int]:
    return (math.floor(0.5 + SAMP_MAX * math.cos(phase)), math.floor(0.5 + SAMP_MAX * math.sin(phase)))


def _digit_reversed_order(length: int) -> np.ndarray:
    """kissfft's leaf order: ``buffer[i] = input[order[i]]`` (base-4 digit reversal)."""
    digits = round(math.log(length, 4))
    order = np.zeros(length, dtype=np.int64)
    for index in range(length):
        value, reversed_value = index, 0
        for _ in range(digits):
            reversed_value = reversed_value * 4 + value % 4
            value //= 4
        order[index] = reversed_value
    return order


@lru_cache(maxsize=None)
def rfft_tables(fft_length: int) -> RfftTables:
    """The tables of a forward real FFT of ``fft_length`` (``fft_length / 2`` a power of 4)."""
    complex_length = fft_length // 2
    if fft_length % 2 or complex_length < 4 or 4 ** round(math.log(complex_length, 4)) != complex_length:
        raise McuforgeError(
            f"int16 real FFT length {fft_length} is not supported: half of it must be a power of 4")
    twiddles = np.array([_cexp(-2 * _PI_KISS * i / complex_length) for i in range(complex_length)],
                        dtype=np.int16)
    super_twiddles = np.array(
        [_cexp(-_PI_KISS * ((i + 1) / complex_length + 0.5)) for i in range(complex_length // 2)],
        dtype=np.int16)
    return RfftTables(fft_length, twiddles, super_twiddles, _digit_reversed_order(complex_length))


def _wrap16(values: np.ndarray) -> np.ndarray:
    return values.astype(np.int16)


def _sround(product: np.ndarray) -> np.ndarray:
    """``(int16)((x + 2^14) >> 15)`` on int32 (wrapping like the C)."""
    return _wrap16((product.astype(np.int32) + np.int32(1 << 14)) >> 15)


def _fixdiv(values: np.ndarray, divisor: int) -> np.ndarray:
    return _sround(values.astype(np.int32) * np.int32(SAMP_MAX // divisor))


def _cmul(a_re, a_im, b_re, b_im):
    a_re, a_im = a_re.astype(np.int32), a_im.astype(np.int32)
    b_re, b_im = b_re.astype(np.int32), b_im.astype(np.int32)
    return _sround(a_re * b_re - a_im * b_im), _sround(a_re * b_im + a_im * b_re)


def _add(a, b):
    return _wrap16(a.astype(np.int32) + b)


def _sub(a, b):
    return _wrap16(a.astype(np.int32) - b)


def _complex_fft(re: np.ndarray, im: np.ndarray, tables: RfftTables) -> tuple[np.ndarray, np.ndarray]:
    """Forward int16 complex FFT along the last axis (length n/2), kissfft's radix-4 stages."""
    length = re.shape[-1]
    re, im = re[..., tables.order], im[..., tables.order]
    batch = re.shape[:-1]
    m = 1
    while m < length:
        stride = length // (4 * m)
        shape = batch + (length // (4 * m), 4, m)
        re4, im4 = re.reshape(shape), im.reshape(shape)
        f_re = [_fixdiv(re4[..., q, :], 4) for q in range(4)]
        f_im = [_fixdiv(im4[..., q, :], 4) for q in range(4)]
        k = np.arange(m)
        tw = [tables.twiddles[(q * k * stride) % length] for q in (1, 2, 3)]
        s0 = _cmul(f_re[1], f_im[1], tw[0][:, 0], tw[0][:, 1])
        s1 = _cmul(f_re[2], f_im[2], tw[1][:, 0], tw[1][:, 1])
        s2 = _cmul(f_re[3], f_im[3], tw[2][:, 0], tw[2][:, 1])
        s5 = (_sub(f_re[0], s1[0]), _sub(f_im[0], s1[1]))
        out0 = (_add(f_re[0], s1[0]), _add(f_im[0], s1[1]))
        s3 = (_add(s0[0], s2[0]), _add(s0[1], s2[1]))
        s4 = (_sub(s0[0], s2[0]), _sub(s0[1], s2[1]))
        out2 = (_sub(out0[0], s3[0]), _sub(out0[1], s3[1]))
        out0 = (_add(out0[0], s3[0]), _add(out0[1], s3[1]))
        out1 = (_add(s5[0], s4[1]), _sub(s5[1], s4[0]))
        out3 = (_sub(s5[0], s4[1]), _add(s5[1], s4[0]))
        re = np.stack([out0[0], out1[0], out2[0], out3[0]], axis=-2).reshape(batch + (length,))
        im = np.stack([out0[1], out1[1], out2[1], out3[1]], axis=-2).reshape(batch + (length,))
        m *= 4
    return re, im


def rfft_int16(samples: np.ndarray, fft_length: int) -> np.ndarray:
    """int16 [..., fft_length] real input → int16 [..., fft_length / 2 + 1, 2] (re, im), exactly
    ``kiss_fftr`` with ``FIXED_POINT=16`` (scaled by 1 / fft_length)."""
    tables = rfft_tables(fft_length)
    half = fft_length // 2
    pairs = samples.astype(np.int16).reshape(samples.shape[:-1] + (half, 2))
    re, im = _complex_fft(pairs[..., 0], pairs[..., 1], tables)
    out = np.zeros(samples.shape[:-1] + (half + 1, 2), dtype=np.int16)
    dc_re, dc_im = _fixdiv(re[..., 0], 2), _fixdiv(im[..., 0], 2)
    out[..., 0, 0] = _add(dc_re, dc_im)
    out[..., half, 0] = _sub(dc_re, dc_im)
    k = np.arange(1, half // 2 + 1)
    fpk_re, fpk_im = _fixdiv(re[..., k], 2), _fixdiv(im[..., k], 2)
    fpnk_re = _fixdiv(re[..., half - k], 2)
    fpnk_im = _fixdiv(_wrap16(-im[..., half - k].astype(np.int32)), 2)
    f1k = (_add(fpk_re, fpnk_re), _add(fpk_im, fpnk_im))
    f2k = (_sub(fpk_re, fpnk_re), _sub(fpk_im, fpnk_im))
    tw = _cmul(f2k[0], f2k[1], tables.super_twiddles[k - 1, 0], tables.super_twiddles[k - 1, 1])
    f1k32 = (f1k[0].astype(np.int32), f1k[1].astype(np.int32))
    out[..., k, 0] = _wrap16((f1k32[0] + tw[0]) >> 1)
    out[..., k, 1] = _wrap16((f1k32[1] + tw[1]) >> 1)
    # At k = n/4 both writes land on one bin; the C writes bin n/2 - k last, so it wins.
    out[..., half - k, 0] = _wrap16((f1k32[0] - tw[0]) >> 1)
    out[..., half - k, 1] = _wrap16((tw[1] - f1k32[1]) >> 1)
    return out
