"""`mcuforge train SPEC --dataset D --epochs N`: train a zoo model or spec string on a data set.

Writes RUN_DIR/checkpoint.pt every epoch (atomically), and RUN_DIR/model.pt and result.json at the
end. ``--resume`` continues a killed or interrupted run exactly where its checkpoint left it.

``--task kws`` trains a keyword-spotting network (default: ``dscnn`` at width 0.5) on spoken audio
(``--dataset fsdd``, ``fsdd:SPEAKER``, or an FSDD / Speech Commands folder) through an audio front
end (``--frontend``), quantises it to int8 and scores float and int8 on the held-out speaker
(`pipeline.kws`); RUN_DIR also gets model_int8.tflite (the front end in its metadata, for
`mcuforge listen`) and kws.json.

``--task detect`` trains a YOLO-style detector (`train.detect`) on a detection data set
(``raccoon``, ``voc:PATH``, ``csv:PATH``): MODEL is a detector (``mcunet-in3-yolo``, a spec
ending in ``yolo_a<N>``) or any zoo backbone, which gets a ``yolo`` head; mcunet-in3's backbone
starts from its ImageNet weights (``--no-pretrained``: from scratch). RUN_DIR also gets
``head.json``; the test score is mAP@0.5 (VOC) on the fixed validation split.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from ..errors import McuforgeError
from ..frontends.load import load_spec
from ..train.config import OPTIMIZERS, TrainConfig
from ..train.run import load_splits, spec_for_dataset, train_spec


def _default_run_dir(model: str, dataset: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"{model if '|' not in model else 'spec'}-{Path(dataset).name}")
    return Path("runs") / slug.strip("-")


@click.command("train")
@click.argument("model", required=False)
@click.option("--task", type=click.Choice(["image", "kws", "detect"]), default="image", show_default=True,
              help="image classification, keyword spotting from spoken audio, or object detection with a YOLO head.")
@click.option("--dataset", "-d", help="fashion-mnist (image default), mnist, fsdd (kws default), fsdd:SPEAKER, "
              "raccoon (detect default), voc:PATH, csv:PATH, or a folder (IDX files, CIFAR batches, class folders, Speech Commands, FSDD).")
@click.option("--frontend", type=click.Choice(["micro-speech", "mfcc"]), default="micro-speech",
              show_default=True, help="kws: the audio front end the features come from.")
@click.option("--epochs", "-e", type=click.IntRange(min=1), help="Default: 10 (image, detect), 30 (kws).")
@click.option("--resolution", "-r", type=click.IntRange(min=1), help="Input resolution (default: the model's).")
@click.option("--width", "-w", type=float, help="Width multiplier (scalable zoo models).")
@click.option("--in-channels", type=click.Choice(["1", "3"]), help="Model input channels (default: the data's).")
@click.option("--batch-size", "-b", type=click.IntRange(min=1), help="Default: 128 (image), 32 (kws), 16 (detect).")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), help="Default: sgd (image), adamw (kws, detect).")
@click.option("--lr", type=float, help="Peak learning rate (default: 0.1 SGD / 3e-3 AdamW, x batch/128; kws: 3e-3; detect: 2e-3).")
@click.option("--weight-decay", type=float, help="Default: 5e-5 SGD / 0.05 AdamW (detect: 0.01).")
@click.option("--label-smoothing", type=float, default=0.1, show_default=True)
@click.option("--no-augment", is_flag=True, help="No augmentation (no flip, no crop).")
@click.option("--crop", is_flag=True, help="Add a random crop (pad 1/8, zeros) to the flips; for long runs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="torch threads (keep it equal when resuming).")
@click.option("--out", "-o", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: runs/<model>-<dataset>).")
@click.option("--resume", is_flag=True, help="Continue the run in the run folder from its checkpoint.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), help="Also checkpoint every N steps.")
@click.option("--limit-train", type=click.IntRange(min=1), help="Use only the first N training samples.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--anchors", type=click.IntRange(min=1), default=3, show_default=True,
              help="--task detect: anchors per cell of the head added to a backbone.")
@click.option("--frozen-blocks", type=click.IntRange(min=0), default=0, show_default=True,
              help="--task detect: leave the first N blocks as initialised (faster on a CPU).")
@click.option("--scales", help="--task detect: input sides drawn per step, e.g. 160,192,224,256 "
              "(multi-scale training; default: the resolution only).")
@click.option("--cached-views", type=click.IntRange(min=0), default=0, show_default=True,
              help="--task detect: with --frozen-blocks, compute the frozen blocks' output once for N "
                   "augmented views of each image and train the rest on them (fast on a CPU).")
@click.option("--pretrained/--no-pretrained", default=True, show_default=True,
              help="--task detect: start mcunet-in3's backbone from its ImageNet weights.")
def command(model: str | None, task: str, dataset: str | None, frontend: str, epochs: int | None,
            resolution: int | None, width: float | None, in_channels: str | None, batch_size: int | None,
            optimizer: str | None, lr: float | None, weight_decay: float | None, label_smoothing: float,
            no_augment: bool, crop: bool, seed: int, threads: int | None, run_dir: Path | None, resume: bool,
            checkpoint_every: int | None, limit_train: int | None, quiet: bool, as_json: bool,
            anchors: int, frozen_blocks: int, scales: str | None, cached_views: int, pretrained: bool) -> None:
    """Train MODEL (a zoo name or a spec string) on a data set, with checkpoints and exact resume."""
    if task == "kws":
        from .train_kws import train_kws_command

        train_kws_command(model, dataset or "fsdd", frontend, epochs, width, batch_size, optimizer, lr,
                          label_smoothing, no_augment, seed, threads, run_dir, resume, checkpoint_every,
                          quiet, as_json, unused={"--resolution": resolution, "--in-channels": in_channels,
                                                  "--weight-decay": weight_decay, "--crop": crop or None,
                                                  "--limit-train": limit_train})
        return
    if task == "detect":
        from .train_detect import train_detection_command

        if model is None:
            raise McuforgeError("train --task detect: give MODEL (e.g. mcunet-in3-yolo or a zoo backbone)")
        train_detection_command(
            model=model, dataset=dataset or "raccoon", epochs=epochs or 10, resolution=resolution, width=width,
            batch_size=batch_size or 16, optimizer=optimizer or "adamw", lr=lr if lr is not None else 2e-3,
            weight_decay=weight_decay if weight_decay is not None else 0.01, augment=not no_augment, seed=seed,
            threads=threads, run_dir=run_dir or _default_run_dir(model, dataset or "raccoon"), resume=resume,
            checkpoint_every=checkpoint_every, limit_train=limit_train, quiet=quiet, as_json=as_json,
            anchors=anchors, frozen_blocks=frozen_blocks, scales=scales, cached_views=cached_views,
            pretrained=pretrained)
        return
    if model is None:
        raise McuforgeError("train: give MODEL (a zoo name or a spec string), or --task kws")
    dataset = dataset or "fashion-mnist"
    epochs, batch_size, optimizer = epochs or 10, batch_size or 128, optimizer or "sgd"
    run_dir = run_dir or _default_run_dir(model, dataset)
    input_resolution = load_spec(model, resolution, width).resolution
    train_set, test_set = load_splits(dataset, input_resolution, limit_train)
    spec = spec_for_dataset(model, train_set, resolution, width, int(in_channels) if in_channels else None)
    config = TrainConfig(
        resolution=spec.resolution, in_channels=spec.in_channels, epochs=epochs, batch_size=batch_size,
        optimizer=optimizer, lr=lr, weight_decay=weight_decay, label_smoothing=label_smoothing,
        augment=not no_augment, random_crop=crop, seed=seed, threads=threads,
        checkpoint_every_steps=checkpoint_every, progress=not quiet and not as_json,
    )
    if not quiet and not as_json:
        click.echo(f"training {spec.to_string()}\n  on {dataset}: {len(train_set):,} train / "
                   f"{len(test_set):,} test samples, {train_set.num_classes} classes; run folder {run_dir}", err=True)
    _, result = train_spec(spec, train_set, test_set, config, run_dir, resume=resume, dataset_name=dataset)
    if not result.history:
        raise McuforgeError(f"{run_dir}: the checkpoint holds no finished epoch")
    final = result.final
    summary = {
        "test_accuracy": final.test_accuracy, "train_accuracy": final.train_accuracy,
        "epochs": len(result.history), "training_seconds": round(sum(s.seconds for s in result.history), 1),
        "model": str(run_dir / "model.pt"), "spec": spec.to_string(),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"test accuracy {final.test_accuracy:.2%} after {len(result.history)} epochs "
                   f"({summary['training_seconds']} s); model in {summary['model']}")
