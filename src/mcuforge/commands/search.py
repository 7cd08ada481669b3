"""`mcuforge search --dataset D --board B --sram 64KB --flash 256KB [--patch] [--time-budget 40m]`.

TinyNAS (MCUNet): search-space optimisation, a weight-sharing supernet trained with the sandwich rule,
an evolutionary search under SRAM / Flash / latency constraints (each candidate paired with its best
patch schedule when ``--patch`` is on), then fine-tuning, int8 quantisation and C compilation of the
winner. Progress is printed; every stage checkpoints into the run folder and ``--resume`` continues.
Supernet training runs unchanged under ``torchrun --nproc_per_node=N -m mcuforge.cli search ...``.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from ..errors import McuforgeError
from ..targets import parse_bytes
from .hardware import board_option, resolve_hardware, target_option

DEFAULT_BOARD = "stm32f412"


def parse_duration(text: str) -> float:
    """``40m``, ``1h``, ``90s`` or a number of seconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text.lower())
    if match is None:
        raise McuforgeError(f"--time-budget {text!r}: expected e.g. 40m, 1h, 900s")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _floats(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise McuforgeError(f"cannot read the list {text!r} (comma-separated numbers)") from None


@click.command("search")
@click.option("--dataset", "-d", default="fashion-mnist", show_default=True, help="Data set name or folder.")
@board_option("MCU (its core and clock; its SRAM and Flash unless --sram/--flash).",
              default_board=DEFAULT_BOARD)
@target_option(short="-t")
@click.option("--sram", help="SRAM limit, e.g. 64KB (default: the board's).")
@click.option("--flash", help="Flash limit, e.g. 256KB (default: the board's).")
@click.option("--latency-ms", type=float, help="Latency limit (ms) from the latency model.")
@click.option("--latency-model", type=click.Choice(["codegen", "tflm"]), default="codegen", show_default=True,
              help="codegen: calibrated on unicorn counts of generated C; tflm: TFLite Micro figures.")
@click.option("--patch", is_flag=True, help="Pair every candidate with its best patch schedule (MCUNetV2).")
@click.option("--time-budget", help="Wall-clock budget, e.g. 40m: the amounts of work are planned to fit.")
@click.option("--preset", type=click.Choice(["quick", "full"]), default="full", show_default=True,
              help="quick: a few minutes on a laptop; full: MCUNet's recipe scaled to a CPU.")
@click.option("--widths", help="Width multipliers of stage 1, comma-separated (default 0.2,...,1.0).")
@click.option("--resolutions", help="Resolutions of stage 1, comma-separated multiples of 16.")
@click.option("--samples", type=click.IntRange(min=10), help="Networks sampled per space in stage 1.")
@click.option("--supernet-epochs", type=click.IntRange(min=1))
@click.option("--population", type=click.IntRange(min=4))
@click.option("--generations", type=click.IntRange(min=1))
@click.option("--finetune-epochs", type=click.IntRange(min=1),
              help="Epochs of the winner's final training.")
@click.option("--winner-init", type=click.Choice(["scratch", "supernet"]),
              help="Train the winner from fresh weights (default) or fine-tune its supernet weights.")
@click.option("--no-random", is_flag=True, help="Skip the random-search comparison.")
@click.option("--no-compile", is_flag=True, help="Stop after int8 quantisation.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="torch threads.")
@click.option("--out", "-o", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: runs/search-<dataset>-<board>).")
@click.option("--resume", is_flag=True, help="Continue the search in the run folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def command(dataset: str, board: str | None, target: str | None, sram: str | None, flash: str | None, latency_ms: float | None,
            latency_model: str, patch: bool, time_budget: str | None, preset: str, widths: str | None,
            resolutions: str | None,
            samples: int | None, supernet_epochs: int | None, population: int | None,
            generations: int | None, finetune_epochs: int | None, winner_init: str | None,
            no_random: bool, no_compile: bool,
            seed: int, threads: int | None, run_dir: Path | None, resume: bool, quiet: bool) -> None:
    """Search a network for DATASET that fits the board's SRAM and Flash (TinyNAS)."""
    board = resolve_hardware(board, None, target, accepts_core=False).board_or(DEFAULT_BOARD)
    from ..nas.pipeline import run_search
    from ..nas.settings import preset_settings

    resolution_list = _floats(resolutions)
    settings = preset_settings(
        preset, sram_bytes=parse_bytes(sram) if sram else board.sram_bytes,
        flash_bytes=parse_bytes(flash) if flash else board.flash_bytes, dataset=dataset, target=board.name,
        latency_ms=latency_ms, latency_model=latency_model, patch=patch or None, widths=_floats(widths),
        resolutions=tuple(int(r) for r in resolution_list) if resolution_list else None,
        space_samples=samples, supernet_epochs=supernet_epochs, population=population,
        generations=generations, finetune_epochs=finetune_epochs, winner_init=winner_init,
        compare_random=False if no_random else None, compile=False if no_compile else None,
        time_budget_s=parse_duration(time_budget) if time_budget else None, seed=seed, threads=threads,
        progress=not quiet)
    run_dir = run_dir or Path("runs") / f"search-{Path(dataset).name}-{board.name}"
    report = run_search(settings, run_dir, resume=resume, log=lambda line: click.echo(line, err=True))
    if report is None:
        return
    deployed = report["deploy"]
    click.echo(f"found: {report['winner']['spec']}")
    compiled = deployed.get("compile") or {}
    click.echo(f"int8 test accuracy {deployed['int8_accuracy']:.2%} (float {deployed['float_accuracy']:.2%}); "
               f"peak SRAM {report['winner']['peak_sram_bytes']:,} B ({report['winner']['schedule']})"
               + (f", measured SRAM of the generated C {compiled['measured_sram_bytes']:,} B"
                  if compiled.get("measured_sram_bytes") else "")
               + f"; report in {run_dir / 'report.md'}")
