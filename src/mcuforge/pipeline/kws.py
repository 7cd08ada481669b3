"""Keyword spotting from spoken clips: train a KWS network on front-end features, quantise it to
int8 and score it on the held-out speaker (what `mcuforge train --task kws` does).

1. data: the data set's train and test splits as features of the chosen front end (`data.fsdd`,
   `data.speech_commands`: the train split augmented on the PCM, the test split as recorded);
2. float training with the shared loop (`train.run.train_spec`: checkpoints, exact resume, tqdm),
   input ``x = feature / 128``;
3. int8 PTQ (`quant.ptq.quantize_spec_net`) calibrated on ``calibration`` training clips (their
   un-augmented features), with the input range fixed to the int8 features' (scale 1/128, zero
   point 0), so the front end's int8 output is the model's int8 input unchanged;
4. the test split through the float model and the int8 reference runtime: accuracy of each, and
   on how many clips their predictions agree;
5. ``RUN_DIR/model_int8.tflite`` with the front end and labels in its ``mcuforge.kws`` metadata
   (`pipeline.kws_model`), and ``RUN_DIR/kws.json`` with the figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import write_json_atomic
from ..data.audio_augment import AudioAugment
from ..data.audio_dataset import AudioFeatureDataset, features_to_int8
from ..data.registry import load_dataset
from ..data.transforms import FEATURE_RANGE, eval_batch
from ..errors import McuforgeError
from ..frontends.load import load_spec
from ..frontends.tflite_writer import write_tflite
from ..ir import Graph
from ..models.dsl import NetSpec
from ..quant.calibrate import INPUT, calibrate
from ..quant.inference import int8_logits
from ..quant.ptq import quantize_spec_net
from ..train.config import TrainConfig
from ..train.run import train_spec
from .kws_model import KwsInfo, features_to_model_input, with_kws_metadata

TFLITE_NAME = "model_int8.tflite"
RESULT_NAME = "kws.json"


@dataclass(frozen=True)
class KwsSettings:
    """A KWS training job; the defaults (DS-CNN width 0.5 on FSDD's micro_speech features, 30
    epochs, speed 0.8-1.2 among the augmentations) are the ones `mcuforge demo --task kws` ran for
    the README's figures."""

    model: str = "dscnn"
    width: float | None = 0.5
    dataset: str = "fsdd"
    frontend: str = "micro-speech"
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float | None = 3e-3
    label_smoothing: float = 0.1
    augment: bool = True
    augmentation: AudioAugment = AudioAugment()
    seed: int = 0
    # One torch thread: on a shared 2-core machine two threads ran 2-10x slower than one (they
    # spin waiting for each other); one thread also keeps the float training bit-reproducible.
    threads: int | None = 1
    calibration: int = 512
    checkpoint_every: int | None = None
    progress: bool = True


@dataclass(frozen=True)
class KwsResult:
    """What a KWS job measured (all on the test split)."""

    spec: str
    dataset: str
    frontend: str
    test_speakers: tuple[str, ...]
    test_clips: int
    float_accuracy: float
    int8_accuracy: float
    float_int8_agreement: int
    tflite: str
    training_seconds: float
    class_names: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {**asdict(self), "test_speakers": list(self.test_speakers), "class_names": list(self.class_names)}


def kws_spec(model: str, width: float | None, data: AudioFeatureDataset) -> NetSpec:
    """MODEL (zoo name or spec string) for ``data``'s features: its [frames, bins] input, one
    channel, the data set's classes; a spec string must already have that input."""
    frames, bins = data.image_size
    if "|" in model:
        spec = load_spec(model, None, width, data.num_classes, 1)
    else:
        spec = load_spec(model, bins, width, data.num_classes, 1)
    if spec.input_hw != (frames, bins):
        raise McuforgeError(f"{model}: input {spec.input_hw[0]}x{spec.input_hw[1]} does not take the "
                            f"{data.frontend} features ({frames} frames x {bins} bins); use res{frames}x{bins}")
    return spec


