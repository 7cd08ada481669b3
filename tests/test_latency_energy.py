"""Latency and energy per inference (`mcuforge.analysis.latency_energy`): the formula on known
numbers, measured cycles replacing the estimate, boards without datasheet current, and the
`bench` / `compile` output with --board and --cycles (fast paths: --cycles counts nothing,
compile --no-measure builds nothing)."""

from __future__ import annotations

import json

import pytest

from codegen_support import HAVE_ARM
from conftest import one_error_line, require_reference_file
from mcuforge.analysis.latency_energy import (ESTIMATED, MEASURED, board_estimates, estimate_inference,
                                              estimates_json, parse_cycles)
from mcuforge.cli import main
from mcuforge.errors import McuforgeError
from mcuforge.targets import BOARDS, Board, get_board

HELLO = "models/tflite_micro/hello_world_int8.tflite"

# A made-up board with round numbers, so every figure of the formula can be checked by hand.
ROUND = Board("round", 1024, 1024, "cortex-m4", 100_000_000, "test board", run_current_a=0.02,
              supply_v=3.0, current_source="test figures")


def test_formula_on_known_numbers() -> None:
    estimate = estimate_inference(ROUND, instructions=5_000_000)
    assert estimate.cycles_source == ESTIMATED and estimate.cycles == 5_000_000
    assert estimate.latency_s == pytest.approx(0.05)           # 5e6 x 1 / 100 MHz
    assert estimate.power_w == pytest.approx(0.06)             # 3 V x 20 mA
    assert estimate.energy_j == pytest.approx(0.003)           # 0.06 W x 0.05 s
    figures = estimate.to_json()
    assert figures["latency_ms"] == pytest.approx(50.0) and figures["energy_uj"] == pytest.approx(3000.0)
    assert figures["cpi_assumed"] == 1.0 and figures["current_source"] == "test figures"


def test_cpi_scales_the_estimate() -> None:
    assert estimate_inference(ROUND, 1_000_000, cpi=1.5).latency_s == pytest.approx(0.015)


def test_measured_cycles_replace_the_estimate() -> None:
    estimate = estimate_inference(ROUND, instructions=5_000_000, cycles=7_360_000)
    assert estimate.cycles_source == MEASURED and estimate.cycles == 7_360_000
    assert estimate.latency_s == pytest.approx(0.0736)
    assert estimate.to_json()["cpi_assumed"] is None
    assert "measured 7,360,000 cycles" in estimate.describe()


def test_plumerai_vww_cycles_on_the_f746() -> None:
    # MLPerf Tiny v1.0: 7.36 M cycles for VWW on the STM32F746 at 216 MHz is 34.08 ms.
    estimate = estimate_inference(get_board("stm32f746"), cycles=7_360_000)
    assert 1000 * estimate.latency_s == pytest.approx(34.07, abs=0.01)


def test_board_without_datasheet_current_has_no_energy() -> None:
    no_current = [b for b in BOARDS.values() if not b.has_energy_figures]
    for board in no_current:
        estimate = estimate_inference(board, instructions=1000)
        assert estimate.energy_j is None and estimate.power_w is None
        assert "no datasheet run current" in estimate.describe()
    for board in BOARDS.values():
        assert board.has_energy_figures == bool(board.current_source), board.name


def test_nrf52840_datasheet_figures() -> None:
    board = get_board("nrf52840")
    estimate = estimate_inference(board, instructions=64_000)      # 1 ms at 64 MHz
    assert estimate.energy_j == pytest.approx(3.0 * 3.3e-3 * 1e-3)
    assert "ICPU0" in board.current_source


def test_every_board_without_a_board_name() -> None:
    estimates = board_estimates(1000)
    assert [e.board.name for e in estimates] == list(BOARDS)
    report = estimates_json(estimates)
    assert "CPI = 1 assumed" in report["formula"] and len(report["boards"]) == len(BOARDS)
    assert any("instructions are not cycles" in note for note in report["notes"])
    with pytest.raises(McuforgeError, match="give --board"):
        board_estimates(None, None, cycles=1000)


