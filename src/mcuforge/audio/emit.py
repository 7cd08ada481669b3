"""The C of an audio front end: ``mf_frontend.h`` and ``mf_frontend.c`` rendered from jinja2 templates
(``audio/templates/``) with the front end's tables as constant arrays, plus a host runner
(``mf_frontend_main.c``: raw int16 PCM file in, int8 features out, by clip or by 20 ms hop) that the
tests and `build_host_frontend` use. `frontend_sources` packs the files for a generated model
project (`mcuforge.codegen.listen.FrontendSources`)."""

from __future__ import annotations

import textwrap
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import jinja2
import numpy as np

from ..codegen.build import BuildError, require_tool, run_child
from ..codegen.listen import FrontendSources
from . import frontend_by_name, signal_ops
from .clips import CLIP_WINDOW
from .kiss_fft import rfft_tables


def _cbody(values) -> str:
    text = ", ".join(str(int(value)) for value in np.asarray(values).reshape(-1))
    return textwrap.fill(text, width=100, initial_indent="    ", subsequent_indent="    ")


def _cbody_hex(values) -> str:
    text = ", ".join(f"0x{int(value):08x}u" for value in np.asarray(values).reshape(-1))
    return textwrap.fill(text, width=100, initial_indent="    ", subsequent_indent="    ")


def _pairs(re_im: np.ndarray) -> np.ndarray:
    """int16 [n, 2] (re, im) → uint32 [n]: re in the low half, im in the high half (the C's
    ``mf_fe_pair``)."""
    halves = np.asarray(re_im, dtype=np.int16).astype(np.uint16).astype(np.uint32)
    return halves[:, 0] | (halves[:, 1] << 16)


def window_saturates(window: np.ndarray, shift: int) -> bool:
    """Whether ``(x * w) >> shift`` leaves int16 for some int16 sample x and window value w (the C
    then saturates each product; otherwise it skips the clamp)."""
    corners = [(x * int(w)) >> shift for x in (-32768, 32767) for w in (window.min(), window.max())]
    return min(corners) < -32768 or max(corners) > 32767


def stage_twiddles(tables) -> np.ndarray:
    """The twiddles the C's radix-4 stages after the first read, in reading order: for each stage
    ``m = 4, 16, ...`` and each butterfly ``k = 1 .. m - 1``, those of its inputs 1, 2, 3
    (index ``q * k * stride``, ``stride = n / 4m``; k = 0 has unit twiddles), as packed pairs."""
    length = len(tables.twiddles)
    indices = []
    m = 4
    while m < length:
        stride = length // (4 * m)
        indices.extend(q * k * stride for k in range(1, m) for q in (1, 2, 3))
        m *= 4
    return _pairs(tables.twiddles[np.array(indices, dtype=np.int64)])


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mcuforge.audio", "templates"), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    environment.filters["cbody"] = _cbody
    environment.filters["cbody_hex"] = _cbody_hex
    return environment


