"""`mcuforge.stages`: a finished stage is skipped on resume and its result loaded, a corrupt result
is one clear error, results are written atomically."""

from __future__ import annotations

import json
import os

import pytest

from mcuforge.errors import McuforgeError
from mcuforge.stages import Run, Stage


def _counting_stages(calls: list[str], fail_at: str | None = None) -> list[Stage[dict]]:
    def make(name: str):
        def compute(context: dict) -> dict:
            calls.append(name)
            if name == fail_at:
                raise KeyboardInterrupt
            previous = context["run"].result("first")["value"] if name != "first" else 0
            return {"value": previous + len(name)}
        return compute
    return [Stage("first", make("first")), Stage("second", make("second")),
            Stage("report", make("report"), always_runs=True)]


def test_resume_skips_finished_stages_and_loads_their_results(tmp_path):
    calls: list[str] = []
    run = Run(tmp_path, log=lambda line: None)
    with pytest.raises(KeyboardInterrupt):
        run.run_stages(_counting_stages(calls, fail_at="second"), {"run": run})
    assert calls == ["first", "second"]
    assert json.loads((tmp_path / "first.json").read_text()) == {"value": 5}
    assert not (tmp_path / "second.json").exists()
    lines: list[str] = []
    resumed = Run(tmp_path, log=lines.append)
    results = resumed.run_stages(_counting_stages(calls), {"run": resumed})
    assert calls == ["first", "second", "second", "report"]  # first skipped, report always reruns
    assert results == {"first": {"value": 5}, "second": {"value": 11}, "report": {"value": 11}}
    assert lines == ["[first] already finished, skipping (first.json)"]


def test_results_folder_and_stage_seconds(tmp_path):
    run = Run(tmp_path, results_folder="results", timed=True, log=lambda line: None)
    run.run_stage(Stage("compile", lambda context: {"arena_bytes": 100}), None)
    saved = json.loads((tmp_path / "results" / "compile.json").read_text())
    assert saved["arena_bytes"] == 100 and 0 <= saved["stage_seconds"] < 5
    assert run.stage_dir("compile") == tmp_path / "compile"
    assert Run(tmp_path, results_folder="results").all_results() == {"compile": saved}


@pytest.mark.parametrize("content", [b'{"value": 1', b"\xff\xfe not text", b"[1, 2]"])
def test_a_corrupt_stage_result_is_one_clear_error(tmp_path, content):
    (tmp_path / "first.json").write_bytes(content)
    run = Run(tmp_path, log=lambda line: None)
    with pytest.raises(McuforgeError) as error:
        run.run_stages(_counting_stages([]), {"run": run})
    message = str(error.value)
    assert str(tmp_path / "first.json") in message and "corrupt stage result" in message and "\n" not in message


def test_a_missing_result_is_a_clear_error(tmp_path):
    with pytest.raises(McuforgeError, match="has not finished"):
        Run(tmp_path).result("supernet")
    with pytest.raises(McuforgeError, match="no saved results"):
        Run(tmp_path / "nothing", results_folder="results").all_results()


def test_results_are_written_atomically(tmp_path, monkeypatch):
    run = Run(tmp_path)
    run.save("first", {"value": 1})

    def broken_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        Run(tmp_path).save("first", {"value": 2})
    monkeypatch.undo()
    assert json.loads((tmp_path / "first.json").read_text()) == {"value": 1}  # the old result, whole
    assert [path.name for path in tmp_path.iterdir()] == ["first.json"]  # no temporary file left


def test_a_run_that_does_not_write_keeps_results_in_memory(tmp_path):
    run = Run(tmp_path, writes=False, log=lambda line: None)
    run.run_stage(Stage("first", lambda context: {"value": 1}), None)
    assert run.result("first") == {"value": 1} and not (tmp_path / "first.json").exists()
