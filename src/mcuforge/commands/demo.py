"""`mcuforge demo`: the main job on the built-in default (see `pipeline/demo.py`).

Searches a network for Fashion-MNIST under the STM32F412 budget (quick preset), fine-tunes and
quantises it, compiles it with the best patch schedule, runs 1,000 test images on the emulated
Cortex-M4 under QEMU and writes DIR/report/index.html. Rerunning resumes from the last finished stage.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..targets import TARGETS, parse_bytes


@click.command("demo")
@click.option("--out", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("mcuforge-demo"), show_default=True, help="Run folder (results, C, report).")
@click.option("--dataset", default="fashion-mnist", show_default=True, help="Data set name or folder.")
@click.option("--target", type=click.Choice(sorted(TARGETS), case_sensitive=False), default="stm32f412",
              show_default=True, help="MCU whose SRAM/Flash budget the search must meet.")
@click.option("--sram", default=None, help="SRAM limit (e.g. 64KB); default: the target's.")
@click.option("--flash", default=None, help="Flash limit (e.g. 256KB); default: the target's.")
@click.option("--preset", type=click.Choice(["quick", "full"]), default="quick", show_default=True)
@click.option("--mcu-images", type=int, default=1000, show_default=True,
              help="Test images run through the Cortex-M build under QEMU.")
@click.option("--threads", type=int, default=None, help="Torch threads (default: all cores).")
def command(run_dir: Path, dataset: str, target: str, sram: str | None, flash: str | None, preset: str,
            mcu_images: int, threads: int | None) -> None:
    """Search, train, quantise, compile and run a model on an emulated MCU; write the HTML report."""
    from ..pipeline.demo import DemoSettings, run_demo

    settings = DemoSettings(run_dir, dataset, target.lower(), parse_bytes(sram) if sram else None,
                            parse_bytes(flash) if flash else None, preset, mcu_images, threads)
    path = run_demo(settings, log=click.echo)
    click.echo(f"done: open {path}")
