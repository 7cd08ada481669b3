"""`mcuforge listen` and the front end recorded in a .tflite: TFLite Micro's micro_speech model hears
yes and no with TFLM's own int8 scores; mcuforge's ``mcuforge.kws`` metadata survives the file and
TFLite Micro still loads it; bad WAVs and models without a front end are one line, exit 2."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest

from conftest import one_error_line, require_reference_file
from mcuforge.audio import micro_speech
from mcuforge.cli import main
from mcuforge.data.audio_clips import read_clip
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import serialize_tflite, write_tflite
from mcuforge.pipeline.kws_model import KwsInfo, kws_info, with_kws_metadata

CLASSIFIER = "models/tflite_micro/micro_speech_quantized.tflite"
WAV = "models/tflite_micro/{}_1000ms.wav"


def _tflm_scores(model_bytes: bytes, features: np.ndarray) -> np.ndarray:
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    tflm = runtime.Interpreter.from_bytes(model_bytes, arena_size=1 << 20)
    tflm.set_input(features.reshape(1, -1).astype(np.int8), 0)
    tflm.invoke()
    return tflm.get_output(0).reshape(-1).copy()


@pytest.mark.parametrize("word", ["yes", "no"])
def test_micro_speech_hears_the_word_with_tflm_scores(word, capsys):
    model = require_reference_file(CLASSIFIER)
    wav = require_reference_file(WAV.format(word))
    assert main(["listen", str(model), str(wav), "--frontend", "micro-speech", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["label"] == word and printed["labels"] == ["silence", "unknown", "yes", "no"]
    features = micro_speech.features(read_clip(wav))
    expected = _tflm_scores(model.read_bytes(), features)
    assert printed["scores"] == expected.tolist()


def test_recorded_front_end_survives_the_file_and_tflm_loads_it(tmp_path, capsys):
    model = require_reference_file(CLASSIFIER)
    info = KwsInfo("micro-speech", ("quiet", "other", "yes", "no"))
    graph = with_kws_metadata(read_tflite(model), info)
    path = write_tflite(graph, tmp_path / "tagged.tflite")
    again = read_tflite(path)
    assert kws_info(again) == info
    assert again.metadata["tflite_metadata"]["mcuforge.kws"] == info.to_json()
    features = micro_speech.features(read_clip(require_reference_file(WAV.format("yes"))))
    assert _tflm_scores(serialize_tflite(again), features).tolist() == \
        _tflm_scores(model.read_bytes(), features).tolist()
    # no --frontend needed now, and the labels are the recorded ones
    assert main(["listen", str(path), str(require_reference_file(WAV.format("yes")))]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "yes"


def _wav(path, rate=16000, width=2, channels=1, frames=8000):
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(b"\x01" * frames * width * channels)
    return path


@pytest.mark.parametrize("case, match", [
    ("rate", "sample rate 8000 Hz, expected 16000 Hz"),
    ("stereo", "2 channels"),
    ("8-bit", "8-bit samples"),
    ("truncated", "truncated"),
    ("not-wav", "not a PCM WAV"),
    ("no-frontend", "records no audio front end: give --frontend"),
])
def test_bad_input_is_one_line(tmp_path, capsys, case, match):
    model = require_reference_file(CLASSIFIER)
    wav = {"rate": lambda: _wav(tmp_path / "a.wav", rate=8000),
           "stereo": lambda: _wav(tmp_path / "a.wav", channels=2),
           "8-bit": lambda: _wav(tmp_path / "a.wav", width=1),
           "truncated": lambda: _wav(tmp_path / "a.wav"),
           "not-wav": lambda: tmp_path / "a.wav",
           "no-frontend": lambda: _wav(tmp_path / "a.wav")}[case]()
    if case == "truncated":
        wav.write_bytes(wav.read_bytes()[:5000])
    if case == "not-wav":
        wav.write_bytes(b"this is not a wav file at all")
    args = ["listen", str(model), str(wav)] + ([] if case == "no-frontend" else ["--frontend", "micro-speech"])
    assert main(args) == 2
    assert match in one_error_line(capsys)


def test_resample_flag_takes_other_rates(tmp_path, capsys):
    model = require_reference_file(CLASSIFIER)
    wav = _wav(tmp_path / "quiet.wav", rate=8000)
    assert main(["listen", str(model), str(wav), "--frontend", "micro-speech", "--resample", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("silence", "unknown", "yes", "no")