def load_kws_splits(settings: KwsSettings) -> tuple[AudioFeatureDataset, AudioFeatureDataset]:
    """(train, test) splits of the settings' audio data set."""
    train_set = load_dataset(settings.dataset, "train", frontend=settings.frontend, augment=settings.augment,
                             progress=settings.progress)
    if isinstance(train_set, AudioFeatureDataset) and settings.augment:
        train_set = replace(train_set, augment=settings.augmentation)
    test_set = load_dataset(settings.dataset, "test", frontend=settings.frontend, augment=False,
                            progress=settings.progress)
    if not isinstance(train_set, AudioFeatureDataset):
        raise McuforgeError(f"{settings.dataset}: --task kws needs spoken audio (fsdd, fsdd:SPEAKER or a "
                            "Speech Commands / FSDD folder)")
    return train_set, test_set


def quantize_kws(net: torch.nn.Module, train_set: AudioFeatureDataset, samples: int, seed: int) -> Graph:
    """The int8 graph of ``net``, calibrated on ``samples`` training clips, input fixed to int8 features."""
    order = np.sort(np.random.default_rng(seed).permutation(len(train_set))[:samples])
    height, width = train_set.image_size
    batches = [eval_batch(train_set.batch(order[i:i + 128])[0], (height, width), 1, "int8-features")
               for i in range(0, len(order), 128)]
    ranges = calibrate(net, batches)
    ranges[INPUT] = FEATURE_RANGE
    return quantize_spec_net(net, ranges=ranges)


@torch.no_grad()
def float_predictions(net: torch.nn.Module, data: AudioFeatureDataset) -> np.ndarray:
    """Float argmax per clip of the stored features."""
    net.eval()
    images, _ = data.batch(np.arange(len(data)))
    return net(eval_batch(images, data.image_size, 1, "int8-features")).argmax(1).numpy()


def int8_scores(graph: Graph, data: AudioFeatureDataset) -> np.ndarray:
    """int8 scores [N, classes] of the stored features in the reference runtime."""
    features = features_to_int8(data.images[..., 0])
    return int8_logits(graph, features_to_model_input(graph, features)).reshape(len(data), -1)


def train_kws(settings: KwsSettings, run_dir: str | Path, resume: bool = False,
              splits: tuple[AudioFeatureDataset, AudioFeatureDataset] | None = None
              ) -> tuple[torch.nn.Module, Graph, KwsResult]:
    """The whole job (module doc); ``splits`` reuses already loaded data."""
    run_dir = Path(run_dir)
    train_set, test_set = splits or load_kws_splits(settings)
    spec = kws_spec(settings.model, settings.width, train_set)
    config = TrainConfig(
        resolution=spec.input_hw, in_channels=1, epochs=settings.epochs, batch_size=settings.batch_size,
        optimizer=settings.optimizer, lr=settings.lr, label_smoothing=settings.label_smoothing,
        augment=settings.augment, hflip=False, random_crop=False, seed=settings.seed, threads=settings.threads,
        checkpoint_every_steps=settings.checkpoint_every, progress=settings.progress,
        input_encoding="int8-features")
    net, trained = train_spec(spec, train_set, test_set, config, run_dir, resume=resume,
                              dataset_name=settings.dataset)
    with torch.no_grad():
        graph = quantize_kws(net, train_set, settings.calibration, settings.seed)
    info = KwsInfo(settings.frontend, tuple(train_set.class_names))
    graph = with_kws_metadata(replace(graph, name=spec.name or "kws"), info)
    tflite = write_tflite(graph, run_dir / TFLITE_NAME)
    labels = test_set.labels
    float_pred = float_predictions(net, test_set)
    int8_pred = int8_scores(graph, test_set).argmax(1)
    result = KwsResult(
        spec=spec.to_string(), dataset=settings.dataset, frontend=settings.frontend,
        test_speakers=tuple(test_set.metadata.get("speakers", ())), test_clips=len(test_set),
        float_accuracy=float(np.mean(float_pred == labels)), int8_accuracy=float(np.mean(int8_pred == labels)),
        float_int8_agreement=int(np.sum(float_pred == int8_pred)), tflite=str(tflite),
        training_seconds=round(sum(s.seconds for s in trained.history), 1),
        class_names=tuple(train_set.class_names))
    write_json_atomic(run_dir / RESULT_NAME, {**result.to_dict(), "settings": asdict(settings)}, indent=2)
    return net, graph, result
