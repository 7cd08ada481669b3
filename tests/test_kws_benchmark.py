"""benchmarks/kws_vs_tflm.py: its command line (one-line refusals, exit 2), its pieces (reference
features, ratios, the table), and (slow) a whole run: our listen build bit-exact with TFLite Micro on
every shared WAV, figures measured on both sides."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import one_error_line, require_reference_file

from mcuforge.audio import mfcc
from mcuforge.audio.clips import fit_clip
from mcuforge.errors import McuforgeError

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kws_vs_tflm.py"


def _load():
    spec = importlib.util.spec_from_file_location("kws_vs_tflm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["kws_vs_tflm"] = module
    spec.loader.exec_module(module)
    return module


def _jobs(bench, *argv: str):
    return bench.jobs_of(bench.parse_args(list(argv)))


def test_micro_speech_always_runs_first(tmp_path):
    bench = _load()
    (only,) = _jobs(bench)
    assert only.model.name == "micro_speech_quantized.tflite" and only.frontend == "micro-speech"
    a, b = tmp_path / "a.tflite", tmp_path / "b.tflite"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    jobs = _jobs(bench, "--model", str(a), "--model", str(b), "--frontend", "mfcc")
    assert [(j.model.name, j.frontend) for j in jobs[1:]] == [("a.tflite", "mfcc"), ("b.tflite", "mfcc")]
    jobs = _jobs(bench, "--model", str(a), "--frontend", "mfcc", "--model", str(b),
                 "--frontend", "micro-speech")
    assert [j.frontend for j in jobs] == ["micro-speech", "mfcc", "micro-speech"]


@pytest.mark.parametrize("argv, message", [
    (["--frontend", "mfcc"], "give --model too"),
    (["--model", "{a}", "--model", "{a}", "--frontend", "mfcc", "--frontend", "mfcc",
      "--frontend", "mfcc"], "2 --model but 3 --frontend"),
    (["--model", "{a}", "--frontend", "lpc"], "unknown audio front end 'lpc'"),
    (["--model", "{missing}", "--frontend", "mfcc"], "no such file"),
    (["--model", "{onnx}", "--frontend", "mfcc"], "a .tflite file is needed"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "a.tflite").write_bytes(b"x")
    (tmp_path / "m.onnx").write_bytes(b"x")
    paths = {"a": tmp_path / "a.tflite", "missing": tmp_path / "none.tflite", "onnx": tmp_path / "m.onnx"}
    bench = _load()
    assert bench.main([arg.format(**paths) for arg in argv]) == 2
    assert message in one_error_line(capsys)
    with pytest.raises(McuforgeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _jobs(bench, *[arg.format(**paths) for arg in argv])


def test_reference_features_are_the_clip_fitted_to_the_window():
    bench = _load()
    pcm = np.random.default_rng(3).integers(-2000, 2000, size=900, dtype=np.int16)
    assert np.array_equal(bench.reference_features("mfcc", pcm, 4), mfcc.features(fit_clip(pcm, 4)))
    assert bench.reference_features("mfcc", pcm, 4).shape == (4, 10)


def test_micro_speech_reference_features_are_tflms():
    pytest.importorskip("tflite_micro")
    require_reference_file("models/tflite_micro/audio_preprocessor_int8.tflite")
    from mcuforge.audio import micro_speech

    bench = _load()
    pcm = np.random.default_rng(4).integers(-3000, 3000, size=1000, dtype=np.int16)
    features = bench.reference_features("micro-speech", pcm, 3)
    assert features.shape == (3, 40) and np.array_equal(features, micro_speech.features(fit_clip(pcm, 3)))


def test_ratio():
    bench = _load()
    assert bench.ratio(300, 100) == "3.00x" and bench.ratio(None, 100) == "-" and bench.ratio(5, 0) == "-"


def test_table_labels_an_uncounted_preprocessor(capsys):
    bench = _load()
    row = {"model": "m.tflite", "frontend": "micro-speech", "frames": 49,
           "ours": {"sram_bytes": 1000, "flash_bytes": 4000, "instructions_per_second": 900,
                    "frontend_instructions_per_frame": 10, "model_instructions": 410},
           "tflm": {"sram_bytes": 3000, "flash_bytes": 2000, "kit_instructions": 820,
                    "preprocessor_instructions": None, "preprocessor_note": "no signal kernels"},
           "checks": {"yes_1000ms.wav": {"features_equal": True, "scores_equal": True,
                                         "scores": [1, 2], "kit_scores_equal": True}}}
    bench.print_table([row])
    out = capsys.readouterr().out
    assert "not counted" in out and "3.00x" in out and "0.50x" in out and "2.00x" in out
    assert "TFLM instructions are the classifier's only; no signal kernels" in out


@pytest.mark.slow
def test_a_whole_run_is_bit_exact_and_measured(tmp_path, capsys):
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-g++", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    pytest.importorskip("tflite_micro")
    pytest.importorskip("unicorn")
    require_reference_file("models/tflite_micro/audio_preprocessor_int8.tflite")
    bench = _load()
    from mcuforge.rivals.tflm_kit import kit_dir

    if not (kit_dir() / "build.sh").is_file():
        pytest.skip("the TFLite Micro + CMSIS-NN kit is not there")
    out = tmp_path / "kws.json"
    assert bench.main(["--json", str(out), "--workdir", str(tmp_path / "w")]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["bit_exact"] and set(row["checks"]) == set(bench.WAVS)
    assert row["checks"]["yes_1000ms.wav"]["label_index"] == 2  # yes
    assert row["checks"]["no_1000ms.wav"]["label_index"] == 3   # no
    ours, tflm = row["ours"], row["tflm"]
    assert ours["model_instructions"] + ours["frontend_instructions_per_second"] == \
        ours["instructions_per_second"]
    assert 0 < ours["frontend_sram_bytes"] < ours["sram_bytes"]
    assert 0 < ours["frontend_flash_bytes"] < ours["flash_bytes"]
    # The kit's README counts 1,488,903 instructions for micro_speech_quantized on random input.
    assert abs(tflm["kit_instructions"] - 1_488_903) < 0.01 * 1_488_903
    assert tflm["preprocessor_arena_bytes"] > 0 and tflm["classifier_arena_bytes"] > 0
    assert "SignalFftAutoScale" in tflm.get("preprocessor_note", "SignalFftAutoScale")
    assert "micro_speech_quantized.tflite" in capsys.readouterr().out
