"""Shared fixtures. Reference models are found through MCUFORGE_REFERENCE (default ../shared/reference,
relative to the project root); tests that need them skip with a reason when absent, and fail instead
when MCUFORGE_REQUIRE_REFERENCE=1 (CI)."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture
def reference() -> Path:
    """The reference folder; skips (or fails in CI) when absent."""
    return require_reference_file(".")
