"""`mcuforge train MODEL --task detect`: the detection half of the train command (`commands.train`).

MODEL is a detector (a spec ending in ``yolo_a<N>``, ``mcunet-in3-yolo``) or a backbone (any zoo
name, spec or config), which gets `models.zoo_families.detector`'s head with ``anchors`` per cell.
The class count comes from the data set. A backbone equal to mcunet-in3's starts from its ImageNet
weights unless ``pretrained`` is off.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from ..errors import McuforgeError
from ..frontends.load import load_spec
from ..models.dsl import NetSpec, is_detector
from ..models.zoo import check_resolution, get_spec
from ..models.zoo_families import detector


def detection_spec(model: str, num_classes: int, resolution: int | None, width: float | None,
                   anchors: int) -> NetSpec:
    """The detector spec of MODEL with ``num_classes`` classes (module doc)."""
    spec = load_spec(model, resolution, width)
    if not is_detector(spec):
        spec = detector(spec, anchors, num_classes)
    spec = replace(spec, num_classes=num_classes)
    check_resolution(spec, model)
    return spec


def has_mcunet_backbone(spec: NetSpec) -> bool:
    """Whether every block before ``spec``'s head is mcunet-in3's (so its ImageNet weights fit)."""
    backbone = tuple(b for b in get_spec("mcunet-in3").blocks if b.kind not in ("pool", "fc"))
    return spec.blocks[:-1] == backbone


def parse_scales(text: str | None) -> tuple[int, ...]:
    """``"160,192"`` -> (160, 192); None -> ()."""
    if not text:
        return ()
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise McuforgeError(f"--scales {text!r}: expected whole numbers separated by commas") from None
    if any(value < 1 for value in values):
        raise McuforgeError(f"--scales {text!r}: sides must be positive")
    return values


def train_detection_command(*, model: str, dataset: str, epochs: int, resolution: int | None,
                            width: float | None, batch_size: int, optimizer: str, lr: float,
                            weight_decay: float, augment: bool, seed: int, threads: int | None,
                            run_dir: Path, resume: bool, checkpoint_every: int | None,
                            limit_train: int | None, quiet: bool, as_json: bool, anchors: int,
                            frozen_blocks: int, scales: str | None, cached_views: int,
                            pretrained: bool) -> None:
    """Train a detector (module doc) and print its validation mAP@0.5."""
    from ..data.registry import load_detection_dataset
    from ..quant.pretrained import load_mcunet_backbone
    from ..train.config import TrainConfig
    from ..train.detect import train_detector

    train_set = load_detection_dataset(dataset, "train")
    val_set = load_detection_dataset(dataset, "val")
    if limit_train is not None:
        train_set = train_set.subset(range(min(limit_train, len(train_set))))
    spec = detection_spec(model, train_set.num_classes, resolution, width, anchors)
    if frozen_blocks >= len(spec.blocks):
        raise McuforgeError(f"--frozen-blocks {frozen_blocks}: the model has only {len(spec.blocks)} blocks")
    initialise = load_mcunet_backbone if pretrained and has_mcunet_backbone(spec) else None
    config = TrainConfig(
        resolution=spec.resolution, in_channels=3, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
        lr=lr, weight_decay=weight_decay, warmup_epochs=1.0, label_smoothing=0.0, augment=augment, seed=seed,
        threads=threads, checkpoint_every_steps=checkpoint_every, progress=not quiet and not as_json)
    if not quiet and not as_json:
        start = "ImageNet-pretrained backbone" if initialise else "random initialisation"
        click.echo(f"training detector {spec.to_string()}\n  on {dataset}: {len(train_set)} train / {len(val_set)} "
                   f"val images, {train_set.num_classes} classes; {start}; run folder {run_dir}", err=True)
    _, result, head = train_detector(spec, train_set, val_set, config, run_dir, resume=resume,
                                     initialise=initialise, frozen_blocks=frozen_blocks,
                                     scales=parse_scales(scales), dataset_name=dataset,
                                     cached_views=cached_views, progress=config.progress)
    if not result.history:
        raise McuforgeError(f"{run_dir}: the checkpoint holds no finished epoch")
    final = result.final
    summary = {"val_map50": final.test_accuracy, "epochs": len(result.history),
               "training_seconds": round(sum(s.seconds for s in result.history), 1),
               "model": str(run_dir / "model.pt"), "head": str(run_dir / "head.json"), "spec": spec.to_string(),
               "anchors": [list(a) for a in head.outputs[0].anchors]}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"validation mAP@0.5 {final.test_accuracy:.3f} after {len(result.history)} epochs "
                   f"({summary['training_seconds']} s); model in {summary['model']}, head in {summary['head']}")
