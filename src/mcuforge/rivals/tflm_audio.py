"""TFLite Micro's keyword spotting, run by the `tflite-micro` pip interpreter (x86 reference kernels):
``audio_preprocessor_int8.tflite`` (TFLM's signal ops) called once per 20 ms hop, its state carried
from call to call, then the classifier on the frames. This is the oracle the micro_speech front end
and its listen builds are checked against."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import McuforgeError

PREPROCESSOR_WINDOW = 480   # samples of one call: 30 ms at 16 kHz
PREPROCESSOR_HOP = 320      # 20 ms
_ARENA_BYTES = 64 * 1024


def _runtime():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise McuforgeError("the tflite-micro package is not installed (pip install tflite-micro)") from None
    return runtime


def tflm_features(preprocessor: str | os.PathLike[str], pcm: np.ndarray) -> np.ndarray:
    """int8 [frames, 40]: the preprocessor called on every full 30 ms window of the int16 clip
    ``pcm``, 20 ms apart, by one fresh interpreter (its noise-reduction state starts at zero)."""
    interpreter = _runtime().Interpreter.from_file(str(Path(preprocessor)), arena_size=_ARENA_BYTES)
    samples = np.asarray(pcm, dtype=np.int16)
    frames = []
    for start in range(0, len(samples) - PREPROCESSOR_WINDOW + 1, PREPROCESSOR_HOP):
        interpreter.set_input(samples[start:start + PREPROCESSOR_WINDOW].reshape(1, -1), 0)
        interpreter.invoke()
        frames.append(np.array(interpreter.get_output(0)).reshape(-1))
    return np.array(frames, dtype=np.int8)


def tflm_scores(classifier: str | os.PathLike[str], features: np.ndarray) -> np.ndarray:
    """int8 scores of the classifier ``classifier`` on the int8 feature frames ``features`` (reshaped
    to its input)."""
    interpreter = _runtime().Interpreter.from_file(str(Path(classifier)), arena_size=16 * 1024 * 1024)
    shape = interpreter.get_input_details(0)["shape"]
    interpreter.set_input(np.asarray(features, dtype=np.int8).reshape(shape), 0)
    interpreter.invoke()
    return np.array(interpreter.get_output(0)).reshape(-1).astype(np.int8)
