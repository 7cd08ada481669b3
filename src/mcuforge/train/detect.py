"""Training and scoring a YOLO-style detector (a spec ending in a ``yolo`` head) with the one loop.

`detection_task` is the `TrainTask` of `train.loop.train`: each step letterboxes and augments its
images (`data.box_augment`, seeded from the step's generator, so resume stays exact) and returns
the YOLO loss (`train.yolo_loss`); the evaluation is mAP@0.5 (VOC, `detect.metrics`) of the
float model on the validation split, stored in ``test_accuracy`` of the epoch records, with the
validation loss in ``test_loss``. Anchors come from k-means over the training boxes as they sit
in the letterboxed input (`detect.anchors`), so the same data always give the same head.

`train_detector` is the whole run: build the spec, let the caller initialise it (e.g. with
ImageNet-pretrained backbone weights), set the objectness bias to a prior of about one object in
a hundred cells, train with checkpoints and exact resume, and write ``model.pt`` (with the head
under ``"head"``), ``head.json`` (`detect.head`'s format) and ``result.json`` in the run folder.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..data.box_augment import AugmentSettings, canvases_to_input, eval_example, letterbox_placement, \
    place_boxes, train_example
from ..data.detection import DetectionDataset
from ..detect.anchors import kmeans_anchors
from ..detect.fixed import DetectConfig
from ..detect.head import YoloHead, YoloOutput, head_to_json, save_head_json
from ..detect.metrics import MAP_DETECT_CONFIG, DetectionScores, detection_scores
from ..detect.postprocess import boxes_to_image, detect_float
from ..errors import McuforgeError
from ..models.dsl import NetSpec, is_detector, total_stride
from ..models.spec_torch import YoloHead as YoloHeadModule
from ..models.spec_torch import build_torch
from .config import TrainConfig, TrainResult
from .detect_cache import FeatureViews, TailNet, cache_views
from .loop import TrainHooks, TrainTask, train
from .run import MODEL_NAME, RESULT_NAME, save_trained_model, write_result_json
from .yolo_loss import yolo_loss

HEAD_NAME = "head.json"
OBJECTNESS_PRIOR = 0.01


def letterboxed_box_sizes(dataset: DetectionDataset, size: int) -> np.ndarray:
    """(w, h) [N, 2] of every non-difficult box as it sits in the size x size letterboxed input."""
    rows = []
    for sample in dataset.samples:
        height, width = sample.size
        scale = size / max(height, width)
        boxes = sample.boxes[~sample.difficult]
        rows.append(np.stack([(boxes[:, 2] - boxes[:, 0]) * scale, (boxes[:, 3] - boxes[:, 1]) * scale], axis=1))
    return np.concatenate(rows) if rows else np.zeros((0, 2))


def detector_head(spec: NetSpec, dataset: DetectionDataset) -> YoloHead:
    """The `YoloHead` of a detector spec, anchors by k-means over ``dataset``'s boxes."""
    if not is_detector(spec):
        raise McuforgeError(f"{spec.name or 'the model'} has no yolo head: detection needs a spec ending in yolo_a<N>")
    count = spec.blocks[-1].anchors
    anchors = kmeans_anchors(letterboxed_box_sizes(dataset, spec.resolution), count)
    output = YoloOutput(total_stride(spec), tuple((round(float(w), 2), round(float(h), 2)) for w, h in anchors),
                        spec.num_classes)
    return YoloHead((output,), (spec.resolution, spec.resolution))


def _targets(boxes_labels: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.from_numpy(np.asarray(b, np.float32).reshape(-1, 4)), torch.from_numpy(np.asarray(l, np.int64)))
            for b, l in boxes_labels]


