"""The README's analytic figure table is what the code prints: benchmarks/readme_figures.py renders
every row from its command, and the README must hold exactly those rows (rewrite them with
``benchmarks/readme_figures.py --write`` when a change of the code moves a figure on purpose)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    path = PROJECT_ROOT / "benchmarks" / "readme_figures.py"
    spec = importlib.util.spec_from_file_location("readme_figures", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


readme_figures = _load_script()


@pytest.fixture(scope="module")
def rendered_rows() -> list[str]:
    """The table the code gives now (each figure command run once)."""
    return readme_figures.render_rows()


def test_readme_table_matches_the_code(rendered_rows):
    written = readme_figures.readme_rows((PROJECT_ROOT / "README.md").read_text())
    stale = [row for row in written if row not in rendered_rows]
    missing = [row for row in rendered_rows if row not in written]
    assert not stale and not missing, (
        "README.md's figure table and the code disagree; run benchmarks/readme_figures.py --write\n"
        f"README rows the code does not give:\n{chr(10).join(stale)}\nrows the code gives:\n{chr(10).join(missing)}")
    assert written == rendered_rows


def test_table_carries_the_reference_figures(rendered_rows):
    """The published figures (reference/numbers.json, MCUNetV2) are in the rows, next to their commands."""
    table = "\n".join(rendered_rows)
    for figure in ("1,404,928 B", "1,505,280 B", "247,808 B", "81,785,520 / 737,408", "175,808 B"):
        assert figure in table
    for row in rendered_rows[2:]:
        command = row.rsplit("|", 2)[1].strip()
        assert command == "same" or command.startswith("`mcuforge ")


def test_a_changed_figure_is_detected(rendered_rows):
    text = (PROJECT_ROOT / "README.md").read_text()
    edited = text.replace("1,404,928 B |", "1,404,929 B |", 1)
    assert edited != text
    assert readme_figures.readme_rows(edited) != rendered_rows


def test_replace_rows_rewrites_only_between_the_markers():
    text = f"intro\n{readme_figures.BEGIN_MARKER}\n| old |\n{readme_figures.END_MARKER}\noutro\n"
    rewritten = readme_figures.replace_rows(text, ["| a |", "| b |"])
    assert rewritten.startswith("intro\n") and rewritten.endswith("\noutro\n")
    assert readme_figures.readme_rows(rewritten) == ["| a |", "| b |"]


def test_markers_must_be_there_once():
    with pytest.raises(ValueError, match="exactly once"):
        readme_figures.readme_rows("no markers here")


def test_a_figure_command_must_print_json():
    with pytest.raises(ValueError, match="--json"):
        readme_figures.run_json("mcuforge profile mobilenet-v2")
