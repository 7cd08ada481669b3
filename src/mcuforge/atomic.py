"""Atomic file writes: write a temporary file beside the destination, flush and fsync it, then
``os.replace`` it over the destination. A crash or kill leaves either the old file or the new one,
never a partial file; on any error the temporary file is removed."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", make_parents: bool = True) -> Iterator[IO]:
    """Open a temporary file for writing (``mode`` "wb" or "w"); it replaces ``path`` when the block
    ends without an error. The parent folder is created unless ``make_parents`` is False (then a
    missing folder raises FileNotFoundError)."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, mode) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600; the result is an ordinary file
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, make_parents: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see `atomic_open` for ``make_parents``)."""
    with atomic_open(path, "wb", make_parents) as stream:
        stream.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as stream:
        stream.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], payload: Any, indent: int = 1) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically."""
    with atomic_open(path, "w") as stream:
        json.dump(payload, stream, indent=indent)
        stream.write("\n")
    return Path(path)
