"""`mcuforge demo`: the main job on the built-in default (see `pipeline/demo.py`).

Searches a network for Fashion-MNIST under the STM32F412 budget (quick preset), fine-tunes and
quantises it, compiles it with the best patch schedule, runs 1,000 test images on the emulated
Cortex-M4 under QEMU and writes DIR/report/index.html. Rerunning resumes from the last finished stage.

``--task kws``: keyword spotting from real speech instead (`pipeline/kws_demo.py`): DS-CNN trained on
FSDD's micro_speech features (four speakers), int8, compiled for the Cortex-M4 under 64 KB of SRAM,
every clip of the held-out speaker through QEMU; DIR defaults to mcuforge-demo-kws.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import McuforgeError
from ..targets import parse_bytes
from .hardware import board_option, resolve_hardware, target_option

DEFAULT_BOARD = "stm32f412"


@click.command("demo")
@click.option("--task", type=click.Choice(["image", "kws"]), default="image", show_default=True,
              help="image: the TinyNAS image job; kws: keyword spotting from spoken digits (FSDD).")
@click.option("--out", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (results, C, report); default mcuforge-demo (image), mcuforge-demo-kws (kws).")
@click.option("--dataset", help="Data set name or folder (default fashion-mnist; kws: fsdd, fsdd:SPEAKER).")
@board_option("MCU whose SRAM/Flash budget the search must meet.", default_board=DEFAULT_BOARD)
@target_option()
@click.option("--sram", default=None, help="SRAM limit (e.g. 64KB); default: the board's (kws: 64KB).")
@click.option("--flash", default=None, help="Flash limit (e.g. 256KB); default: the board's.")
@click.option("--preset", type=click.Choice(["quick", "full"]), default="quick", show_default=True)
@click.option("--mcu-images", type=int, default=1000, show_default=True,
              help="Test images run through the Cortex-M build under QEMU.")
@click.option("--threads", type=click.IntRange(min=1), help="Torch threads (default 2; kws: 1); fixed so the "
              "figures do not depend on the machine.")
@click.option("--epochs", type=click.IntRange(min=1), help="kws: training epochs (default 30).")
def command(task: str, run_dir: Path | None, dataset: str | None, board: str | None, target: str | None,
            sram: str | None, flash: str | None, preset: str, mcu_images: int, threads: int | None,
            epochs: int | None) -> None:
    """Search, train, quantise, compile and run a model on an emulated MCU; write the HTML report."""
    board_name = resolve_hardware(board, None, target, accepts_core=False).board_or(DEFAULT_BOARD).name
    if task == "kws":
        from ..pipeline.kws import KwsSettings
        from ..pipeline.kws_demo import KwsDemoSettings, run_kws_demo

        defaults = KwsSettings()
        kws = KwsSettings(dataset=dataset or defaults.dataset, epochs=epochs or defaults.epochs,
                          threads=threads or defaults.threads)
        settings = KwsDemoSettings(run_dir or Path("mcuforge-demo-kws"), board_name,
                                   parse_bytes(sram) if sram else 64 * 1024, kws)
        path = run_kws_demo(settings, log=click.echo)
        click.echo(f"done: open {path}")
        return
    from ..pipeline.demo import DemoSettings, run_demo

    if epochs is not None:
        raise McuforgeError("--epochs applies to --task kws (the image job's training is set by --preset)")
    run_dir, dataset, threads = run_dir or Path("mcuforge-demo"), dataset or "fashion-mnist", threads or 2
    settings = DemoSettings(run_dir, dataset, board_name, parse_bytes(sram) if sram else None,
                            parse_bytes(flash) if flash else None, preset, mcu_images, threads)
    path = run_demo(settings, log=click.echo)
    click.echo(f"done: open {path}")