@pytest.mark.parametrize("text", ["0", "-5", "abc", "1.5", ""])
def test_bad_cycles_are_refused(text: str) -> None:
    with pytest.raises(McuforgeError, match="--cycles"):
        parse_cycles(text)


def test_cycles_accept_separators() -> None:
    assert parse_cycles("3_830_000") == parse_cycles("3,830,000") == 3_830_000


def test_bench_with_board_and_measured_cycles(capsys) -> None:
    pytest.importorskip("tflite_micro")
    model = require_reference_file(HELLO)
    assert main(["bench", str(model), "--board", "nrf52840", "--cycles", "64000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (entry,) = result["inference"]["boards"]
    assert entry["board"] == "nrf52840" and entry["cycles_source"] == "measured"
    assert entry["latency_ms"] == pytest.approx(1.0) and entry["energy_uj"] == pytest.approx(9.9)
    assert main(["bench", str(model), "--board", "stm32f746", "--cycles", "216000"]) == 0
    out = capsys.readouterr().out
    assert "stm32f746 @ 216 MHz: latency 1 ms (measured 216,000 cycles)" in out
    assert "no datasheet run current on record" in out and "formula:" in out


@pytest.mark.parametrize("arguments, message", [
    (["--board", "nrf52840", "--cycles", "0"], "--cycles '0'"),
    (["--board", "nrf52840", "--cycles", "fast"], "--cycles 'fast'"),
    (["--cycles", "1000"], "give --board too"),
])
def test_bench_bad_cycles_is_one_line_exit_2(arguments, message, capsys) -> None:
    model = require_reference_file(HELLO)
    assert main(["bench", str(model), *arguments]) == 2
    assert message in one_error_line(capsys)


def test_compile_report_holds_the_measured_latency(tmp_path, capsys) -> None:
    model = require_reference_file(HELLO)
    out = tmp_path / "hello"
    assert main(["compile", str(model), "-o", str(out), "--board", "nrf52840", "--no-measure",
                 "--cycles", "32000"]) == 0
    assert "nrf52840 @ 64 MHz: latency 0.5 ms (measured 32,000 cycles)" in capsys.readouterr().out
    inference = json.loads((out / "report.json").read_text())["inference"]
    (entry,) = inference["boards"]
    assert entry["cycles_source"] == "measured" and entry["latency_s"] == pytest.approx(5e-4)
    assert entry["energy_j"] == pytest.approx(3.0 * 3.3e-3 * 5e-4)
    assert "energy_J = V x I_run x latency_s" in inference["formula"]


def test_compile_cycles_without_board_is_one_line_exit_2(tmp_path, capsys) -> None:
    model = require_reference_file(HELLO)
    assert main(["compile", str(model), "-o", str(tmp_path / "x"), "--no-measure",
                 "--cycles", "1000"]) == 2
    assert "give --board too" in one_error_line(capsys)
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_bench_counts_instructions_for_every_board(capsys) -> None:
    pytest.importorskip("tflite_micro")
    model = require_reference_file(HELLO)
    assert main(["bench", str(model), "--latency", "--json"]) == 0
    boards = json.loads(capsys.readouterr().out)["inference"]["boards"]
    assert [entry["board"] for entry in boards] == list(BOARDS)
    instructions = {entry["instructions"] for entry in boards}
    assert len(instructions) == 1 and instructions.pop() > 0  # one Cortex-M7 count for all boards
    for entry in boards:
        assert entry["cycles_source"] == "estimated" and entry["cycles"] == entry["instructions"]
        assert entry["latency_s"] == pytest.approx(entry["cycles"] / entry["clock_hz"])
        assert (entry["energy_j"] is None) == (entry["run_current_a"] is None)


def test_html_report_shows_latency_and_energy_of_the_board(tmp_path) -> None:
    from mcuforge.report.html import render_report
    from mcuforge.report.results import save_stage

    save_stage(tmp_path, "compile", {"board": "nrf52840", "instructions": 640_000, "macs": 1000})
    text = render_report(tmp_path).read_text()
    assert "estimated latency on nrf52840 at 64 MHz" in text and "10 ms" in text
    assert "99 uJ" in text  # 3 V x 3.3 mA x 10 ms
    assert "CPI = 1 assumed" in text
