"""`mcuforge train --task kws`: a DS-CNN trained on FSDD features (a few clips, one epoch here), int8
with the front end's int8 features as its input (scale 1/128, zero point 0), the front end and labels
recorded in the .tflite, `listen` reading them back; and the demo end to end (slow)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import one_error_line, require_reference_file
from mcuforge.cli import main
from mcuforge.data.fsdd import fsdd_files
from mcuforge.frontends.tflite import read_tflite
from mcuforge.pipeline.kws import KwsSettings, train_kws
from mcuforge.pipeline.kws_model import kws_info


@pytest.fixture()
def tiny_fsdd(tmp_path):
    """Digits 0-2, two clips per speaker (30 files)."""
    folder = tmp_path / "fsdd"
    folder.mkdir()
    for path, digit, _ in fsdd_files(require_reference_file("data/fsdd/recordings")):
        if digit < 3 and int(path.stem.split("_")[2]) < 2:
            shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.slow
def test_kws_job_writes_an_int8_model_that_records_its_front_end(tiny_fsdd, tmp_path, capsys):
    settings = KwsSettings(model="dscnn", width=0.25, dataset=str(tiny_fsdd), epochs=1, batch_size=8,
                           calibration=16, progress=False)
    net, graph, result = train_kws(settings, tmp_path / "run")
    quant = graph.tensor(graph.inputs[0]).quant
    assert (quant.scale[0], quant.zero_point[0]) == (1 / 128, 0)
    assert graph.tensor(graph.inputs[0]).shape == (1, 49, 40, 1)
    assert result.test_speakers == ("yweweler",) and result.test_clips == 6
    assert 0 <= result.float_int8_agreement <= 6
    saved = json.loads((tmp_path / "run" / "kws.json").read_text())
    assert saved["int8_accuracy"] == result.int8_accuracy
    info = kws_info(read_tflite(result.tflite))
    assert info.frontend == "micro-speech" and info.labels == tuple("0123456789")
    wav = tiny_fsdd / "1_yweweler_0.wav"
    assert main(["listen", result.tflite, str(wav), "--resample", "--json"]) == 0
    heard = json.loads(capsys.readouterr().out)
    assert heard["label"] in info.labels and len(heard["scores"]) == 10


def test_quantised_input_is_the_int8_feature(tiny_fsdd):
    from mcuforge.data.fsdd import load_fsdd
    from mcuforge.models.spec_torch import build_torch
    from mcuforge.pipeline.kws import int8_scores, kws_spec, quantize_kws

    data = load_fsdd(tiny_fsdd, "test", progress=False)
    net = build_torch(kws_spec("dscnn", 0.25, data)).eval()
    graph = quantize_kws(net, data, 4, seed=0)
    quant = graph.tensor(graph.inputs[0]).quant
    assert (quant.scale[0], quant.zero_point[0]) == (1 / 128, 0)
    assert int8_scores(graph, data).shape == (6, 10)


@pytest.mark.parametrize("args, match", [
    (["train", "--task", "kws", "--resolution", "32"], "--resolution do not apply to --task kws"),
    (["train"], "give MODEL"),
    (["train", "--task", "kws", "--dataset", "fsdd:theo", "-q"], "no speaker 'theo'"),
])
def test_train_command_refuses_in_one_line(args, match, capsys, tmp_path):
    assert main(args + ["-o", str(tmp_path / "run")]) == 2
    assert match in one_error_line(capsys)


@pytest.mark.slow
def test_kws_demo_end_to_end_on_a_few_clips(tiny_fsdd, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--task", "kws", "--dataset", str(tiny_fsdd), "--epochs", "1", "--out", str(out)]) == 0
    mcu = json.loads((out / "results" / "mcu.json").read_text())
    assert mcu["bit_identical_scores"] == mcu["clips"] == 6
    assert mcu["int8_mcu_agree"] == 6
    compiled = json.loads((out / "results" / "compile.json").read_text())
    assert compiled["measured_sram_bytes"] <= 64 * 1024
    assert (out / "model_int8.tflite").is_file() and (out / "report" / "confusion.png").is_file()
    assert np.sum(mcu["confusion"]) == 6
