"""benchmarks/torchvision_models.py: where torchvision does not import (the project venv: PyPI's
torchvision fails beside the torch 2.13.0 wheel) it says so in one line and exits 0; where it does
(a side venv with torch 2.14.1 + torchvision 0.29.1, see the script's doc) a small run of the three
paths must be bit-exact with TFLite Micro and its C equal to the reference runtime (slow)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "torchvision_models.py"


def _load():
    spec = importlib.util.spec_from_file_location("torchvision_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["torchvision_models"] = module
    spec.loader.exec_module(module)
    return module


def _torchvision_error() -> str | None:
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # ImportError, or RuntimeError "operator torchvision::nms does not exist"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def test_without_torchvision_one_line_and_exit_0(capsys) -> None:
    if _torchvision_error() is None:
        pytest.skip("torchvision imports here: the script would run the model")
    assert _load().main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("torchvision is not importable here")


@pytest.mark.slow
def test_mobilenet_v3_small_through_every_path(tmp_path, capsys) -> None:
    why = _torchvision_error()
    if why is not None:
        pytest.skip(f"torchvision is not importable here ({why}); run this test in a venv with "
                    "torch==2.14.1 torchvision==0.29.1 (benchmarks/torchvision_models.py)")
    pytest.importorskip("onnxruntime")
    assert _load().main(["--held-out", "12", "--tflm", "2", "--c-inputs", "2", "--no-qemu",
                         "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "mcuforge import" in line or "graph PTQ" in line]
    assert len(rows) == 3, out
    assert all("bit-exact (2)" in row and "host equal (2)" in row for row in rows), out
    assert "byte for byte the from_torch graph" in out
