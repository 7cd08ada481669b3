"""Test helpers for the audio front ends: the micro_speech preprocessor model's own parameters (its
constant tensors and flexbuffer custom options, read with the `tflite` schema package) and the oracle
(the tflite-micro pip interpreter running it once per 20 ms hop, state carried between calls)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    interpreter = runtime.Interpreter.from_file(str(preprocessor), arena_size=64 * 1024)
    frames = []
    for start in range(0, len(pcm) - 480 + 1, 320):
        interpreter.set_input(pcm[start:start + 480].reshape(1, 480).astype(np.int16), 0)
        interpreter.invoke()
        frames.append(interpreter.get_output(0).reshape(40).copy())
    return np.array(frames, dtype=np.int8)


def oracle_scores(classifier: Path, features: np.ndarray) -> np.ndarray:
    """int8 [4]: TFLite Micro running micro_speech_quantized.tflite on int8 [49, 40] features."""
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    interpreter = runtime.Interpreter.from_file(str(classifier), arena_size=64 * 1024)
    interpreter.set_input(features.reshape(1, -1).astype(np.int8), 0)
    interpreter.invoke()
    return interpreter.get_output(0).reshape(-1).copy()
