"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint is one ``torch.save`` file (``checkpoint.pt`` in the run folder) holding the model,
optimizer and scheduler states, the position in the run (epoch, step within the epoch, global
step), the epoch's sample order, the running loss/accuracy sums of the unfinished epoch, the
per-epoch history, the RNG states of torch, numpy and Python, the config and caller metadata (e.g.
the model spec). It is written to a temporary file in the same folder, flushed to disk, and then
renamed over the old one with ``os.replace``: a crash or kill at any moment leaves either the old
checkpoint or the new one, never a torn file, and a run that fails before its first save leaves an
earlier checkpoint untouched.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_open
from ..errors import ModelFileError

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "mcuforge-train-checkpoint"
VERSION = 1


def checkpoint_path(run_dir: str | Path) -> Path:
    """The checkpoint file of a run folder."""
    return Path(run_dir) / CHECKPOINT_NAME


def atomic_torch_save(payload: Any, path: str | Path) -> None:
    """``torch.save(payload, path)`` atomically (`mcuforge.atomic`)."""
    with atomic_open(path, "wb") as stream:
        torch.save(payload, stream)

def rng_states() -> dict[str, Any]:
    """The current states of torch's, numpy's and Python's global generators."""
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set the global generators back to ``rng_states()``'s result."""
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write a training state (see the module doc) atomically, stamped with the format and version."""
    atomic_torch_save({"format": FORMAT, "version": VERSION, **state, "rng": rng_states()}, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by `save_checkpoint`; a missing, torn or foreign file is a `ModelFileError`."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no checkpoint at {path}")
    try:
        # weights_only=False: the checkpoint holds numpy and Python RNG states; only load your own runs.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelFileError(f"{path}: corrupt or truncated checkpoint ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an mcuforge training checkpoint")
    if state.get("version") != VERSION:
        raise ModelFileError(f"{path}: checkpoint version {state.get('version')}, this mcuforge reads {VERSION}")
    return state
