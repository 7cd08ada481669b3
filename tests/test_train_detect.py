"""Detector training through the one training loop: exact resume, cached frozen-block features,
model.pt / head.json, and the float mAP evaluation (tiny detector, synthetic rectangles)."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_cli_train_quantize_detect(tmp_path, capsys):
    """`train --task detect` on a VOC folder, `quantize` (int8 .tflite + head JSON), `detect --json`."""
    from PIL import Image

    from mcuforge.cli import main

    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for sample in _rectangles(10, 3).samples:
        Image.fromarray(sample.image).save(root / "JPEGImages" / sample.name)
        x0, y0, x1, y1 = (int(v) for v in sample.boxes[0])
        name = ("green", "red")[int(sample.labels[0])]
        (root / "Annotations" / f"{Path(sample.name).stem}.xml").write_text(
            f"<annotation><filename>{sample.name}</filename><object><name>{name}</name><bndbox><xmin>{x0}</xmin>"
            f"<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object></annotation>")
    run = tmp_path / "run"
    spec = SPEC.replace("cls2", "cls1")
    assert main(["train", spec, "--task", "detect", "--dataset", f"voc:{root}", "--epochs", "1", "--batch-size",
                 "4", "--threads", "1", "--out", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert 0.0 <= summary["val_map50"] <= 1.0 and len(summary["anchors"]) == 2
    tflite = tmp_path / "det.tflite"
    assert main(["quantize", str(run / "model.pt"), "-o", str(tflite), "--calibration", "8", "--evaluate", "2"]) == 0
    assert "float" in capsys.readouterr().out  # float and int8 mAP of the first validation images
    assert json.loads((tmp_path / "det.head.json").read_text())["outputs"][0]["num_classes"] == 2
    capsys.readouterr()
    assert main(["detect", str(tflite), str(root / "JPEGImages" / "r0.png"), "--json", "--score", "0.0"]) == 0
    boxes = json.loads(capsys.readouterr().out)
    assert boxes and all(len(box) == 6 for box in boxes)


def test_multi_scale_training_runs_at_each_side(tmp_path, data):
    from mcuforge.errors import McuforgeError
    from mcuforge.train.detect import detector_head, detection_task, scaled_head

    train_set, val_set = data
    spec = parse_spec(SPEC)
    head = detector_head(spec, train_set)
    smaller = scaled_head(head, 32)
    assert smaller.input_size == (32, 32)
    assert smaller.outputs[0].anchors[0][0] == pytest.approx(head.outputs[0].anchors[0][0] / 2, abs=0.01)
    with pytest.raises(McuforgeError, match="multiples of the stride"):
        detection_task(head, scales=(48,))
    _, result, _ = train_detector(spec, train_set, val_set, _config(epochs=1), tmp_path / "m", scales=(32, 64))
    assert np.isfinite(result.final.train_loss)
