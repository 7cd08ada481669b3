"""benchmarks/speed_vs_tflm.py and `rivals.tflm_kit`: the inputs both sides get, the output check
(our report's digest against TFLite Micro's output), and the kit's failures as one line. The full
kit build (minutes per library) runs in the benchmark, not here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import require_reference_file
from mcuforge.codegen.project import compile_model
from mcuforge.errors import McuforgeError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.rivals import tflm_kit

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    path = PROJECT_ROOT / "benchmarks" / "speed_vs_tflm.py"
    spec = importlib.util.spec_from_file_location("speed_vs_tflm", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["speed_vs_tflm"] = module
    spec.loader.exec_module(module)
    return module


def test_our_digest_equals_tflite_micro_output(tmp_path):
    """The measured inference of `compile` and the tflite-micro interpreter on the same input agree,
    through the digest the benchmark compares; a changed output byte changes the digest."""
    pytest.importorskip("tflite_micro")
    bench = _benchmark()
    path = require_reference_file("models/tflite_micro/hello_world_int8.tflite")
    graph = read_tflite(path)
    report = compile_model(graph, tmp_path / "hw", "cortex-m7", source=str(path))
    inputs = bench.model_inputs(graph)
    outputs = tflm_kit.tflm_python_outputs(path, inputs, len(graph.outputs))
    assert bench.output_digest(graph, outputs) == report["measured_output_sha256"]
    changed = (outputs[0].copy(),)
    changed[0].flat[0] = np.int8(changed[0].flat[0] ^ 1)
    assert bench.output_digest(graph, changed) != report["measured_output_sha256"]
    assert set(report["code_bytes_per_kernel"]) == set(report["kernels"])
    assert all(size > 0 for size in report["code_bytes_per_kernel"].values())


def test_float_model_inputs_dequantise_our_int8_input():
    bench = _benchmark()
    graph = read_tflite(require_reference_file("models/tinyengine/vww.tflite"))
    (x,) = bench.model_inputs(graph)
    assert x.dtype == np.float32
    from mcuforge.codegen.edges import strip_edge_conversions
    from mcuforge.codegen.project import measurement_bytes
    int8 = strip_edge_conversions(graph).graph
    quant = int8.tensors[int8.inputs[0]].quant
    back = np.clip(np.round(x / np.float32(quant.scale[0])) + quant.zero_point[0], -128, 127)
    assert back.astype(np.int8).tobytes() == measurement_bytes(int8)


def test_missing_kit_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MCUFORGE_TFLM_KIT", str(tmp_path / "no-kit"))
    with pytest.raises(McuforgeError, match="kit is not at"):
        tflm_kit.count_tflm_cmsis_nn(tmp_path / "m.tflite", tmp_path / "work", [])


def test_outputs_of_several_tensors_are_read_in_order(tmp_path):
    np.save(tmp_path / "out_0.npy", np.arange(3, dtype=np.int8))
    np.save(tmp_path / "out_1.npy", np.arange(5, dtype=np.int8))
    first, second = tflm_kit._read_outputs(tmp_path / "out.npy")
    assert first.size == 3 and second.size == 5
