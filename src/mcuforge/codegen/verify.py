"""Differential check of a generated project against the int8 reference runtime.

The caller reads the model named in ``report.json`` again (`project_model_source`; code generation
takes a Graph and loads no model file) and passes its graph; its float edge conversions are stripped
(the C API is int8), and the reference interpreter gives the expected int8 outputs of every input. The project
is built for the host with AddressSanitizer and UndefinedBehaviorSanitizer and run on all inputs at
once; a Cortex-M project is also run under QEMU. A run passes when every output byte is equal.

Inputs: the extremes (all -128, all 0, all 127), random int8 tensors from fixed seeds, and the
model's sample inputs from the reference folder where one is known (`samples`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import McuforgeError
from ..ir import Graph
from ..runtime.reference import Interpreter
from .build import build, run_host
from .edges import strip_edge_conversions
from .qemu import run_qemu
from .samples import sample_inputs
from .targets import get_core


@dataclass(frozen=True)
class VerifyCase:
    """One input and the reference output, both packed int8 bytes."""

    label: str
    input: bytes
    expected: bytes


@dataclass(frozen=True)
class VerifyResult:
    """Pass/fail of one case on one runner (``mismatches`` = differing output bytes)."""

    runner: str
    label: str
    mismatches: int
    total: int

    @property
    def passed(self) -> bool:
        """True when the output is bit-exact."""
        return self.mismatches == 0


def load_project_report(directory: Path) -> dict:
    """``report.json`` of a project made by `mcuforge compile`."""
    path = Path(directory) / "report.json"
    if not path.exists():
        raise McuforgeError(f"{directory}: no report.json (not a folder made by `mcuforge compile`)")
    try:
        report = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise McuforgeError(f"{path}: not a valid report.json ({exc}); compile the project again") from None
    if not isinstance(report, dict):
        raise McuforgeError(f"{path}: not a valid report.json (not a JSON object)")
    return report


def project_model_source(directory: Path) -> str:
    """The model file named in the project's ``report.json``; an error when it is gone."""
    source = load_project_report(directory).get("source")
    if not source or not Path(source).exists():
        raise McuforgeError(f"{directory}: the model {source!r} named in report.json is not available")
    return source


def make_cases(model: Graph, source: str, random_count: int = 3, seed: int = 0) -> list[VerifyCase]:
    """Inputs and reference outputs for ``model``, the graph read from ``source`` (whose sample
    inputs are looked up by file name, `samples`)."""
    graph = strip_edge_conversions(model).graph
    interpreter = Interpreter(graph)
    shapes = [graph.tensors[n].shape for n in graph.inputs]
    inputs: list[tuple[str, list[np.ndarray]]] = []
    for value in (-128, 0, 127):
        inputs.append((f"all {value}", [np.full(s, value, dtype=np.int8) for s in shapes]))
    for k in range(random_count):
        rng = np.random.default_rng(seed + k)
        inputs.append((f"random seed {seed + k}",
                       [rng.integers(-128, 128, size=s, dtype=np.int8) for s in shapes]))
    inputs.extend(sample_inputs(source, graph))
    cases = []
    for label, arrays in inputs:
        expected = interpreter.invoke(arrays)
        cases.append(VerifyCase(label, b"".join(a.tobytes() for a in arrays),
                                b"".join(np.asarray(e).tobytes() for e in expected)))
    return cases


def _compare(runner: str, cases: list[VerifyCase], produced: bytes) -> list[VerifyResult]:
    results, offset = [], 0
    for case in cases:
        got = np.frombuffer(produced[offset:offset + len(case.expected)], dtype=np.int8)
        want = np.frombuffer(case.expected, dtype=np.int8)
        mismatches = int(np.count_nonzero(got != want)) if got.size == want.size else want.size
        results.append(VerifyResult(runner, case.label, mismatches, want.size))
        offset += len(case.expected)
    return results


def verify_project(directory: Path, model: Graph, random_count: int = 3, seed: int = 0,
                   qemu: bool = True) -> list[VerifyResult]:
    """Build and run the project on the host (sanitised) and, for Cortex-M targets, under QEMU;
    ``model`` is the graph of the file `project_model_source` names, loaded by the caller."""
    directory = Path(directory)
    report = load_project_report(directory)
    cases = make_cases(model, project_model_source(directory), random_count, seed)
    packed = b"".join(c.input for c in cases)
    out_size = len(cases[0].expected)
    binary = build(directory, "host-asan")
    results = _compare("host-asan", cases, run_host(binary, packed, out_size, len(cases)))
    target = get_core(report.get("target", "host"))
    if qemu and target.is_cortex_m:
        elf = build(directory, target.name)
        run = run_qemu(elf, target, packed, out_size, len(cases))
        results += _compare(f"qemu {target.qemu_machine}", cases, run.outputs)
    return results