def _head_loss(model: nn.Module, x: torch.Tensor, targets, head: YoloHead,
               side: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(YOLO loss, raw output) of the model on ``x`` (an image of ``side`` pixels, ``x``'s own by
    default); the anchors scale with the side when it is not the head's input size (multi-scale
    training: boxes scale with the letterbox)."""
    output = head.outputs[0]
    raw = model(x)
    scale = (side or x.shape[-1]) / head.input_size[1]
    anchors = torch.tensor(output.anchors, dtype=torch.float32) * scale
    loss, _ = yolo_loss(raw, targets, anchors, output.stride, output.num_classes)
    return loss, raw


def scaled_head(head: YoloHead, size: int) -> YoloHead:
    """The same head on a size x size input: anchors scaled by ``size / input side`` (a fully
    convolutional detector trained over several scales runs at each of them)."""
    factor = size / head.input_size[1]
    outputs = tuple(replace(o, anchors=tuple((round(w * factor, 2), round(h * factor, 2)) for w, h in o.anchors))
                    for o in head.outputs)
    return replace(head, outputs=outputs, input_size=(size, size))


def detection_task(head: YoloHead, augment: AugmentSettings = AugmentSettings(),
                   scales: tuple[int, ...] = (), val_features: torch.Tensor | None = None) -> TrainTask:
    """The `TrainTask` of a detector with ``head`` (module doc). ``scales``: input sides drawn per
    step (multi-scale training, YOLOv2), all multiples of the stride; empty: the head's own.
    ``val_features``: the frozen blocks' outputs of the letterboxed validation images, which a
    `TailNet` is evaluated on (the same figures as the whole model on the images)."""
    sides = scales or (head.input_size[0],)
    stride = head.outputs[0].stride
    if any(side % stride for side in sides):
        raise McuforgeError(f"training scales {sides} must be multiples of the stride {stride}")

    def loss(model: nn.Module, dataset: DetectionDataset | FeatureViews, indices: torch.Tensor,
             config: TrainConfig, generator: torch.Generator, hflip: bool) -> tuple[torch.Tensor, int, int]:
        if isinstance(dataset, FeatureViews):  # cached frozen-block features (train.detect_cache)
            x = dataset.features[indices]
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            targets = [dataset.targets[int(i)] for i in indices]
            value, _ = _head_loss(model, x, targets, head, side=head.input_size[0])
            return value, 0, len(targets)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
        size = sides[int(rng.integers(len(sides)))]
        settings = replace(augment, flip=augment.flip and hflip) if config.augment else None
        examples = [train_example(dataset.samples[int(i)], size, rng, settings) for i in indices]
        x = canvases_to_input([canvas for canvas, _, _ in examples])
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        value, _ = _head_loss(model, x, _targets([(b, l) for _, b, l in examples]), head)
        return value, 0, len(examples)

    def evaluate(model: nn.Module, dataset: DetectionDataset, config: TrainConfig) -> tuple[float, float]:
        if isinstance(model, TailNet) and val_features is None:
            model = model.model
        mean_loss, scores = evaluate_detector(model, dataset, head, config.eval_batch_size,
                                              val_features if isinstance(model, TailNet) else None)
        return mean_loss, scores.map50_voc

    return TrainTask(loss=loss, evaluate=evaluate, metric="mAP@0.5", train_metric=False)


@torch.no_grad()
def predict_float(model: nn.Module, dataset: DetectionDataset, head: YoloHead, batch_size: int = 32,
                  config: DetectConfig = MAP_DETECT_CONFIG, features: torch.Tensor | None = None
                  ) -> tuple[list[np.ndarray], float]:
    """(boxes [N, 6] per sample in its image's pixels, mean loss) of the float model on ``dataset``
    letterboxed as deployed (`detect.postprocess.detect_float`); with ``features`` (frozen-block
    outputs of those letterboxed images) ``model`` is the `TailNet` that takes them."""
    was_training = model.training
    model.eval()
    size = head.input_size[0]
    predictions, total = [], 0.0
    for first in range(0, len(dataset), batch_size):
        samples = dataset.samples[first:first + batch_size]
        placed = [eval_example(sample, size) for sample in samples]
        x = canvases_to_input([canvas for canvas, _ in placed]) if features is None else \
            features[first:first + batch_size]
        targets = _targets([(place_boxes(s.boxes, letterbox_placement(box), size), s.labels)
                            for s, (_, box) in zip(samples, placed)])
        value, raw = _head_loss(model, x, targets, head, side=size)
        total += float(value) * len(samples)
        nhwc = raw.permute(0, 2, 3, 1).numpy()
        for index, (_, box) in enumerate(placed):
            found = detect_float([nhwc[index]], head, config)
            predictions.append(boxes_to_image(found, box))
    model.train(was_training)
    return predictions, total / max(1, len(dataset))


def evaluate_detector(model: nn.Module, dataset: DetectionDataset, head: YoloHead, batch_size: int = 32,
                      features: torch.Tensor | None = None) -> tuple[float, DetectionScores]:
    """(mean loss, mAP figures) of the float model on ``dataset`` (``features``: `predict_float`)."""
    predictions, mean_loss = predict_float(model, dataset, head, batch_size, features=features)
    return mean_loss, detection_scores(predictions, dataset.ground_truths(), head.num_classes)


def set_objectness_prior(model: nn.Module, prior: float = OBJECTNESS_PRIOR) -> None:
    """Start the head's objectness logits at ``log(prior / (1 - prior))`` and its class logits at 0."""
    heads = [m for m in model.modules() if isinstance(m, YoloHeadModule)]
    for head in heads:
        with torch.no_grad():
            bias = head.conv.bias.view(head.anchors, 5 + head.num_classes)
            bias[:, 4] = math.log(prior / (1 - prior))
            bias[:, 5:] = 0.0


def freeze_blocks(model: nn.Module, count: int) -> TrainHooks:
    """Freeze the first ``count`` blocks of a `SpecNet` (no gradients; batch norm keeps its
    running statistics) and return the hook that keeps them in eval mode every epoch."""
    for block in list(model.blocks)[:count]:
        for parameter in block.parameters():
            parameter.requires_grad_(False)

    def on_epoch_start(epoch: int, net: nn.Module) -> None:
        for block in list(model.blocks)[:count]:
            block.eval()
    return TrainHooks(on_epoch_start=on_epoch_start)


def train_detector(spec: NetSpec, train_set: DetectionDataset, val_set: DetectionDataset | None,
                   config: TrainConfig, run_dir: str | Path, resume: bool = False,
                   initialise: Callable[[nn.Module], None] | None = None, frozen_blocks: int = 0,
                   scales: tuple[int, ...] = (), dataset_name: str = "",
                   augment: AugmentSettings = AugmentSettings(), cached_views: int = 0,
                   progress: bool = True) -> tuple[nn.Module, TrainResult, YoloHead]:
    """The whole detection run (module doc): (trained model, result, head). ``frozen_blocks``:
    the first blocks are not trained (`freeze_blocks`); ``scales``: multi-scale training
    (`detection_task`), the head and the evaluation stay at the spec's resolution.
    ``cached_views`` > 0 (with ``frozen_blocks`` > 0): the frozen blocks' outputs for that many
    views of each training image are computed once and only the rest is trained on them
    (`train.detect_cache`; not with ``scales``)."""
    head = detector_head(spec, train_set)
    torch.manual_seed(config.seed)
    model = build_torch(spec)
    if initialise is not None:
        initialise(model)
    set_objectness_prior(model)
    model.train()
    hooks = freeze_blocks(model, frozen_blocks)
    head_json = head_to_json(head)
    metadata = {"spec": spec.to_string(), "dataset": dataset_name, "class_names": list(train_set.class_names),
                "head": head_json, "task": "detect", "frozen_blocks": frozen_blocks, "scales": list(scales)}
    trained, data, val_features = model, train_set, None
    if cached_views:
        if not frozen_blocks or scales:
            raise McuforgeError("cached views need frozen blocks (--frozen-blocks) and one scale")
        data = cache_views(model, train_set, frozen_blocks, spec.resolution, cached_views, config.seed, augment,
                           progress=progress)
        if val_set is not None:
            val_features = cache_views(model, val_set, frozen_blocks, spec.resolution, 1, config.seed,
                                       progress=progress).features
        trained = TailNet(model, frozen_blocks)
        metadata["cached_views"] = cached_views
    result = train(trained, data, config, checkpoint_dir=run_dir, resume=resume, eval_dataset=val_set,
                   hooks=hooks, metadata=metadata, task=detection_task(head, augment, scales, val_features))
    run_dir = Path(run_dir)
    save_trained_model(run_dir / MODEL_NAME, model, spec, config, list(train_set.class_names), dataset_name,
                       result, extra={"head": head_json, "task": "detect"})
    save_head_json(head, run_dir / HEAD_NAME)
    write_result_json(run_dir / RESULT_NAME, spec, config, dataset_name, result)
    return model, result, head
