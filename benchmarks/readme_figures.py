"""Regenerate the README's analytic figure table from the commands written next to its rows.

    .venv/bin/python benchmarks/readme_figures.py            # print the table the code gives now
    .venv/bin/python benchmarks/readme_figures.py --check    # exit 1 when README.md's table differs
    .venv/bin/python benchmarks/readme_figures.py --write    # rewrite README.md's table in place
    .venv/bin/python benchmarks/readme_figures.py --demo     # also run `mcuforge demo` (minutes) and
                                                             # print the figures of its README paragraph

The table sits in README.md between ``<!-- figures:begin -->`` and ``<!-- figures:end -->``. Each row
is a `Figure`: what it is, the `mcuforge` command that prints it (with ``--json``, run in-process
exactly as written), and how its value cell is read from that command's JSON. A row whose command
equals the previous row's says "same". Every command here runs in seconds (zoo models, analytic
figures only); tests/test_readme_figures.py renders the same rows and compares them with README.md,
so a change of the code that moves a figure fails the suite until the README is rewritten (--write).

The demo's paragraph (accuracies, arena, SRAM, Flash, instructions, TFLite Micro's arena) takes minutes
and needs the ARM toolchain and QEMU; ``--demo`` runs it in a temporary folder and prints the figures
to paste, but does not edit the README. To change a row (say a command needs another flag), edit
`FIGURES` and run ``--write``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from click.testing import CliRunner

from mcuforge.cli import cli

README_PATH = Path(__file__).resolve().parents[1] / "README.md"
BEGIN_MARKER = "<!-- figures:begin -->"
END_MARKER = "<!-- figures:end -->"
TABLE_HEADER = ("| figure | value | command |", "|---|---|---|")

Payload = dict | list


@dataclass(frozen=True)
class Figure:
    """One row of the README's figure table: ``label``, the ``command`` whose JSON output holds the
    figure, and ``value`` that renders the value cell from that output."""

    label: str
    command: str
    value: Callable[[Payload], str]


def _bytes(count: int) -> str:
    return f"{count:,} B"


def _percent_of(part: int, whole: int) -> str:
    return f"{100 * part / whole:+.2f} %"


def _zoo_row(rows: list[dict], model: str) -> dict:
    return next(row for row in rows if row["model"] == model)


def _halo_mode(payload: dict, halo: str) -> dict:
    return next(mode for mode in payload["patch"]["halo_modes"] if mode["halo"] == halo)


def _patch_peak(payload: dict) -> str:
    patch = payload["patch"]
    side_h, side_w = patch["input_patch"]
    patch_side = f"{side_h} px" if side_h == side_w else f"{side_h}x{side_w} px"
    return (f"{_bytes(patch['peak_activation_bytes_input_streamed'])} (paper: 176,128 B = 172 KiB); "
            f"input patch {patch_side}")


def _halo_overheads(payload: dict) -> str:
    layer_macs = payload["macs"]
    cells = []
    for halo in ("none", "cols", "full"):
        mode = _halo_mode(payload, halo)
        cache = f" ({_bytes(mode['halo_cache_bytes'])})" if mode["halo_cache_bytes"] else ""
        cells.append(_percent_of(mode["mac_overhead"], layer_macs) + cache)
    patch = payload["patch"]
    naive_macs = patch["stage_macs_naive_equal_windows"] - patch["stage_macs_layer"]
    return " / ".join(cells) + f" (naive {_percent_of(naive_macs, layer_macs)})"


MOBILENET_V2_PATCH = ("mcuforge profile mobilenet-v2 --patch 4x4@b4 --overlap-pointwise "
                      "--depthwise-row-buffer --json")

FIGURES: tuple[Figure, ...] = (
    Figure("MobileNetV2-1.0 r224 peak, in-place depthwise", "mcuforge profile mobilenet-v2 --json",
           lambda p: _bytes(p["peak_activation_bytes"])),
    Figure("MobileNetV2-1.0 r224 peak, no in-place", "mcuforge profile mobilenet-v2 --json",
           lambda p: _bytes(p["peak_activation_bytes_no_inplace"])),
    Figure("MobileNetV2-1.0 r224 MACs / params (incl. BN) / Flash", "mcuforge profile mobilenet-v2 --json",
           lambda p: f"{p['macs']:,} / {p['params']:,} / {_bytes(p['flash_bytes'])}"),
    Figure("mcunet-in3 (r176) peak, in-place", "mcuforge profile mcunet-in3 --json",
           lambda p: _bytes(p["peak_activation_bytes"])),
    Figure("mcunet-in3 MACs / params (incl. BN)", "mcuforge profile mcunet-in3 --json",
           lambda p: f"{p['macs']:,} / {p['params']:,}"),
    Figure("mcunet-in0 (r48) peak, in-place / Flash", "mcuforge zoo --json",
           lambda rows: f"{_bytes(_zoo_row(rows, 'mcunet-in0')['peak_activation_bytes'])} / "
                        f"{_bytes(_zoo_row(rows, 'mcunet-in0')['flash_bytes'])}"),
    Figure("mbv2-w0.35-r144 peak, in-place / Flash", "mcuforge zoo --json",
           lambda rows: f"{_bytes(_zoo_row(rows, 'mbv2-w0.35-r144')['peak_activation_bytes'])} / "
                        f"{_bytes(_zoo_row(rows, 'mbv2-w0.35-r144')['flash_bytes'])}"),
    Figure("MobileNetV2-1.0 r224, 4×4 patches at b4, input streamed, pointwise overlap + row-ring "
           "depthwise", MOBILENET_V2_PATCH, _patch_peak),
    Figure("same, MAC overhead: recompute / column cache (cache bytes) / full cache (cache bytes)",
           MOBILENET_V2_PATCH, _halo_overheads),
)


def run_json(command: str) -> Payload:
    """Run ``command`` (a ``mcuforge ...`` line) in-process and return its JSON output."""
    words = shlex.split(command)
    if words[0] != "mcuforge" or "--json" not in words:
        raise ValueError(f"a figure command must be `mcuforge ... --json`, not {command!r}")
    result = CliRunner().invoke(cli, words[1:], catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"`{command}` exited with {result.exit_code}: {result.output.strip()}")
    return json.loads(result.output)


def render_rows(figures: tuple[Figure, ...] = FIGURES) -> list[str]:
    """The table's lines (header first) as the code computes them now; each command runs once."""
    outputs: dict[str, Payload] = {}
    lines = list(TABLE_HEADER)
    previous_command = None
    for figure in figures:
        if figure.command not in outputs:
            outputs[figure.command] = run_json(figure.command)
        command_cell = "same" if figure.command == previous_command else f"`{figure.command}`"
        lines.append(f"| {figure.label} | {figure.value(outputs[figure.command])} | {command_cell} |")
        previous_command = figure.command
    return lines


