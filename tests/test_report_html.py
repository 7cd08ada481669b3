"""The HTML report renders from saved stage results, and headless Chromium loads every image and
finds every table filled."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mcuforge.cli import main
from mcuforge.report.html import render_report
from mcuforge.report.results import load_stage, save_stage

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_binary() -> str:
    """The Chromium executable, or skip (fail on CI, where `make test` installs it)."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium not installed (make test installs Debian's chromium as root)")
    pytest.skip("chromium not installed")


def dump_dom(html: Path, profile_dir: Path) -> str:
    """The DOM after load, as headless Chromium sees it."""
    result = subprocess.run(
        [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--virtual-time-budget=5000",
         "--dump-dom", html.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class TableCells(HTMLParser):
    """Collects the text of every <td>, per table."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "td":
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[-1].append("".join(self._cell).strip())
            self._cell = None


def check_report_in_browser(html: Path, tmp_path: Path) -> None:
    """Every image decoded and every table cell holds a figure (shared with the slow demo test)."""
    dom = dump_dom(html, tmp_path / "chromium-profile")
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded, "the report's load script did not run"
    assert loaded.group(1) == loaded.group(2) and int(loaded.group(2)) >= 4, loaded.group(0)
    parser = TableCells()
    parser.feed(dom)
    assert parser.tables
    for cells in parser.tables:
        assert cells and all(cell and cell != "-" for cell in cells), cells


def write_full_results(run_dir: Path) -> None:
    """Stage results with every field the report reads (values are test data, not measurements)."""
    save_stage(run_dir, "search", {
        "target": "stm32f412", "sram_bytes": 65536, "flash_bytes": 262144, "chosen_space": "w0.5-r48",
        "best_spec": "res48 in1 cls10 | cn_k3_s2_c8 | pool fc_c10",
        "space_macs": {"w0.5-r48": [1e6, 2e6, 3e6], "w0.3-r64": [0.5e6, 1.5e6]},
        "candidates": [{"sram_bytes": 40000, "accuracy": 0.90}, {"sram_bytes": 60000, "accuracy": 0.91,
                                                                  "kind": "random"}]})
    save_stage(run_dir, "train", {"float_accuracy": 0.91})
    save_stage(run_dir, "quantize", {"int8_accuracy": 0.905})
    save_stage(run_dir, "compile", {
        "schedule": "2x2@b3", "arena_bytes": 50000, "peak_activation_bytes": 49000,
        "blocks_layer": [["b0", 60000], ["b1", 30000]], "blocks_patch": [["b0", 20000], ["b1", 30000]],
        "arena_placements": [["x", 0, 1000, -1, 1], ["y", 1000, 2000, 0, 2]], "macs": 1_000_000,
        "flash_bytes": 100_000, "measured_sram_bytes": 55_000, "instructions": 3_000_000,
        "clock_hz": 100_000_000})
    save_stage(run_dir, "mcu", {"images": 1000, "accuracy": 0.905})
    save_stage(run_dir, "tflm", {"total": 90000, "head": 60000, "tail": 30000})


def test_report_renders_and_loads_in_chromium(tmp_path):
    run_dir = tmp_path / "run"
    write_full_results(run_dir)
    html = render_report(run_dir)
    for name in ("flops_cdf.png", "search_points.png", "block_memory.png", "arena_timeline.png"):
        assert (html.parent / name).read_bytes()[:4] == b"\x89PNG"
    check_report_in_browser(html, tmp_path)


def test_report_command_rebuilds_from_results(tmp_path, capsys):
    run_dir = tmp_path / "run"
    write_full_results(run_dir)
    assert main(["report", str(run_dir)]) == 0
    assert "index.html" in capsys.readouterr().out
    text = (run_dir / "report" / "index.html").read_text()
    assert "55,000 B" in text and "90.50%" in text
    # 3,000,000 instructions on the search's board (STM32F412, 100 MHz), which has no current figure
    assert "estimated latency on stm32f412 at 100 MHz" in text and "30 ms" in text
    assert "no datasheet run current on record" in text
    assert load_stage(run_dir, "missing") is None


def test_report_without_results_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no saved results" in capsys.readouterr().err
