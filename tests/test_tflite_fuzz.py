"""Fuzzing the .tflite reader: truncated and bit-flipped copies of every reference model must either
read into a valid graph or raise a `McuforgeError` — never another exception, never a hang."""

from __future__ import annotations

import random
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import require_reference_file
from mcuforge.errors import McuforgeError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.ir import validate
from test_tflite_reader import REFERENCE_MODELS

MUTATIONS_PER_MODEL = 40
MUTATIONS_PER_LARGE_MODEL = 16  # files over 400 kB take ~0.2 s per read
TIME_LIMIT_S = 10


class _Hang(Exception):
    pass


@contextmanager
def _time_limit(seconds: int):
    def on_alarm(signum, frame):
        raise _Hang(f"read_tflite ran over {seconds} s")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _weight_ranges(data: bytes, path: Path) -> list[tuple[int, int]]:
    """Byte ranges of the large constant payloads, so that most flips hit the flatbuffer's tables
    (offsets, vtables, shapes, indices) instead of weights."""
    ranges = []
    for tensor in read_tflite(path).tensors.values():
        if tensor.data is not None and tensor.data.nbytes >= 64:
            start = data.find(tensor.data.tobytes())
            if start >= 0:
                ranges.append((start, start + tensor.data.nbytes))
    return ranges


def _mutate(data: bytes, weights: list[tuple[int, int]], rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        return data[:rng.randrange(len(data))]
    mutated = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        while True:
            position = rng.randrange(len(data))
            in_weights = any(lo <= position < hi for lo, hi in weights)
            if not in_weights or rng.random() < 0.1:
                break
        if rng.random() < 0.5:
            mutated[position] ^= 1 << rng.randrange(8)
        else:
            mutated[position] = rng.randrange(256)
    return bytes(mutated)


@pytest.mark.parametrize("relative", REFERENCE_MODELS)
def test_mutated_models_never_crash_or_hang(relative: str, tmp_path: Path) -> None:
    path = require_reference_file(relative)
    data = path.read_bytes()
    weights = _weight_ranges(data, path)
    rng = random.Random(f"{relative}-2026")
    outcomes = {"graph": 0, "error": 0}
    target = tmp_path / "mutated.tflite"
    count = MUTATIONS_PER_MODEL if len(data) < 400_000 else MUTATIONS_PER_LARGE_MODEL
    for n in range(count):
        target.write_bytes(_mutate(data, weights, rng))
        with _time_limit(TIME_LIMIT_S):
            try:
                graph = read_tflite(target)
            except McuforgeError as exc:
                assert str(exc), f"mutation {n}: empty error message"
                outcomes["error"] += 1
                continue
            except _Hang:
                pytest.fail(f"mutation {n} of {relative} hangs the reader")
            except Exception as exc:  # the failure this test exists to catch
                pytest.fail(f"mutation {n} of {relative} raised {type(exc).__name__}: {exc}")
        validate(graph)
        outcomes["graph"] += 1
    assert outcomes["error"] > 0  # the mutations do reach the checks
