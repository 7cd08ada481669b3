"""A whole training run from names: spec + data set -> trained model file (what `mcuforge train` does).

The run folder holds ``checkpoint.pt`` (see checkpoint.py), and at the end ``model.pt`` and
``result.json``. ``model.pt`` is what later steps (quantisation, export) read with
`load_trained_model`: the spec's DSL text, the float state dict of `build_torch(spec)`, the class
names and how inputs were prepared (uint8 pixels p -> p / 127.5 - 1 after resizing to the spec's
resolution).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.dataset import ArrayDataset
from ..data.registry import load_dataset
from ..errors import ModelFileError
from ..models.dsl import NetSpec, parse_spec
from ..frontends.load import load_spec
from ..models.spec_torch import build_torch
from ..atomic import write_json_atomic
from .checkpoint import atomic_torch_save
from .config import TrainConfig, TrainResult
from .loop import TrainHooks, train

MODEL_NAME = "model.pt"
RESULT_NAME = "result.json"
MODEL_FORMAT = "mcuforge-trained-model"


def spec_for_dataset(model: str, dataset: ArrayDataset, resolution: int | None = None,
                     width: float | None = None, in_channels: int | None = None) -> NetSpec:
    """The spec of MODEL (zoo name, DSL string or JSON config) with the data set's class count.

    Input channels: ``in_channels`` when given, else the data set's for zoo names and JSON configs;
    a spec string keeps its own ``in`` unless ``in_channels`` is given.
    """
    if "|" in model:
        return load_spec(model, resolution, width, dataset.num_classes, in_channels)
    return load_spec(model, resolution, width, dataset.num_classes, in_channels or dataset.channels)


def train_spec(
    spec: NetSpec,
    train_set: ArrayDataset,
    test_set: ArrayDataset | None,
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    hooks: TrainHooks | None = None,
    dataset_name: str = "",
) -> tuple[nn.Module, TrainResult]:
    """Build ``spec`` in torch, train it with checkpoints in ``run_dir``, and write model.pt/result.json."""
    torch.manual_seed(config.seed)
    model = build_torch(spec)
    metadata = {"spec": spec.to_string(), "dataset": dataset_name, "class_names": list(train_set.class_names)}
    result = train(model, train_set, config, checkpoint_dir=run_dir, resume=resume,
                   eval_dataset=test_set, hooks=hooks, metadata=metadata)
    save_trained_model(Path(run_dir) / MODEL_NAME, model, spec, config, train_set.class_names, dataset_name, result)
    write_result_json(Path(run_dir) / RESULT_NAME, spec, config, dataset_name, result)
    return model, result


def save_trained_model(path: str | Path, model: nn.Module, spec: NetSpec, config: TrainConfig,
                       class_names: list[str], dataset_name: str, result: TrainResult,
                       extra: dict[str, Any] | None = None) -> None:
    """Write ``model.pt`` atomically (see the module doc); ``extra`` entries are added to it (a
    detector's ``head``)."""
    state = {name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}
    atomic_torch_save({
        "format": MODEL_FORMAT,
        "spec": spec.to_string(),
        "state_dict": state,
        "class_names": list(class_names),
        "dataset": dataset_name,
        "input": {"resolution": spec.resolution, "in_channels": spec.in_channels,
                  "encoding": config.input_encoding,
                  "normalization": "x = pixel / 127.5 - 1 (pixel 0..255)" if config.input_encoding == "pixels"
                  else "x = feature / 128 (int8 front-end feature; stored as feature + 128)"},
        "test_accuracy": result.test_accuracy,
        "config": config.to_dict(),
        **(extra or {}),
    }, path)


def load_trained_model(path: str | Path) -> tuple[nn.Module, NetSpec, dict[str, Any]]:
    """(float torch module in eval mode, spec, the rest of model.pt) from a file `train_spec` wrote."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no trained model at {path}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for torn or foreign files
        raise ModelFileError(f"{path}: corrupt or not a trained model ({exc})") from exc
    if not isinstance(saved, dict) or saved.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path}: not an mcuforge trained model")
    spec = parse_spec(saved["spec"])
    model = build_torch(spec)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model, spec, saved


def write_result_json(path: Path, spec: NetSpec, config: TrainConfig, dataset_name: str,
                      result: TrainResult) -> None:
    """Write ``result.json`` (per-epoch figures and the final test accuracy) atomically."""
    payload = {
        "spec": spec.to_string(),
        "dataset": dataset_name,
        "test_accuracy": result.test_accuracy,
        "epochs": [asdict(stats) for stats in result.history],
        "training_seconds": sum(stats.seconds for stats in result.history),
        "config": config.to_dict(),
    }
    write_json_atomic(path, payload, indent=2)


def load_splits(dataset: str, resolution: int, limit_train: int | None = None
                ) -> tuple[ArrayDataset, ArrayDataset]:
    """(train split, test split) of a named or folder data set; image folders are resized on load."""
    train_set = load_dataset(dataset, "train", image_size=(resolution, resolution))
    test_set = load_dataset(dataset, "test", image_size=(resolution, resolution))
    if limit_train is not None:
        train_set = train_set.subset(range(min(limit_train, len(train_set))))
    return train_set, test_set
