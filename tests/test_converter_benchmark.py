"""benchmarks/converter_models.py: without TensorFlow it says so in one line and exits 0; with
``--models DIR`` it benches every .tflite there (bit-exact vs TFLite Micro, or the refusal)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from conftest import require_reference_file
from test_refusals import CASES

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "converter_models.py"


def _load():
    spec = importlib.util.spec_from_file_location("converter_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["converter_models"] = module
    spec.loader.exec_module(module)
    return module


def test_without_tensorflow_one_line_and_exit_0(capsys) -> None:
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed: the script would build the Keras models")
    assert _load().main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("TensorFlow is not installed")


def test_models_folder_bit_exact_and_refused(tmp_path: Path, capsys) -> None:
    pytest.importorskip("tflite_micro")
    shutil.copy(require_reference_file("models/tflite_micro/hello_world_int8.tflite"), tmp_path)
    CASES["float32"][0](tmp_path / "float32.tflite")
    assert _load().main(["--models", str(tmp_path), "--inputs", "3",
                         "--json", str(tmp_path / "rows.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["model", "result"]
    assert out[1].startswith("float32") and "refused: FULLY_CONNECTED at operator #0" in out[1]
    assert out[2].startswith("hello_world_int8") and "bit-exact (3 inputs)" in out[2]
    assert out[-1] == "2 models: 1 bit-exact, 0 differ, 1 refused"
    assert (tmp_path / "rows.json").exists()
