"""`mcuforge demo`: the main job on the built-in default (see `pipeline/demo.py`).

Searches a network for Fashion-MNIST under the STM32F412 budget (quick preset), fine-tunes and
quantises it, compiles it with the best patch schedule, runs 1,000 test images on the emulated
Cortex-M4 under QEMU and writes DIR/report/index.html. Rerunning resumes from the last finished stage.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..targets import parse_bytes
from .hardware import board_option, resolve_hardware, target_option

DEFAULT_BOARD = "stm32f412"


@click.command("demo")
@click.option("--out", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("mcuforge-demo"), show_default=True, help="Run folder (results, C, report).")
@click.option("--dataset", default="fashion-mnist", show_default=True, help="Data set name or folder.")
@board_option("MCU whose SRAM/Flash budget the search must meet.", default_board=DEFAULT_BOARD)
@target_option()
@click.option("--sram", default=None, help="SRAM limit (e.g. 64KB); default: the board's.")
@click.option("--flash", default=None, help="Flash limit (e.g. 256KB); default: the board's.")
@click.option("--preset", type=click.Choice(["quick", "full"]), default="quick", show_default=True)
@click.option("--mcu-images", type=int, default=1000, show_default=True,
              help="Test images run through the Cortex-M build under QEMU.")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True,
              help="Torch threads; fixed by default so the figures do not depend on the machine.")
def command(run_dir: Path, dataset: str, board: str | None, target: str | None, sram: str | None,
            flash: str | None, preset: str, mcu_images: int, threads: int | None) -> None:
    """Search, train, quantise, compile and run a model on an emulated MCU; write the HTML report."""
    board_name = resolve_hardware(board, None, target, accepts_core=False).board_or(DEFAULT_BOARD).name
    from ..pipeline.demo import DemoSettings, run_demo

    settings = DemoSettings(run_dir, dataset, board_name, parse_bytes(sram) if sram else None,
                            parse_bytes(flash) if flash else None, preset, mcu_images, threads)
    path = run_demo(settings, log=click.echo)
    click.echo(f"done: open {path}")
