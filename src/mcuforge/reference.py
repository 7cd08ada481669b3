"""Where the reference models, configs and published figures live (never copied into the project).

``MCUFORGE_REFERENCE`` names the folder; the default is ``../shared/reference`` beside the project root
(or beside the current directory when the package is installed elsewhere).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from .errors import McuforgeError

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def reference_dir() -> Path:
    """The reference folder (it may not exist)."""
    configured = os.environ.get("MCUFORGE_REFERENCE")
    if configured:
        return Path(configured)
    for base in (_PROJECT_ROOT, Path.cwd()):
        candidate = (base / ".." / "shared" / "reference").resolve()
        if candidate.exists():
            return candidate
    return (_PROJECT_ROOT / ".." / "shared" / "reference").resolve()


def reference_file(relative: str) -> Path:
    """Path of a file in the reference folder; raises a clear error when it is missing."""
    path = reference_dir() / relative
    if not path.exists():
        raise McuforgeError(f"reference file {path} not found (set MCUFORGE_REFERENCE to the folder)")
    return path


@lru_cache(maxsize=1)
def published_numbers() -> dict:
    """``numbers.json``: figures measured on the reference models and published figures."""
    return json.loads(reference_file("numbers.json").read_text())
