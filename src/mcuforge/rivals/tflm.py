"""TFLite Micro's arena for a .tflite model, measured with the `tflite-micro` pip interpreter.

How (as recorded for reference/numbers.json "tflm_arena_measured"): in a child Python process,
``Interpreter.from_file(path, arena_size=16 MiB)``, set every input to zeros, invoke once, then
``print_allocations()``, which the RecordingMicroAllocator prints to the C-level stderr:

    [RecordingMicroAllocator] Arena allocation total 85264 bytes
    [RecordingMicroAllocator] Arena allocation head 55296 bytes
    [RecordingMicroAllocator] Arena allocation tail 29968 bytes
    [RecordingMicroAllocator] 'Persistent buffer data' used 24304 bytes with alignment ...

``head`` is TFLite Micro's planned non-persistent tensors (the activations, float I/O tensors
included), ``tail`` its persistent allocations (tensor structs, quantisation data, per-op buffers).
The child process keeps a crash or abort inside the C++ interpreter away from this process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import McuforgeError, ModelFileError
from ..frontends.tflite_decode import decode_model, read_model_bytes

DEFAULT_ARENA_BYTES = 16 * 1024 * 1024
_TIMEOUT_S = 300

_CHILD = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
path, arena_bytes, n_inputs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
interpreter = runtime.Interpreter.from_file(path, arena_size=arena_bytes)
for index in range(n_inputs):
    details = interpreter.get_input_details(index)
    interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), index)
interpreter.invoke()
sys.stdout.flush()
interpreter.print_allocations()
"""

_TOTALS = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_DETAIL = re.compile(r"'([^']+)' used (\d+) bytes")


@dataclass(frozen=True)
class TflmArena:
    """TFLite Micro's arena in bytes: ``total`` = ``head`` (planned tensors) + ``tail``
    (persistent allocations); ``breakdown`` names the persistent parts."""

    total: int
    head: int
    tail: int
    breakdown: Mapping[str, int] = field(default_factory=dict, compare=False)


def measure_tflm_arena(path: str | os.PathLike[str],
                       arena_size: int = DEFAULT_ARENA_BYTES) -> TflmArena:
    """Run ``path`` once in the TFLite Micro interpreter (child process) and return its arena."""
    path = Path(path)
    raw = decode_model(read_model_bytes(path), str(path))
    try:
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(arena_size), str(len(raw.inputs))],
            capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise McuforgeError(f"TFLite Micro did not finish {path} within {_TIMEOUT_S} s") from None
    if "No module named 'tflite_micro'" in result.stderr:
        raise McuforgeError("the tflite-micro package is not installed (pip install tflite-micro)")
    return parse_allocations(result.stderr, path, result.returncode)


def failure_reason(stderr: str, returncode: int) -> str:
    """Why the interpreter failed, from its ``stderr``: the kernel it lacks when it names one
    ("Didn't find op for builtin opcode 'TILE'", printed before it fails to allocate), else the
    last line."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    missing = [line for line in lines if "Didn't find op" in line]
    return (missing or lines[-1:] or [f"exit status {returncode}"])[0]


def parse_allocations(stderr: str, path: Path, returncode: int = 0) -> TflmArena:
    """The arena figures in the RecordingMicroAllocator's report ``stderr``."""
    totals = {kind: int(value) for kind, value in _TOTALS.findall(stderr)}
    if returncode != 0 or set(totals) != {"total", "head", "tail"}:
        raise ModelFileError(f"TFLite Micro could not run {path}: "
                             f"{failure_reason(stderr, returncode)}")
    breakdown = {label: int(value) for label, value in _DETAIL.findall(stderr)}
    return TflmArena(totals["total"], totals["head"], totals["tail"], breakdown)
