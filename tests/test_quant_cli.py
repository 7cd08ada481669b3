"""`mcuforge quantize`: a model trained by `mcuforge train` becomes an int8 (or int4-weight) .tflite
that `mcuforge run` executes; bad input is one line and exit code 2."""

from __future__ import annotations

import numpy as np
import pytest

from mcuforge.cli import main
from mcuforge.data.idx import write_idx
from mcuforge.frontends.tflite import read_tflite
from mcuforge.ir import DType, OpKind

SPEC = "res12 in1 cls4 | cn_k3_s2_c8 | ir_k3_e2_c8 ir_k3_s2_e2_c12 | pool fc_c4"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained one epoch on a tiny IDX data set: (model.pt, data folder)."""
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 64), ("t10k", 16)):
        labels = np.arange(count) % 4
        images = (labels[:, None, None] * 60 + rng.integers(0, 40, (count, 10, 10))).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))
    run = tmp_path_factory.mktemp("run")
    assert main(["train", SPEC, "--dataset", str(folder), "--epochs", "1", "--batch-size", "16",
                 "--threads", "1", "--out", str(run), "--quiet"]) == 0
    return run / "model.pt", folder


def test_quantize_writes_a_runnable_int8_tflite(trained, tmp_path, capsys) -> None:
    model, _ = trained
    out = tmp_path / "model.tflite"
    assert main(["quantize", str(model), "-o", str(out), "--calibration", "32"]) == 0
    printed = capsys.readouterr().out
    assert "Flash" in printed and "zero point" in printed
    graph = read_tflite(out)
    assert graph.tensor(graph.inputs[0]).dtype is DType.INT8
    kinds = {op.kind for op in graph.ops}
    assert {OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED} <= kinds
    x = tmp_path / "x.npy"
    np.save(x, np.zeros(graph.tensor(graph.inputs[0]).shape, dtype=np.int8))
    assert main(["run", str(out), "--input", str(x), "--output", str(tmp_path / "y.npy")]) == 0
    assert np.load(tmp_path / "y.npy").shape == (1, 4)


def test_quantize_evaluates_float_and_int8_accuracy(trained, tmp_path, capsys) -> None:
    model, _ = trained
    out = tmp_path / "model.tflite"
    assert main(["quantize", str(model), "-o", str(out), "--calibration", "32", "--evaluate", "100"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    # the tiny test split has 16 images; accuracies are multiples of 1/16
    assert line.startswith("top-1 on the first 16 test images") and "int8" in line
    values = [float(v.rstrip("%,")) / 100 for v in line.split() if v.endswith("%") or v.endswith("%,")]
    assert len(values) == 2 and all(round(v * 16, 6) == round(v * 16) for v in values)


def test_quantize_int4_weights(trained, tmp_path) -> None:
    model, _ = trained
    out = tmp_path / "model4.tflite"
    assert main(["quantize", str(model), "-o", str(out), "--bits", "4", "--calibration", "16"]) == 0
    graph = read_tflite(out)
    convs = [op for op in graph.ops if op.kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D)]
    assert all(graph.tensor(op.inputs[1]).dtype is DType.INT4 for op in convs)


@pytest.mark.parametrize("args,message", [
    (["missing.pt", "-o", "{tmp}/m.tflite"], "not a trained model file"),
    (["{model}", "-o", "{tmp}/m.bin"], "must be a .tflite"),
    (["{model}", "-o", "{tmp}/m.tflite", "--observer", "median"], "unknown observer"),
    (["{model}", "-o", "{tmp}/no/such/m.tflite"], "does not exist"),
    (["mcunet-in3", "-o", "{tmp}/m.tflite"], "--dataset"),
])
def test_bad_input_is_one_line(trained, tmp_path, capsys, args, message) -> None:
    model, _ = trained
    argv = [a.format(model=model, tmp=tmp_path) for a in args]
    assert main(["quantize", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