def _bands(matrix: np.ndarray) -> tuple[list[dict], list[int]]:
    """Each band's contiguous run of bins (first to last non-zero weight) and the flat weights."""
    bands, weights = [], []
    for column in matrix.T:
        nonzero = np.flatnonzero(column)
        start, end = (int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else (0, 0)
        bands.append({"start": start, "width": end - start, "offset": len(weights)})
        weights.extend(int(value) for value in column[start:end])
    if max(weights) > 0xFFFF:
        raise ValueError("filter-bank weight does not fit uint16")
    return bands, weights


def _context(module: ModuleType) -> dict:
    tables = rfft_tables(module.FFT_LENGTH)
    if module.WINDOW_SAMPLES % 2 or module.WINDOW_SAMPLES > module.FFT_LENGTH:
        raise ValueError(f"{module.FRONTEND_NAME}: the C reads the window two samples at a time into "
                         f"the {module.FFT_LENGTH}-point FFT: {module.WINDOW_SAMPLES} samples do not fit")
    common = {
        "name": module.FRONTEND_NAME, "module": module.__name__.rsplit(".", 1)[1],
        "sample_rate": module.SAMPLE_RATE, "window_samples": module.WINDOW_SAMPLES,
        "hop_samples": module.HOP_SAMPLES, "hop_ms": 1000 * module.HOP_SAMPLES // module.SAMPLE_RATE,
        "features": module.NUM_CHANNELS, "output_scale": f"{module.OUTPUT_SCALE:.9g}",
        "output_zero_point": module.OUTPUT_ZERO_POINT, "fft_length": module.FFT_LENGTH,
        "window": module.WINDOW, "window_shift": module.WINDOW_SHIFT, "order": tables.order,
        "stage_twiddles": stage_twiddles(tables), "super_twiddles": _pairs(tables.super_twiddles),
        "window_saturates": window_saturates(module.WINDOW, module.WINDOW_SHIFT),
        "window_max": int(np.abs(module.WINDOW.astype(np.int64)).max()),
        "window_pairs": _pairs(np.asarray(module.WINDOW).reshape(-1, 2)),
        "log_lut": signal_ops.LOG_LUT, "log_coeff": signal_ops.LOG_COEFF,
        "log_output_scale": module.LOG_OUTPUT_SCALE,
        "energy_start": module.ENERGY_START, "energy_end": module.ENERGY_END,
    }
    if module.FRONTEND_NAME == "micro-speech":
        bands, weights = _bands(module.FILTERBANK_MATRIX)
        common.update(
            bands=bands, band_weights=weights, pcan_lut=module.PCAN_GAIN_LUT,
            smoothing=module.SMOOTHING, one_minus_smoothing=module.ONE_MINUS_SMOOTHING,
            alternate_smoothing=module.ALTERNATE_SMOOTHING,
            alternate_one_minus_smoothing=module.ALTERNATE_ONE_MINUS_SMOOTHING,
            smoothing_bits=module.SMOOTHING_BITS,
            spectral_subtraction_bits=module.SPECTRAL_SUBTRACTION_BITS,
            min_signal_remaining=module.MIN_SIGNAL_REMAINING, clamping=module.CLAMPING,
            pcan_snr_shift=module.PCAN_SNR_SHIFT, pcan_snr_bits=signal_ops.PCAN_SNR_BITS,
            pcan_output_bits=signal_ops.PCAN_OUTPUT_BITS,
            log_correction_bits=module.LOG_INPUT_CORRECTION_BITS,
            int8_multiplier=module.INT8_MULTIPLIER, int8_offset=module.INT8_OFFSET,
            int8_divisor=module.INT8_DIVISOR, int8_zero=module.INT8_ZERO)
    else:
        bands, weights = _bands(module.MEL_WEIGHTS)
        common.update(bands=bands, band_weights=weights, dct=module.DCT_MATRIX.tolist(),
                      output_shift=module.OUTPUT_SHIFT)
    return common


def render_frontend(name: str) -> dict[str, str]:
    """``{"mf_frontend.h": ..., "mf_frontend.c": ...}`` of the front end ``name``."""
    context = _context(frontend_by_name(name))
    environment = _environment()
    return {file: environment.get_template(f"{file}.j2").render(**context)
            for file in ("mf_frontend.h", "mf_frontend.c")}


def frontend_sources(name: str, clip_window: int = CLIP_WINDOW) -> FrontendSources:
    """The front end ``name`` as the files a model project includes (under ``frontend/``);
    ``clip_window``: the samples a clip is centred in before framing (`mcuforge.audio.clips`)."""
    module = frontend_by_name(name)
    return FrontendSources(
        name=name, files=render_frontend(name), sample_rate=module.SAMPLE_RATE,
        window_samples=module.WINDOW_SAMPLES, hop_samples=module.HOP_SAMPLES,
        features=module.NUM_CHANNELS, clip_window=clip_window)


def build_host_frontend(name: str, directory: Path, extra_flags: tuple[str, ...] = ()) -> Path:
    """Write the front end and its host runner into ``directory`` and compile them with gcc (-O2,
    C99, warnings as errors, then ``extra_flags``, e.g. the sanitizers); returns the binary:
    ``app clip|stream PCM.bin FEATURES.bin``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for file, text in render_frontend(name).items():
        (directory / file).write_text(text)
    (directory / "mf_frontend_main.c").write_text(
        _environment().get_template("mf_frontend_main.c").render())
    compiler = require_tool("gcc")
    binary = directory / "app"
    result = run_child([compiler, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *extra_flags,
                        "-I", str(directory),
                        str(directory / "mf_frontend.c"), str(directory / "mf_frontend_main.c"),
                        "-o", str(binary)], timeout_s=300)
    if result.returncode != 0:
        raise BuildError(f"gcc failed on the {name} front end: {(result.stderr or result.stdout).strip()[:2000]}")
    return binary
