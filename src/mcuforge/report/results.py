"""Saved results of a run folder: one JSON file per finished stage under ``DIR/results/``.

A stage's file is written atomically when the stage finishes, so its presence means "done": an
interrupted run resumes from the first stage without a file, and `mcuforge report DIR` rebuilds the
report from these files alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_json_atomic, write_text_atomic
from ..errors import McuforgeError


def results_dir(run_dir: str | Path) -> Path:
    """The folder holding a run's stage results."""
    return Path(run_dir) / "results"


def save_stage(run_dir: str | Path, stage: str, payload: dict) -> Path:
    """Record that ``stage`` finished with ``payload``."""
    return write_json_atomic(results_dir(run_dir) / f"{stage}.json", payload)


def load_stage(run_dir: str | Path, stage: str) -> dict | None:
    """The saved result of ``stage``, or None when it has not finished."""
    path = results_dir(run_dir) / f"{stage}.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise McuforgeError(f"{path}: corrupt stage result ({exc.msg}); delete it to rerun the stage") from None


def load_all(run_dir: str | Path) -> dict[str, dict]:
    """Every finished stage of a run, by name."""
    folder = results_dir(run_dir)
    if not folder.is_dir():
        raise McuforgeError(f"{run_dir}: no saved results (expected {folder}/<stage>.json)")
    return {path.stem: load_stage(run_dir, path.stem) for path in sorted(folder.glob("*.json"))}  # type: ignore[misc]
