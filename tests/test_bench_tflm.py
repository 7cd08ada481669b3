"""TFLite Micro arena measurement and `mcuforge bench MODEL --against tflm`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import require_reference_file
from mcuforge.rivals.tflm import measure_tflm_arena, parse_allocations
from mcuforge.cli import main
from mcuforge.errors import ModelFileError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.reference import published_numbers
from test_tflite_reader import REFERENCE_MODELS

pytest.importorskip("tflite_micro")

PERSON_DETECT = "models/tflite_micro/person_detect.tflite"


def _relative(file_name: str) -> str:
    return next(r for r in REFERENCE_MODELS if Path(r).name == file_name)


def _measured() -> dict:
    require_reference_file("numbers.json")
    return published_numbers()["tflm_arena_measured"]


def test_person_detect_arena_matches_numbers_json() -> None:
    arena = measure_tflm_arena(require_reference_file(PERSON_DETECT))
    assert (arena.total, arena.head, arena.tail) == (85264, 55296, 29968)
    assert arena.total == arena.head + arena.tail
    assert arena.breakdown["Persistent buffer data"] > 0


@pytest.mark.parametrize("file_name", ["vww_96_int8.tflite", "kws_ref_model.tflite",
                                       "pretrainedResnet_quant.tflite", "ad01_int8.tflite",
                                       "mcunet-320kb-1mb_imagenet.tflite", "vww.tflite",
                                       "micro_speech_quantized.tflite"])
def test_arena_of_every_measured_model(file_name: str) -> None:
    expected = _measured()[file_name]
    arena = measure_tflm_arena(require_reference_file(_relative(file_name)))
    assert {"total": arena.total, "head": arena.head, "tail": arena.tail} == expected


def test_written_model_needs_the_same_arena(tmp_path: Path) -> None:
    source = require_reference_file("models/tinyengine/vww.tflite")
    written = write_tflite(read_tflite(source), tmp_path / "vww.tflite")
    assert measure_tflm_arena(written) == measure_tflm_arena(source)


def test_allocation_report_without_totals_is_an_error() -> None:
    with pytest.raises(ModelFileError, match="Didn't find op for builtin opcode"):
        parse_allocations("Didn't find op for builtin opcode 'GATHER'\n", Path("m.tflite"), 1)


def test_bench_json(capsys) -> None:
    path = require_reference_file(PERSON_DETECT)
    assert main(["bench", str(path), "--against", "tflm", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tflm"] == {**result["tflm"], "total": 85264, "head": 55296, "tail": 29968}
    ours = result["ours"]["peak_activation_bytes"]
    assert 0 < ours <= result["ours"]["peak_activation_bytes_no_inplace"]
    assert result["ratios"]["tflm_total_over_ours"] == round(85264 / ours, 4)
    assert result["ratios"]["tflm_head_over_ours"] == round(55296 / ours, 4)
    assert 0 < result["ours"]["arena_bytes"] <= result["tflm"]["head"]
    assert result["ratios"]["tflm_head_over_arena"] == round(55296 / result["ours"]["arena_bytes"], 4)
    assert result["float_io_bytes"] == 0
    assert any("persistent" in note for note in result["notes"])


def test_bench_table_names_both_sides(capsys) -> None:
    path = require_reference_file("models/tinyengine/vww.tflite")
    assert main(["bench", str(path), "--against", "tflm"]) == 0
    out = capsys.readouterr().out
    assert "224,976 B" in out and "161,472 B" in out and "63,504 B" in out
    assert "TFLM total / ours" in out and "TFLM head / ours" in out
    assert "76,808 B" in out  # the float input [1,80,80,3] and output [1,2], which TFLM counts


@pytest.mark.parametrize("argument", ["does-not-exist.tflite", "notes.txt"])
def test_bench_bad_model_is_one_line_exit_2(argument: str, tmp_path: Path, capsys) -> None:
    if argument == "notes.txt":
        (tmp_path / argument).write_text("not a model")
    assert main(["bench", str(tmp_path / argument), "--against", "tflm"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_bench_corrupt_model_is_exit_2(tmp_path: Path, capsys) -> None:
    data = require_reference_file(PERSON_DETECT).read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[:1000])
    assert main(["bench", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cut.tflite" in err and err.count("\n") == 1
