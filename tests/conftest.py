"""Shared fixtures. Reference models are found through MCUFORGE_REFERENCE (default ../shared/reference,
relative to the project root); tests that need them skip with a reason when absent, and fail instead
when MCUFORGE_REQUIRE_REFERENCE=1 (CI)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mcuforge.reference import reference_dir

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def require_reference_file(relative: str) -> Path:
    """The path of a reference file, or skip (fail in CI) when it is not there."""
    path = reference_dir() / relative
    if not path.exists():
        message = f"reference file {path} not found (set MCUFORGE_REFERENCE)"
        if os.environ.get("MCUFORGE_REQUIRE_REFERENCE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def one_error_line(capsys) -> str:
    """The one line a refused command printed on stderr (no traceback, nothing else)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def write_image_folder(root: Path, per_class: int, labels=("a", "b"), size: int = 20,
                       seed: int = 0) -> Path:
    """A tiny image-folder data set (``root/train/<label>/<i>.png``, random RGB pixels) for
    calibration tests; returns ``root``."""
    image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(seed)
    for label in labels:
        folder = root / "train" / label
        folder.mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            image.fromarray(pixels).save(folder / f"{index}.png")
    return root


@pytest.fixture
def reference() -> Path:
    """The reference folder; skips (or fails in CI) when absent."""
    return require_reference_file(".")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under MCUFORGE_REQUIRE_REFERENCE=1 (CI) a test skipped because a module could not be imported
    (e.g. the tflite-micro interpreter) fails instead: CI must run every comparison."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("MCUFORGE_REQUIRE_REFERENCE") == "1" and report.skipped \
            and isinstance(report.longrepr, tuple) and "could not import" in str(report.longrepr[2]):
        report.outcome = "failed"
        report.longrepr = f"required module missing: {report.longrepr[2]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for whole test modules skipped at import by ``pytest.importorskip``."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("MCUFORGE_REQUIRE_REFERENCE") == "1" and report.outcome == "skipped" \
            and "could not import" in str(report.longrepr):
        report.outcome = "failed"
