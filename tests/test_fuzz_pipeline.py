"""The fuzz campaign (`benchmarks/fuzz.py`) in CI: a fast seeded sample of mutated reference models
through read -> validate -> profile -> reference run has no traceback, hang or crash; the slow suite
takes a few survivors through compile -> verify under AddressSanitizer and UBSan."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import require_reference_file

FUZZ_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"
SAMPLE_SEED = 20261204
SAMPLE_CASES = 200
SURVIVORS = 4


def _fuzz_module():
    """benchmarks/fuzz.py as module ``fuzz`` (on sys.path, which the spawned worker inherits, so it
    can unpickle the cases)."""
    if str(FUZZ_PATH.parent) not in sys.path:
        sys.path.insert(0, str(FUZZ_PATH.parent))
    return importlib.import_module("fuzz")


@pytest.fixture(scope="module")
def fuzz():
    module = _fuzz_module()
    for relative in module.SMALL_MODELS:
        require_reference_file(relative)
    return module


def test_seeded_sample_has_no_traceback_hang_or_crash(fuzz) -> None:
    cases = fuzz.make_cases(SAMPLE_CASES, SAMPLE_SEED, fuzz.SMALL_MODELS)
    results = fuzz.run_campaign(cases, timeout_s=30)
    counts = Counter(r.outcome for r in results)
    bad = [r for r in results if r.outcome not in ("ok", "refused")]
    assert not bad, fuzz.summarize(results)
    assert counts["ok"] > 0 and counts["refused"] > 0, counts  # the mutations bite, and some pass
    for result in results:
        if result.outcome == "refused":
            assert "\n" not in result.message.strip()


def test_a_case_replays_to_the_same_outcome(fuzz) -> None:
    case = fuzz.Case(fuzz.SMALL_MODELS[1], SAMPLE_SEED, 7)
    assert fuzz.run_case(case) == fuzz.run_case(case)


def test_a_hanging_case_is_reported_as_a_hang(fuzz, monkeypatch) -> None:
    runner = fuzz.CaseRunner(timeout_s=0.01)
    try:
        result = runner.run(fuzz.Case(fuzz.SMALL_MODELS[2], SAMPLE_SEED, 0))
        assert result.outcome == "hang"  # a worker that cannot even start in 10 ms is killed
        assert runner.run(fuzz.Case(fuzz.SMALL_MODELS[0], SAMPLE_SEED, 1)).outcome == "hang"
    finally:
        runner.close()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                    reason="needs gcc and make")
def test_survivors_compile_and_verify_under_sanitizers(fuzz, tmp_path: Path) -> None:
    from mcuforge.cli import main
    from mcuforge.frontends.tflite_writer import write_tflite

    core_option = _core_option()
    verified = []
    for case in fuzz.make_cases(400, SAMPLE_SEED + 1, fuzz.SMALL_MODELS):
        graph, mutation = fuzz.survivor_graph(case)
        if graph is None:
            continue
        path = tmp_path / f"case{case.index}.tflite"
        write_tflite(graph, path)
        project = tmp_path / f"project{case.index}"
        status = main(["compile", str(path), "-o", str(project), core_option, "host", "--no-measure"])
        assert status in (0, 2), (case.key, mutation)  # C generation may refuse, in one line
        if status == 2:
            continue
        assert main(["verify", str(project), "--random", "2"]) == 0, (case.key, mutation)
        verified.append(case.key)
        if len(verified) == SURVIVORS:
            break
    assert len(verified) == SURVIVORS


def _core_option() -> str:
    """``--core`` where `compile` has it (issue 12 renames ``--target``), else ``--target``."""
    from mcuforge.commands.compile import command

    options = {name for parameter in command.params for name in parameter.opts}
    return "--core" if "--core" in options else "--target"
