"""Atomic writes. Files: write a temporary file beside the destination, flush and fsync it, then
``os.replace`` it over the destination. A crash or kill leaves either the old file or the new one,
never a partial file; on any error the temporary file is removed. Folders (generated projects):
build in a staging folder beside the destination under a lock, then swap it in with one rename
(`folder_lock`, `make_staging_folder`, `replace_folder`, `clean_stale_staging`)."""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from .errors import FolderBusyError


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", make_parents: bool = True) -> Iterator[IO]:
    """Open a temporary file for writing (``mode`` "wb" or "w"); it replaces ``path`` when the block
    ends without an error. The parent folder is created unless ``make_parents`` is False (then a
    missing folder raises FileNotFoundError)."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # name the file the caller asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from None
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


# --- whole folders -----------------------------------------------------------------------------
# A generated project is built in a staging folder beside its destination and swapped in with one
# rename, while a lock file beside the destination keeps a second writer out:
#
#   .DIR.lock                    flock()ed by the writer for the whole build (released by the kernel
#                                when the writer dies, so a lock is never stale)
#   .DIR.<pid>.<random>.tmp      the staging folder (left behind only by a killed writer)
#   .DIR.<pid>.<random>.old      the previous project between the two renames of the fallback swap
#
# On Linux the swap is one ``renameat2(RENAME_EXCHANGE)``; elsewhere the old folder is renamed aside
# and the new one renamed in, and the next writer renames an orphaned ``.old`` back when the
# destination is missing. Either way a kill at any moment leaves the old or the new folder, complete.

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
LOCK_WAIT_S_DEFAULT = 300.0


def lock_path(destination: str | os.PathLike[str]) -> Path:
    """The lock file of ``destination``: ``.NAME.lock`` beside it."""
    destination = Path(destination)
    return destination.parent / f".{destination.name}.lock"


@contextmanager
def folder_lock(destination: str | os.PathLike[str], wait_s: float | None = None) -> Iterator[Path]:
    """Hold the exclusive lock of ``destination`` for the block. Waits up to ``wait_s`` seconds
    (default: ``MCUFORGE_LOCK_WAIT_S`` or `LOCK_WAIT_S_DEFAULT`; 0 refuses at once) for another
    writer, then raises `FolderBusyError`."""
    if wait_s is None:
        wait_s = float(os.environ.get("MCUFORGE_LOCK_WAIT_S", LOCK_WAIT_S_DEFAULT))
    path = lock_path(destination)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise FolderBusyError(f"{destination}: another mcuforge process is writing it "
                                          f"(lock {path} held for more than {wait_s:g} s)") from None
                time.sleep(0.05)
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(descriptor)  # closing releases the flock


def clean_stale_staging(destination: str | os.PathLike[str]) -> list[Path]:
    """Remove the staging folders that killed writers left beside ``destination`` and restore an
    orphaned previous folder (``.old``) when ``destination`` itself is missing. Call it only while
    holding `folder_lock`. Returns the paths removed."""
    destination = Path(destination)
    parent = destination.parent
    asides = sorted(parent.glob(f".{destination.name}.*.old"), key=lambda p: p.stat().st_mtime)
    if not destination.exists() and asides:
        os.rename(asides.pop(), destination)
    removed = []
    for stale in [*parent.glob(f".{destination.name}.*.tmp"), *asides]:
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed


def make_staging_folder(destination: str | os.PathLike[str]) -> Path:
    """A new, empty staging folder beside ``destination`` (``.NAME.<pid>.<random>.tmp``)."""
    destination = Path(destination)
    return Path(tempfile.mkdtemp(prefix=f".{destination.name}.{os.getpid()}.", suffix=".tmp",
                                 dir=destination.parent))


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with Linux ``renameat2(RENAME_EXCHANGE)``; False where the
    system call is unavailable (other kernels, file systems that refuse it)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                       _RENAME_EXCHANGE)
    return result == 0


def replace_folder(staging: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
    """Put the complete folder ``staging`` at ``destination`` (replacing a folder there) so that
    ``destination`` is at every moment the old folder or the new one; the old one is deleted."""
    staging, destination = Path(staging), Path(destination)
    if not destination.exists():
        os.rename(staging, destination)
        return
    if _exchange(staging, destination):
        shutil.rmtree(staging)  # holds the old folder now
        return
    aside = staging.with_suffix(".old")
    os.rename(destination, aside)
    os.rename(staging, destination)
    shutil.rmtree(aside)
