"""Differential check of one graph against TensorFlow Lite Micro (the tflite-micro pip interpreter)."""

from __future__ import annotations

import numpy as np
import pytest

from mcuforge.frontends.tflite_writer import serialize_tflite
from mcuforge.ir import Graph
from mcuforge.runtime.reference import Interpreter


def assert_matches_tflm(graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    """Run ``graph`` in our interpreter and in TFLite Micro; require identical outputs."""
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    ours = Interpreter(graph).invoke(inputs)[0]
    # Keep the model bytes referenced while the interpreter lives: it reads from them lazily.
    model_bytes = serialize_tflite(graph)
    tflm = runtime.Interpreter.from_bytes(model_bytes, arena_size=4 * 1024 * 1024)
    for index, array in enumerate(inputs):
        tflm.set_input(array, index)
    tflm.invoke()
    reference = tflm.get_output(0).copy()
    del tflm, model_bytes
    assert ours.dtype == reference.dtype and ours.shape == reference.shape
    mismatches = int(np.sum(ours != reference))
    assert mismatches == 0, f"{mismatches} of {ours.size} values differ from TFLite Micro"
    return ours
