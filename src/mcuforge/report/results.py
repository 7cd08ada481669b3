"""Saved results of a demo run folder: one JSON file per finished stage under ``DIR/results/``.

A stage's file is written atomically when the stage finishes, so its presence means "done": an
interrupted run resumes from the first stage without a file, and `mcuforge report DIR` rebuilds the
report from these files alone. The files are those of a `mcuforge.stages.Run` whose results folder
is ``results``; these helpers read and write them by run folder and stage name.
"""

from __future__ import annotations

from pathlib import Path

from ..stages import Run

RESULTS_FOLDER = "results"


def demo_run(run_dir: str | Path) -> Run:
    """The `Run` whose stage results live in ``run_dir/results``."""
    return Run(run_dir, results_folder=RESULTS_FOLDER)


def save_stage(run_dir: str | Path, stage: str, payload: dict) -> Path:
    """Record that ``stage`` finished with ``payload``."""
    return demo_run(run_dir).save(stage, payload)


def load_stage(run_dir: str | Path, stage: str) -> dict | None:
    """The saved result of ``stage``, or None when it has not finished."""
    return demo_run(run_dir).load(stage)


def load_all(run_dir: str | Path) -> dict[str, dict]:
    """Every finished stage of a run, by name."""
    return demo_run(run_dir).all_results()
