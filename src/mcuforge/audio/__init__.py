"""Audio front ends: sound (int16 PCM) to the int8 features a keyword-spotting model reads, in numpy
for training and evaluation and as generated C for the device, bit for bit the same.

- `wav`: reading 16-bit mono PCM WAV files (typed errors for anything else);
- `micro_speech`: TFLite Micro's micro_speech pipeline (window, int16 KISS FFT, filter bank, noise
  reduction, PCAN, log), bit-exact with its preprocessor model; `kiss_fft` and `signal_ops` hold the
  integer kernels it is built from;
- `mfcc`: an MFCC front end (the MLPerf Tiny KWS convention, 49 × 10) in integer arithmetic;
- `clips`: the one clip rule (centred in the 1 s window, then framed), shared by training, `listen`
  and the generated C;
- `stream`: streaming keyword spotting (hops, feature ring, averaged-posterior recognizer) as the C does;
- `emit`: the C of a front end (streaming ``mf_frontend_init`` / ``mf_frontend_process``);
- `measure`: a front end's Flash, scratch and state bytes on a Cortex-M core, measured from its object.

Why a dedicated package and not signal ops in the IR: TFLM's signal ops are custom ops with state
(the noise estimate) and flexbuffer options, called once per 20 ms hop outside the classifier; a
front end is fixed per model family, not something the planner, the patch search or NAS should see.
One vectorised numpy implementation (training runs it on thousands of clips) and one C file per
front end are simpler to keep bit-exact than nine stateful IR op kinds.

May import: errors, atomic, reference, targets, arith, codegen.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import McuforgeError

FRONTEND_MODULES = {"micro-speech": "micro_speech", "mfcc": "mfcc"}


def frontend_by_name(name: str) -> ModuleType:
    """The front-end module whose ``FRONTEND_NAME`` is ``name`` (``micro-speech`` or ``mfcc``): it
    has ``features(pcm)``, ``features_batch(pcm)``, ``SAMPLE_RATE``, ``NUM_CHANNELS``,
    ``OUTPUT_SCALE`` and ``OUTPUT_ZERO_POINT``."""
    if name not in FRONTEND_MODULES:
        raise McuforgeError(f"unknown audio front end {name!r}: choose one of "
                            f"{', '.join(sorted(FRONTEND_MODULES))}")
    return importlib.import_module(f"{__name__}.{FRONTEND_MODULES[name]}")
