"""Resumable runs: a `Run` is a folder, its work a sequence of named `Stage`s.

Every stage returns a JSON-ready dict, its *result*, which is written atomically
(`mcuforge.atomic`) to ``<results folder>/<stage>.json`` when the stage finishes; the file's
presence means "done". On a rerun a finished stage is skipped and its saved result loaded, so an
interrupted run continues from its first unfinished stage. A stage that takes long may also keep
checkpoints of its own progress (training epochs, evolution generations) in its folder,
``<run folder>/<stage>/`` (`Run.stage_dir`), and continue from them when it reruns.

Stages are plain functions of one argument, the caller's *context* (settings, data, objects that
earlier stages built); a stage reads the results of earlier stages through `Run.result`, so a
skipped stage's result serves later stages exactly as a freshly computed one does. A saved result
that cannot be read is a `McuforgeError` naming the file (one line, no traceback).

The demo keeps its results in ``DIR/results/`` (read back by `mcuforge report`), the search in its
run folder itself (``stage1.json``, ``evolution.json``, ...). This module sits at the bottom of the
package: it imports only `errors` and `atomic`, so training, NAS and pipelines can all use it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, Sequence, TypeVar

from .atomic import write_json_atomic
from .errors import McuforgeError

Context = TypeVar("Context")


@dataclass(frozen=True)
class Stage(Generic[Context]):
    """One named step of a run: ``compute(context)`` returns its JSON-ready result.

    ``always_runs`` stages (e.g. a report built from the other results) run on every rerun; the
    others are skipped once their result is saved. A stage with ``needed`` runs only where
    ``needed(context)`` holds when its turn comes (e.g. a check that only some winners need).
    """

    name: str
    compute: Callable[[Context], dict]
    always_runs: bool = False
    needed: Callable[[Context], bool] | None = None


class Run:
    """A run folder whose stages save one JSON result each (module doc).

    ``results_folder`` is where the ``<stage>.json`` files go, relative to ``folder`` ("" for the
    folder itself). ``writes`` False makes a run that reads results but saves none (the ranks other
    than 0 of a distributed run). ``timed`` adds ``stage_seconds`` (the stage's wall-clock time) to
    every result `run_stages` saves. ``log`` receives one line per skipped stage.
    """

    def __init__(self, folder: str | Path, results_folder: str = "", writes: bool = True, timed: bool = False,
                 log: Callable[[str], None] = print):
        self.folder = Path(folder)
        self.results_folder = self.folder / results_folder if results_folder else self.folder
        self.writes = writes
        self.timed = timed
        self.log = log
        self._results: dict[str, dict] = {}

    def result_path(self, stage: str) -> Path:
        """The file holding ``stage``'s saved result."""
        return self.results_folder / f"{stage}.json"

    def stage_dir(self, stage: str) -> Path:
        """The folder for ``stage``'s own files (checkpoints, artefacts); not created here."""
        return self.folder / stage

    def load(self, stage: str) -> dict | None:
        """``stage``'s saved result, or None when it has not finished. An unreadable file is a
        `McuforgeError` naming it."""
        if stage in self._results:
            return self._results[stage]
        path = self.result_path(stage)
        if not path.exists():
            return None
        try:
            payload = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
            raise McuforgeError(f"{path}: corrupt stage result ({reason}); delete it to rerun the stage") from None
        except OSError as exc:
            raise McuforgeError(f"{path}: cannot read stage result ({exc.strerror or exc})") from None
        if not isinstance(payload, dict):
            raise McuforgeError(f"{path}: corrupt stage result (not a JSON object); delete it to rerun the stage")
        self._results[stage] = payload
        return payload

    def result(self, stage: str) -> dict:
        """The result of ``stage``, which must have finished (computed now or saved earlier)."""
        payload = self.load(stage)
        if payload is None:
            raise McuforgeError(f"stage {stage!r} has not finished (no {self.result_path(stage)})")
        return payload

    def save(self, stage: str, payload: dict) -> Path:
        """Record ``payload`` as ``stage``'s result (atomically, when this run writes)."""
        self._results[stage] = payload
        path = self.result_path(stage)
        if self.writes:
            write_json_atomic(path, payload)
        return path

    def run_stage(self, stage: Stage[Context], context: Context) -> dict:
        """``stage``'s result: the saved one when it has finished (and does not always run), else
        computed now and saved."""
        if not stage.always_runs:
            saved = self.load(stage.name)
            if saved is not None:
                self.log(f"[{stage.name}] already finished, skipping ({self._shown(stage.name)})")
                return saved
        started = time.perf_counter()
        payload = stage.compute(context)
        if self.timed:
            payload = {**payload, "stage_seconds": time.perf_counter() - started}
        self.save(stage.name, payload)
        return payload

    def run_stages(self, stages: Sequence[Stage[Context]], context: Context, progress_label: str | None = None
                   ) -> dict[str, dict]:
        """Run ``stages`` in order (`run_stage`); with ``progress_label`` a rich progress bar counts
        them. Returns the result of every stage that was needed, by name."""
        if progress_label is None:
            return {stage.name: self.run_stage(stage, context) for stage in stages
                    if stage.needed is None or stage.needed(context)}
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        results: dict[str, dict] = {}
        with Progress(TextColumn(f"[bold]{progress_label}[/bold] {{task.description}}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} stages"), TimeElapsedColumn()) as progress:
            task = progress.add_task("starting", total=len(stages))
            for stage in stages:
                progress.update(task, description=stage.name)
                if stage.needed is None or stage.needed(context):
                    results[stage.name] = self.run_stage(stage, context)
                progress.advance(task)
        return results

    def all_results(self) -> dict[str, dict]:
        """Every saved result in the results folder, by stage name (sorted)."""
        if not self.results_folder.is_dir():
            raise McuforgeError(f"{self.folder}: no saved results (expected {self.results_folder}/<stage>.json)")
        return {path.stem: self.result(path.stem) for path in sorted(self.results_folder.glob("*.json"))}

    def _shown(self, stage: str) -> str:
        path = self.result_path(stage)
        try:
            return str(path.relative_to(self.folder))
        except ValueError:
            return str(path)