def readme_rows(readme_text: str) -> list[str]:
    """The table lines between the markers of ``readme_text`` (blank lines dropped)."""
    if readme_text.count(BEGIN_MARKER) != 1 or readme_text.count(END_MARKER) != 1:
        raise ValueError(f"README must hold {BEGIN_MARKER} and {END_MARKER} exactly once each")
    inside = readme_text.split(BEGIN_MARKER, 1)[1].split(END_MARKER, 1)[0]
    return [line.strip() for line in inside.splitlines() if line.strip()]


def replace_rows(readme_text: str, rows: list[str]) -> str:
    """``readme_text`` with the table between the markers replaced by ``rows``."""
    readme_rows(readme_text)  # checks the markers
    before, rest = readme_text.split(BEGIN_MARKER, 1)
    after = rest.split(END_MARKER, 1)[1]
    return before + BEGIN_MARKER + "\n" + "\n".join(rows) + "\n" + END_MARKER + after


DEMO_STAGES = ("train", "quantize", "compile", "mcu", "tflm")
# The README's demo figures were measured with 2 torch threads (a 2-core machine); the thread count
# may change the float training's rounding, so the rerun pins it.
DEMO_THREADS = 2


def demo_figures(run_dir: Path) -> str:
    """The figures of the README's demo paragraph, from a finished run's ``results/<stage>.json``."""
    results = {stage: json.loads((run_dir / "results" / f"{stage}.json").read_text()) for stage in DEMO_STAGES}
    train, quantize, compiled = results["train"], results["quantize"], results["compile"]
    mcu, tflm = results["mcu"], results["tflm"]
    return (f"winner {train['spec']}, schedule {compiled['schedule']}\n"
            f"float {100 * train['float_accuracy']:.2f} %, int8 reference {100 * quantize['int8_accuracy']:.2f} %, "
            f"MCU under QEMU {100 * mcu['accuracy']:.2f} % with {mcu['bit_identical_outputs']}/{mcu['images']} "
            f"outputs bit-identical to the reference runtime; arena {_bytes(compiled['arena_bytes'])}, "
            f"measured SRAM {_bytes(compiled['measured_sram_bytes'])}, Flash {_bytes(compiled['flash_bytes'])}, "
            f"{compiled['instructions']:,} {compiled['instructions_target']} instructions per inference; "
            f"TFLite Micro arena {_bytes(tflm['total'])} (head {tflm['head']:,}, tail {tflm['tail']:,})")


def run_demo_figures() -> str:
    """Run `mcuforge demo` (its defaults, `DEMO_THREADS` torch threads) in a temporary folder and
    return `demo_figures` of it."""
    with tempfile.TemporaryDirectory(prefix="readme-demo-") as folder:
        run_dir = Path(folder) / "mcuforge-demo"
        subprocess.run([sys.executable, "-m", "mcuforge", "demo", "--out", str(run_dir),
                        "--threads", str(DEMO_THREADS)], check=True)
        return demo_figures(run_dir)


def main(argv: list[str] | None = None) -> int:
    """Print, check or rewrite the README's figure table (module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="exit 1 when README.md's table differs")
    action.add_argument("--write", action="store_true", help="rewrite README.md's table in place")
    parser.add_argument("--demo", action="store_true", help="also run `mcuforge demo` and print its figures")
    parser.add_argument("--readme", type=Path, default=README_PATH)
    args = parser.parse_args(argv)
    rows = render_rows()
    status = 0
    if args.write:
        args.readme.write_text(replace_rows(args.readme.read_text(), rows))
        print(f"rewrote the figure table of {args.readme}")
    elif args.check:
        written = readme_rows(args.readme.read_text())
        if written != rows:
            stale = [row for row in written if row not in rows]
            print(f"{args.readme}: the figure table differs from the code; rows the code no longer gives:")
            print("\n".join(stale) or "(row order or count)")
            status = 1
        else:
            print(f"{args.readme}: the figure table matches the code ({len(rows) - 2} rows)")
    else:
        print("\n".join(rows))
    if args.demo:
        print(run_demo_figures())
    return status


if __name__ == "__main__":
    sys.exit(main())
