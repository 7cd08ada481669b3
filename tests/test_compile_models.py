"""`mcuforge compile` (and `bench`, `profile`) take every model `mcuforge import` takes, quantising it
first with the same step (`commands/calibration.py`): a float .pt2 with --calibration, a zoo name or
spec string (random weights, synthetic calibration said so, or --dataset), an int8 .tflite as it is.
The project keeps the int8 .tflite it compiled, so `mcuforge verify` checks the C against it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import one_error_line, write_image_folder

torch = pytest.importorskip("torch")

from mcuforge.cli import main  # noqa: E402
from mcuforge.frontends.tflite import read_tflite  # noqa: E402
from mcuforge.quant.torch_import import import_pt2  # noqa: E402
from tflm_support import assert_matches_tflm  # noqa: E402
from torch_models import ResidualConcatNet  # noqa: E402

SPEC = "res16 in3 cls4 | cn_k3_s2_c8 | ir_k3_e2_c8 | pool fc_c4"


@pytest.fixture(scope="module")
def pt2_model(tmp_path_factory):
    """A saved torch.export model and a .npy of NCHW calibration inputs."""
    folder = tmp_path_factory.mktemp("pt2")
    torch.manual_seed(0)
    module = ResidualConcatNet().eval()
    data = torch.randn(8, 3, 16, 16)
    pt2, npy = folder / "model.pt2", folder / "calib.npy"
    torch.export.save(torch.export.export(module, (data[:1],)), str(pt2))
    np.save(npy, data.numpy())
    return pt2, npy, data


def test_compile_quantises_a_pt2(pt2_model, tmp_path, capsys):
    pt2, npy, data = pt2_model
    out = tmp_path / "c"
    assert main(["compile", str(pt2), "--calibration", str(npy), "-o", str(out), "--core", "host",
                 "--no-measure"]) == 0
    text = capsys.readouterr().out
    assert "calibrated on 8 samples" in text and "argmax agreement" in text
    assert "int8 model model.tflite" in text
    report = json.loads((out / "report.json").read_text())
    assert report["quantised_from"] == str(pt2.resolve())
    assert report["source"] == str((out / "model.tflite").resolve())
    written = read_tflite(out / "model.tflite")
    assert [op.kind for op in written.ops] == [op.kind for op in import_pt2(pt2, data).ops]
    assert_matches_tflm(written, [np.full(written.tensor(written.inputs[0]).shape, 5, np.int8)])


@pytest.mark.slow
def test_verify_checks_the_c_of_a_compiled_pt2(pt2_model, tmp_path, capsys):
    pt2, npy, _ = pt2_model
    out = tmp_path / "c"
    assert main(["compile", str(pt2), "--calibration", str(npy), "-o", str(out), "--core", "host"]) == 0
    assert main(["verify", str(out), "--no-qemu", "--random", "1"]) == 0
    assert "bit-exact with the reference runtime" in capsys.readouterr().out


def test_compile_spec_string_with_synthetic_or_dataset_calibration(tmp_path, capsys):
    out = tmp_path / "spec"
    assert main(["compile", SPEC, "-o", str(out), "--core", "host", "--no-measure",
                 "--samples", "8"]) == 0
    text = capsys.readouterr().out
    assert "random weights (seed 0)" in text and "batch-norm statistics" in text
    assert "8 samples of synthetic images" in text and "8 synthetic samples" in text
    graph = read_tflite(out / "model.tflite")
    assert_matches_tflm(graph, [np.zeros(graph.tensor(graph.inputs[0]).shape, np.int8)])
    write_image_folder(tmp_path / "images", per_class=3, size=16)
    assert main(["compile", SPEC, "-o", str(out), "--core", "host", "--no-measure", "--dataset",
                 str(tmp_path / "images"), "--samples", "5"]) == 0
    text = capsys.readouterr().out
    assert f"calibrated on 5 samples of {tmp_path / 'images'}" in text and "synthetic" not in text
    # An int8 .tflite compiles as it is; calibration options are noted as unused.
    assert main(["compile", str(out / "model.tflite"), "-o", str(tmp_path / "again"), "--core",
                 "host", "--no-measure", "--dataset", str(tmp_path / "images")]) == 0
    text = capsys.readouterr().out
    assert "note: --calibration/--dataset not used" in text and "int8 model" not in text


def test_bench_and_profile_take_a_float_pt2_with_calibration(pt2_model, capsys):
    pt2, npy, _ = pt2_model
    assert main(["profile", str(pt2), "--json"]) == 0
    captured = capsys.readouterr()
    float_peak = json.loads(captured.out)["peak_activation_bytes"]
    assert "float32 graph" in captured.err and "--calibration" in captured.err
    assert main(["profile", str(pt2), "--json", "--calibration", str(npy)]) == 0
    int8_peak = json.loads(capsys.readouterr().out)["peak_activation_bytes"]
    assert int8_peak * 4 == float_peak
    assert main(["bench", str(pt2), "--calibration", str(npy), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ours"]["peak_activation_bytes"] == int8_peak
    assert result["path"] == f"{pt2} (quantised)" and result["tflm"]["total"] > 0


def test_float_models_and_bad_options_are_refused_in_one_line(pt2_model, tmp_path, capsys):
    pt2, npy, _ = pt2_model
    assert main(["bench", str(pt2)]) == 2
    line = one_error_line(capsys)
    assert "float model" in line and "--calibration" in line and "--dataset" in line
    assert main(["compile", str(pt2), "-o", str(tmp_path / "c"), "--calibration", str(npy),
                 "--observer", "median"]) == 2
    assert "median" in one_error_line(capsys)
    assert main(["compile", str(pt2), "-o", str(tmp_path / "c"), "--calibration", str(npy),
                 "--dataset", "fashion-mnist"]) == 2
    assert "exactly one of --calibration" in one_error_line(capsys)
    np.save(tmp_path / "nhwc.npy", np.zeros((4, 16, 16, 3), np.float32))
    assert main(["compile", SPEC, "-o", str(tmp_path / "c"), "--calibration",
                 str(tmp_path / "nhwc.npy")]) == 2
    assert "[4, 16, 16, 3] does not hold inputs of spec ([N, 3, 16, 16], NCHW)" in one_error_line(capsys)
    assert main(["profile", "mcunet-in0", "--calibration", str(npy)]) == 2
    assert "analytically" in one_error_line(capsys)
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_compile_zoo_model_with_random_weights(tmp_path, capsys):
    out = tmp_path / "in0"
    assert main(["compile", "mcunet-in0", "-o", str(out), "--core", "host", "--samples", "8"]) == 0
    text = capsys.readouterr().out
    assert "mcunet-in0: random weights" in text and "synthetic" in text
    assert main(["verify", str(out), "--no-qemu", "--random", "1"]) == 0
