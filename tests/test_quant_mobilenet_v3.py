"""Post-training quantisation of MobileNetV3-style networks (h-swish activations, squeeze-excite
blocks with a hard-sigmoid gate): calibration covers every new activation, the graph follows
TFLite's int8 conventions, the int8 graph tracks the float model in the reference runtime, and the
written .tflite runs bit-exactly in TFLite Micro and as compiled C."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcuforge.cli import main
from mcuforge.errors import UnsupportedOpError
from mcuforge.models.dsl import parse_spec
from mcuforge.models.spec_torch import SpecNet
from mcuforge.frontends.tflite_writer import serialize_tflite, write_tflite
from mcuforge.models.zoo import get_spec
from mcuforge.ir import DType, OpKind, QuantParams
from mcuforge.quant.calibrate import activation_points, calibrate, layer_modules
from mcuforge.quant.inference import int8_logits, quantize_input
from mcuforge.quant.ptq import quantize_spec_net
from mcuforge.quant.qat import prepare_qat
from mcuforge.ops.add import add_int8
from mcuforge.ops.mul import mul_int8
from test_quant_ptq import inputs, int8_and_float_logits, random_net

# Squeeze-excite with ReLU and with h-swish, with and without expansion, a residual SE block,
# an h-swish stem, head conv and hidden classifier layer (MobileNetV3's head).
TINY = ("res32 in1 cls10 | cn_k3_s2_c16_nhs | ir_k3_s2_m16_se0.25_c16_nre ir_k5_m48_se0.25_c16_nhs "
        "ir_k3_s2_m40_c24_nhs | cn_k1_c48_nhs pool fc_c64_nhs fc_c10")
SPECS = {
    "tiny": lambda: parse_spec(TINY),
    "mobilenet-v3-small": lambda: get_spec("mobilenet-v3-small", resolution=32, width=0.25,
                                           num_classes=10, in_channels=1),
}


def synthetic(spec, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable toy task: images (NCHW in [-1, 1]) of ``spec.num_classes`` classes, each a fixed
    smooth random template plus uniform noise, and their labels."""
    coarse = torch.rand((spec.num_classes, spec.in_channels, 4, 4),
                        generator=torch.Generator().manual_seed(1234)) * 2 - 1
    templates = torch.nn.functional.interpolate(coarse, size=(spec.resolution, spec.resolution),
                                                mode="bilinear")
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, spec.num_classes, (count,), generator=generator)
    noise = torch.rand((count, spec.in_channels, spec.resolution, spec.resolution),
                       generator=generator) * 2 - 1
    return (0.7 * templates[labels] + 0.3 * noise).clamp(-1, 1), labels


def trained_net(spec, steps: int = 60) -> SpecNet:
    """`random_net` re-initialised (Kaiming) and trained for a few Adam steps on `synthetic` with
    the batch norms frozen: the logits then depend on the input by more than quantisation noise, so
    that top-1 agreement means something (a random deep net's logits are nearly constant)."""
    model = random_net(spec)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    for step in range(steps):
        x, labels = synthetic(spec, 32, seed=step)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), labels).backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def quantised():
    """(spec, float model, int8 graph) of each spec, built once."""
    built = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # faster for these small batches, and the same float sums every run
    try:
        for name, make in SPECS.items():
            spec = make()
            model = trained_net(spec)
            graph = quantize_spec_net(model, [synthetic(spec, 128, seed=500)])
            built[name] = (spec, model, graph)
    finally:
        torch.set_num_threads(threads)
    return built


def test_calibration_reads_h_swish_and_squeeze_excite_points() -> None:
    spec = SPECS["tiny"]()
    model = random_net(spec)
    x = inputs(spec, 8)
    ranges = calibrate(model, [x])
    assert set(ranges) == {"input", *activation_points(model)}
    # before and after every h-swish, the SE block's MEAN, convs and gate
    for name in ("b0", "b0.hswish", "b2.expand", "b2.expand.hswish", "b2.dw.hswish", "b6.fc",
                 "b6.hswish", "b1.se.pool", "b1.se.reduce", "b1.se.expand", "b1.se.gate"):
        assert name in ranges, name
    for name, (low, high) in ranges.items():
        if name.endswith(".hswish"):  # h-swish is >= -3/8 everywhere
            assert low >= -0.375 - 1e-6 and high > 0
    # the pre-activation range is the conv output's: it goes below h-swish's minimum
    assert ranges["b0"][0] < -0.375
    b1 = model.blocks[1]
    with torch.no_grad():
        stem = model.blocks[0](x)
        features = b1.dw(b1.expand(stem) if b1.expand is not None else stem)
        pooled = features.mean((2, 3), keepdim=True)
        gated = b1.se(features)
    assert ranges["b1.se.pool"] == pytest.approx((float(pooled.min()), float(pooled.max())))
    assert ranges["b1.se.gate"] == pytest.approx((float(gated.min()), float(gated.max())))


def test_quantisation_aware_training_still_refuses_mobilenet_v3() -> None:
    model = random_net(SPECS["tiny"]())
    with pytest.raises(UnsupportedOpError, match="h-swish"):
        layer_modules(model)
    with pytest.raises(UnsupportedOpError):
        prepare_qat(model, [inputs(model.spec, 4)])


