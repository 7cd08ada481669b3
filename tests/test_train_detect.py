"""Detector training through the one training loop: exact resume, cached frozen-block features,
model.pt / head.json, and the float mAP evaluation (tiny detector, synthetic rectangles)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mcuforge.data.detection import DetectionDataset, DetectionSample
from mcuforge.models.dsl import parse_spec
from mcuforge.models.spec_torch import build_torch
from mcuforge.train import TrainConfig, TrainingStopped
from mcuforge.train.detect import train_detector
from mcuforge.train.run import load_trained_model

SPEC = "res64 in3 cls2 | cn_k3_s2_c8 | ir_k3_s2_e2_c16 | ir_k3_s2_e2_c16 | cn_k3_s2_c16 | cn_k3_s2_c16 | yolo_a2"


def _rectangles(count: int, seed: int) -> DetectionDataset:
    rng = np.random.default_rng(seed)
    samples = []
    for index in range(count):
        image = rng.integers(0, 60, size=(48, 64, 3), dtype=np.uint8)
        w, h = rng.integers(12, 40), rng.integers(10, 36)
        x0, y0 = rng.integers(0, 64 - w), rng.integers(0, 48 - h)
        label = index % 2
        image[y0:y0 + h, x0:x0 + w] = (230, 40, 40) if label else (40, 230, 40)
        samples.append(DetectionSample(f"r{index}.png", image, np.array([[x0, y0, x0 + w, y0 + h]], np.float32),
                                       np.array([label]), np.array([False])))
    return DetectionDataset(tuple(samples), ("green", "red"), "synthetic")


def _config(**overrides) -> TrainConfig:
    values = dict(resolution=64, in_channels=3, epochs=2, batch_size=4, optimizer="adamw", lr=3e-3,
                  weight_decay=0.01, warmup_epochs=0.5, label_smoothing=0.0, threads=1, progress=False)
    return TrainConfig(**{**values, **overrides})


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def data():
    return _rectangles(12, 0), _rectangles(4, 1)


def test_killed_detector_run_resumes_exactly(tmp_path, data):
    train_set, val_set = data
    spec = parse_spec(SPEC)
    straight, result, head = train_detector(spec, train_set, val_set, _config(), tmp_path / "a")
    with pytest.raises(TrainingStopped):
        train_detector(spec, train_set, val_set, _config(stop_after_steps=4, checkpoint_every_steps=1), tmp_path / "b")
    resumed, again, _ = train_detector(spec, train_set, val_set, _config(checkpoint_every_steps=1), tmp_path / "b",
                                       resume=True)
    for name, tensor in _weights(straight).items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert [h.test_accuracy for h in result.history] == [h.test_accuracy for h in again.history]
    assert 0.0 <= result.final.test_accuracy <= 1.0
    saved_head = json.loads((tmp_path / "a" / "head.json").read_text())
    assert saved_head["outputs"][0]["stride"] == 32 and len(saved_head["outputs"][0]["anchors"]) == 2
    model, loaded_spec, saved = load_trained_model(tmp_path / "a" / "model.pt")
    assert loaded_spec == spec and saved["head"] == saved_head and saved["task"] == "detect"


def test_cached_views_train_only_the_tail(tmp_path, data):
    train_set, val_set = data
    spec = parse_spec(SPEC)
    torch.manual_seed(0)
    model, result, _ = train_detector(spec, train_set, val_set, _config(epochs=3), tmp_path / "c",
                                      frozen_blocks=3, cached_views=2, progress=False)
    torch.manual_seed(0)
    fresh = build_torch(spec)
    for name, tensor in fresh.state_dict().items():
        frozen = name.startswith(("blocks.0.", "blocks.1.", "blocks.2."))
        if "running" in name or "num_batches" in name:
            continue
        assert torch.equal(tensor, model.state_dict()[name]) == frozen, name
    assert result.history[-1].train_loss < result.history[0].train_loss
