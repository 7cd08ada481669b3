"""`mcuforge train --task kws`: the keyword-spotting job of `pipeline.kws`, from the train command's
options (the shared ones: epochs, width, batch size, optimizer, learning rate, seed, threads, run
folder, resume, checkpoints, output)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import McuforgeError


def train_kws_command(model: str | None, dataset: str, frontend: str, epochs: int | None, width: float | None,
                      batch_size: int | None, optimizer: str | None, lr: float | None, label_smoothing: float,
                      no_augment: bool, seed: int, threads: int | None, run_dir: Path | None, resume: bool,
                      checkpoint_every: int | None, quiet: bool, as_json: bool, unused: dict[str, Any]) -> None:
    """Run `pipeline.kws.train_kws` and print its figures (module doc)."""
    from ..pipeline.kws import KwsSettings, train_kws

    given = [name for name, value in unused.items() if value is not None]
    if given:
        raise McuforgeError(f"{', '.join(given)} do not apply to --task kws")
    defaults = KwsSettings()
    settings = KwsSettings(
        model=model or defaults.model, width=width if width is not None or model else defaults.width,
        dataset=dataset, frontend=frontend, epochs=epochs or defaults.epochs,
        batch_size=batch_size or defaults.batch_size, optimizer=optimizer or defaults.optimizer,
        lr=lr if lr is not None else defaults.lr,
        label_smoothing=label_smoothing, augment=not no_augment, seed=seed,
        threads=threads or defaults.threads, checkpoint_every=checkpoint_every,
        progress=not quiet and not as_json)
    run_dir = run_dir or Path("runs") / f"kws-{Path(dataset).name.replace(':', '-')}"
    if settings.progress:
        click.echo(f"keyword spotting: {settings.model} on {dataset} ({frontend} features); run folder {run_dir}",
                   err=True)
    _, _, result = train_kws(settings, run_dir, resume=resume)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    speakers = ", ".join(result.test_speakers) or "the test split"
    click.echo(f"held-out {speakers}: {result.test_clips} clips; float {result.float_accuracy:.2%}, "
               f"int8 {result.int8_accuracy:.2%} (reference runtime), float and int8 agree on "
               f"{result.float_int8_agreement}/{result.test_clips}; training {result.training_seconds} s")
    click.echo(f"int8 model (front end recorded): {result.tflite}")