@pytest.mark.parametrize("name", list(SPECS))
def test_graph_follows_tflite_int8_conventions(quantised, name: str) -> None:
    _, _, graph = quantised[name]
    kinds = {op.kind for op in graph.ops}
    assert {OpKind.HARD_SWISH, OpKind.MEAN, OpKind.MUL, OpKind.ADD} <= kinds
    for tensor in graph.tensors.values():
        assert tensor.quant is not None, tensor.name
        if tensor.constant:
            assert tensor.data is not None, tensor.name
    for op in graph.ops:
        if op.kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED):
            x, w, b = (graph.tensor(n) for n in op.inputs)
            assert w.dtype is DType.INT8 and b.dtype is DType.INT32
            assert set(w.quant.zero_point) == {0}
            assert len(w.quant.scale) == w.shape[w.quant.axis]  # per channel
            np.testing.assert_allclose(b.quant.scale,
                                       np.float32(x.quant.scale[0]) * np.asarray(w.quant.scale),
                                       rtol=1e-6)
        if op.kind is OpKind.HARD_SWISH:
            x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
            assert x.quant != y.quant  # the conv output and the activation are calibrated apart
            # the output range is h-swish's (>= -3/8), not the conv output's
            assert y.quant.scale[0] * (-128 - y.quant.zero_point[0]) >= -0.375 - y.quant.scale[0]
        if op.name.endswith("hsig_add") or op.name.endswith("hsig_scale"):
            value, top = (3.0, 6.0) if op.name.endswith("hsig_add") else (1 / 6, 1.0)
            constant = graph.tensor(op.inputs[1])
            assert constant.constant and constant.shape == (1,) and constant.dtype is DType.INT8
            real = (int(constant.data[0]) - constant.quant.zero_point[0]) * constant.quant.scale[0]
            assert real == pytest.approx(value, rel=1e-6)
            y = graph.tensor(op.outputs[0])
            assert y.quant.zero_point == (-128,) and y.quant.scale[0] == pytest.approx(top / 255)
        if op.kind is OpKind.MUL and op.name.endswith(".gate"):
            assert graph.tensor(op.inputs[1]).shape[1:3] == (1, 1)  # broadcast over H and W


def test_hard_sigmoid_ops_compute_hard_sigmoid(quantised) -> None:
    """The int8 ADD 3 (RELU6) and MUL 1/6, run by the reference kernels on every int8 input, give
    relu6(x + 3) / 6 to within half an output step (1/255): the MUL maps codes one to one."""
    _, _, graph = quantised["tiny"]
    add = next(op for op in graph.ops if op.name.endswith("hsig_add"))
    mul = next(op for op in graph.ops if op.name.endswith("hsig_scale"))
    assert mul.inputs[0] == add.outputs[0]
    quant = {name: graph.tensor(name).quant
             for op in (add, mul) for name in (*op.inputs, *op.outputs)}
    codes = np.arange(-128, 128).astype(np.int8)
    three, sixth = (graph.tensor(op.inputs[1]).data for op in (add, mul))
    y_q = quant[mul.outputs[0]]
    # The graph's own input quantisation, and a wide one that reaches both flat parts.
    for x_q in (quant[add.inputs[0]], QuantParams.per_tensor(0.05, 0)):
        shifted = add_int8(codes, three, add.attrs.clamp, x_q, quant[add.inputs[1]],
                           quant[add.outputs[0]])
        gate = mul_int8(shifted, sixth, mul.attrs.clamp, quant[mul.inputs[0]], quant[mul.inputs[1]],
                        y_q)
        np.testing.assert_array_equal(gate, shifted)  # scales 6/255 * 1/6 = 1/255, same zero point
        real_in = (codes.astype(np.float64) - x_q.zero_point[0]) * x_q.scale[0]
        expected = np.clip(real_in + 3, 0, 6) / 6
        actual = (gate.astype(np.float64) - y_q.zero_point[0]) * y_q.scale[0]
        assert np.abs(actual - expected).max() <= 0.5 / 255 + 1e-6
    assert actual.min() == 0.0 and actual.max() == pytest.approx(1.0)


@pytest.mark.parametrize("name", list(SPECS))
def test_int8_graph_tracks_the_float_model(quantised, name: str) -> None:
    spec, model, graph = quantised[name]
    x, labels = synthetic(spec, 128, seed=900)
    logits, expected = int8_and_float_logits(model, graph, x)
    spread = expected.max() - expected.min()
    error = np.abs(logits - expected)
    # (the largest errors come from values beyond the calibrated ranges, which saturate)
    assert error.max() < 0.08 * spread, (error.max(), spread)
    assert error.mean() < 0.01 * spread, (error.mean(), spread)
    agreement = np.mean(logits.argmax(1) == expected.argmax(1))
    assert agreement >= 0.93, agreement
    assert np.mean(expected.argmax(1) == labels.numpy()) > 0.8  # the float model learned the task
    assert len(np.unique(expected.argmax(1))) >= 5


@pytest.mark.parametrize("name", list(SPECS))
def test_tflite_runs_bit_exact_in_tflite_micro(quantised, name: str) -> None:
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    spec, _, graph = quantised[name]
    images = quantize_input(graph, synthetic(spec, 6, seed=4)[0])
    expected = int8_logits(graph, images, batch_size=6)
    interpreter = runtime.Interpreter.from_bytes(serialize_tflite(graph),
                                                 arena_size=8 * 1024 * 1024)
    actual = []
    for image in images:
        interpreter.set_input(image[None], 0)
        interpreter.invoke()
        actual.append(np.array(interpreter.get_output(0)))
    np.testing.assert_array_equal(np.concatenate(actual), expected)
    assert len(np.unique(expected)) > 5


def test_compiled_c_is_bit_exact(quantised, tmp_path) -> None:
    _, _, graph = quantised["tiny"]
    model = tmp_path / "tiny_mbv3.tflite"
    write_tflite(graph, model)
    project = tmp_path / "project"
    assert main(["compile", str(model), "-o", str(project), "--target", "host"]) == 0
    assert main(["verify", str(project), "--random", "2"]) == 0
