"""The zoo's mcunet-in3 loads mcunet's PyTorch checkpoint: it computes the same function as the
reference int8 .tflite of that model (TFLite Micro), and our post-training quantisation of it runs
and stays close to the float model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import require_reference_file
from mcuforge.errors import McuforgeError, UnknownModelError
from mcuforge.models.spec_torch import build_torch
from mcuforge.frontends.tflite_writer import serialize_tflite
from mcuforge.models.zoo import get_spec
from mcuforge.quant.inference import int8_logits, quantize_input
from mcuforge.quant.pretrained import PRETRAINED, load_mcunet_checkpoint, load_pretrained
from mcuforge.quant.ptq import quantize_spec_net

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

CHECKPOINT = PRETRAINED["mcunet-in3"]
TFLITE = "models/mcunet/mcunet-320kb-1mb_imagenet.tflite"


def natural_like_images(count: int, resolution: int = 176, seed: int = 0) -> torch.Tensor:
    """Images in [0, 1] with a roughly 1/f spectrum (sums of upsampled random colour grids), on the
    8-bit pixel grid: smooth, structured inputs instead of white noise."""
    generator = torch.Generator().manual_seed(seed)
    x = sum(F.interpolate(torch.rand(count, 3, s, s, generator=generator), size=resolution,
                          mode="bilinear", align_corners=False) / s ** 0.5 for s in (4, 8, 16, 32))
    low, high = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
    return torch.round((x - low) / (high - low) * 255) / 255


@pytest.fixture(scope="module")
def model():
    require_reference_file(CHECKPOINT)
    return load_pretrained("mcunet-in3")


def test_checkpoint_tensors_land_in_the_right_layers(model) -> None:
    state = torch.load(require_reference_file(CHECKPOINT), weights_only=True)["state_dict"]
    own = model.state_dict()
    pairs = {
        "blocks.0.conv.weight": "first_conv.conv.weight",
        "blocks.1.dw.conv.weight": "blocks.0.mobile_inverted_conv.depth_conv.conv.weight",
        "blocks.5.expand.bn.running_var": "blocks.4.mobile_inverted_conv.inverted_bottleneck.bn.running_var",
        "blocks.18.project.conv.weight": "blocks.17.mobile_inverted_conv.point_linear.conv.weight",
        "blocks.20.linear.bias": "classifier.linear.bias",
    }
    for ours, theirs in pairs.items():
        assert torch.equal(own[ours], state[theirs]), ours
    assert not model.training


def test_float_model_agrees_with_the_reference_tflite(model) -> None:
    images = natural_like_images(6)
    with torch.no_grad():
        logits = model((images - 0.5) / 0.5).numpy()
    interpreter = runtime.Interpreter.from_file(str(require_reference_file(TFLITE)),
                                                arena_size=8 * 1024 * 1024)
    reference = []
    for image in images:
        pixels = np.round(image.permute(1, 2, 0).numpy() * 255).astype(np.int16)
        interpreter.set_input((pixels - 128).astype(np.int8)[None], 0)  # mcunet's eval_tflite.py
        interpreter.invoke()
        reference.append(np.array(interpreter.get_output(0))[0].astype(np.float64))
    reference = np.stack(reference)
    correlations = [np.corrcoef(reference[i], logits[i])[0, 1] for i in range(len(images))]
    assert min(correlations) > 0.95, correlations
    assert (reference.argmax(1) == logits.argmax(1)).sum() >= len(images) - 1


def test_ptq_of_the_pretrained_model_runs(model) -> None:
    images = (natural_like_images(10, seed=1) - 0.5) / 0.5
    graph = quantize_spec_net(model, [images[:8]])
    x = quantize_input(graph, images[8:])
    q = int8_logits(graph, x, batch_size=2)
    out_q = graph.tensor(graph.outputs[0]).quant
    logits = (q.astype(np.float64) - out_q.zero_point[0]) * out_q.scale[0]
    with torch.no_grad():
        expected = model(images[8:]).numpy()
    correlations = [np.corrcoef(logits[i], expected[i])[0, 1] for i in range(2)]
    assert min(correlations) > 0.6, correlations
    interpreter = runtime.Interpreter.from_bytes(serialize_tflite(graph), arena_size=8 * 1024 * 1024)
    interpreter.set_input(x[:1], 0)
    interpreter.invoke()
    np.testing.assert_array_equal(np.array(interpreter.get_output(0)), q[:1])


def test_bad_names_and_checkpoints_are_clear_errors(tmp_path) -> None:
    with pytest.raises(UnknownModelError):
        load_pretrained("mobilenet-v2")
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"first_conv.conv.weight": torch.zeros(16, 3, 3, 3)}}, bad)
    with pytest.raises(McuforgeError, match="no value for"):
        load_mcunet_checkpoint(build_torch(get_spec("mcunet-in3")), bad)
    torch.save({"state_dict": {"unknown.weight": torch.zeros(1)}}, bad)
    with pytest.raises(McuforgeError, match="no place"):
        load_mcunet_checkpoint(build_torch(get_spec("mcunet-in3")), bad)
