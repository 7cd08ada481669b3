"""Test helpers for the audio front ends: the micro_speech preprocessor model's own parameters (its
constant tensors and flexbuffer custom options, read with the `tflite` schema package) and the oracle
(the tflite-micro pip interpreter running it once per 20 ms hop, state carried between calls:
`mcuforge.rivals.tflm_audio`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcuforge.rivals.tflm_audio import tflm_features, tflm_scores

PREPROCESSOR = "models/tflite_micro/audio_preprocessor_int8.tflite"
CLASSIFIER = "models/tflite_micro/micro_speech_quantized.tflite"
WAVS = ("yes_1000ms.wav", "no_1000ms.wav", "noise_1000ms.wav", "silence_1000ms.wav",
        "yes_30ms.wav", "no_30ms.wav")
_NUMPY_OF_TYPE = {7: np.int16, 2: np.int32, 15: np.uint32}


def preprocessor_parameters(path: Path) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """The custom options of each signal op (by custom code) and every constant tensor (by name)."""
    from flatbuffers import flexbuffers
    from tflite.Model import Model

    model = Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    options: dict[str, dict] = {}
    for index in range(graph.OperatorsLength()):
        operator = graph.Operators(index)
        code = model.OperatorCodes(operator.OpcodeIndex()).CustomCode()
        if code and operator.CustomOptionsLength():
            options[code.decode()] = flexbuffers.Loads(bytes(operator.CustomOptionsAsNumpy()))
    constants: dict[str, np.ndarray] = {}
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        buffer = model.Buffers(tensor.Buffer())
        if buffer.DataLength():
            constants[tensor.Name().decode()] = np.frombuffer(
                bytes(buffer.DataAsNumpy()), dtype=_NUMPY_OF_TYPE[tensor.Type()])
    return options, constants


def oracle_features(preprocessor: Path, pcm: np.ndarray) -> np.ndarray:
    """int8 [frames, 40]: TFLite Micro's preprocessor called once per 20 ms hop of ``pcm`` (int16),
    one fresh interpreter per clip (so its noise-reduction state starts at zero, as ours does)."""
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    return tflm_features(preprocessor, pcm)


def oracle_scores(classifier: Path, features: np.ndarray) -> np.ndarray:
    """int8 [4]: TFLite Micro running micro_speech_quantized.tflite on int8 [49, 40] features."""
    pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    return tflm_scores(classifier, features)
