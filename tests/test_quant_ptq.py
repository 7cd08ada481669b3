"""Post-training quantisation: BN folding is exact, weights/activations follow TFLite's scheme, the
int8 graph tracks the float model in the reference runtime, and the written .tflite runs in TFLite
Micro bit-identically to the reference runtime. Int4 weights halve the weight Flash."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcuforge.analysis.cost import graph_cost
from mcuforge.models.spec_torch import ConvBNAct, SpecNet, build_torch
from mcuforge.models.zoo import get_spec
from mcuforge.ir import DType, OpKind
from mcuforge.quant.bn_fold import fold_batchnorm, folded_conv
from mcuforge.quant.calibrate import calibrate, layer_modules
from mcuforge.quant.inference import int8_logits, quantize_input
from mcuforge.quant.observers import activation_quant_params
from mcuforge.quant.ptq import quantize_spec_net
from mcuforge.quant.weights import dequantize_weights, quantize_weights

# Small networks covering every block kind the export handles: inverted residuals with and without
# expansion and residual, k3/k5/k7 depthwise, depthwise-separable blocks, a 1x1 head, pool, FC.
SPECS = {
    "mobilenet-v2": lambda: get_spec("mobilenet-v2", resolution=32, width=0.35, num_classes=10,
                                     in_channels=1),
    "mobilenet-v1": lambda: get_spec("mobilenet-v1", resolution=32, width=0.25, num_classes=10,
                                     in_channels=3),
    "mcunet-in0": lambda: get_spec("mcunet-in0", resolution=32, num_classes=10),
}


def random_net(spec, seed: int = 0) -> SpecNet:
    """A SpecNet with random weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = build_torch(spec)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return model.eval()


def inputs(spec, count: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (count, spec.in_channels, spec.resolution, spec.resolution)
    return torch.rand(shape, generator=generator) * 2 - 1


def int8_and_float_logits(model: SpecNet, graph, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(dequantised logits of the int8 ``graph``, float logits of ``model``) on the batch ``x``."""
    q = int8_logits(graph, quantize_input(graph, x), batch_size=len(x))
    out_q = graph.tensor(graph.outputs[0]).quant
    with torch.no_grad():
        expected = model(x).double().numpy()
    return (q.astype(np.float64) - out_q.zero_point[0]) * out_q.scale[0], expected


def test_bn_folding_is_exact_for_one_layer() -> None:
    torch.manual_seed(3)
    for groups in (1, 8):
        layer = ConvBNAct(8, 8, 3, 1, "none", groups=groups)
        layer.bn.running_mean.uniform_(-1, 1)
        layer.bn.running_var.uniform_(0.1, 3)
        layer.bn.weight.data.uniform_(-2, 2)
        layer.bn.bias.data.uniform_(-1, 1)
        layer.eval()
        weight, bias = folded_conv(layer)
        x = torch.randn(2, 8, 9, 9)
        folded = torch.nn.functional.conv2d(x, weight, bias, 1, 1, groups=groups)
        torch.testing.assert_close(folded, layer(x), rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_keeps_the_network_function() -> None:
    spec = SPECS["mobilenet-v2"]()
    model = random_net(spec)
    x = inputs(spec, 4)
    with torch.no_grad():
        expected = model(x)
        fold_batchnorm(model)
        actual = model(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bits,qmax", [(8, 127), (4, 7)])
def test_weights_are_per_channel_symmetric(bits: int, qmax: int) -> None:
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((6, 3, 3, 4)) * rng.uniform(0.01, 2, (6, 1, 1, 1))
    weights[2] = 0.0
    q, params = quantize_weights(weights, axis=0, bits=bits)
    assert q.dtype == np.int8 and params.axis == 0 and set(params.zero_point) == {0}
    assert q.min() >= -qmax and q.max() <= qmax
    for c in (0, 1, 3, 4, 5):  # the largest magnitude of every channel maps to +-qmax
        assert np.abs(q[c]).max() == qmax
        assert params.scale[c] == pytest.approx(np.abs(weights[c]).max() / qmax, rel=1e-6)
    assert np.all(q[2] == 0) and params.scale[2] == 1.0
    error = np.abs(dequantize_weights(q, params) - weights)
    assert np.all(error <= np.asarray(params.scale)[:, None, None, None] / 2 + 1e-9)
    q_dw, params_dw = quantize_weights(weights.transpose(1, 2, 3, 0)[:1], axis=3, bits=bits)
    assert params_dw.axis == 3 and len(params_dw.scale) == 6
    # The searched ("mse") range never does worse than the max rule, channel by channel.
    q_mse, params_mse = quantize_weights(weights, axis=0, bits=bits, clip="mse")
    error_mse = ((dequantize_weights(q_mse, params_mse) - weights) ** 2).sum(axis=(1, 2, 3))
    error_max = ((dequantize_weights(q, params) - weights) ** 2).sum(axis=(1, 2, 3))
    assert np.all(error_mse <= error_max + 1e-12)
    assert np.all(np.asarray(params_mse.scale) <= np.asarray(params.scale) * (1 + 1e-6))
    if bits == 4:
        assert error_mse.sum() < 0.95 * error_max.sum()


@pytest.mark.parametrize("low,high", [(0.0, 6.0), (-1.0, 1.0), (-3.7, 0.2), (0.5, 2.0),
                                      (-0.01, 25.0), (-5.0, -1.0)])
def test_activation_params_represent_zero_exactly(low: float, high: float) -> None:
    q = activation_quant_params(low, high)
    scale, zero_point = q.scale[0], q.zero_point[0]
    assert -128 <= zero_point <= 127
    assert scale == pytest.approx((max(high, 0) - min(low, 0)) / 255, rel=1e-6)
    # real 0 maps to the integer zero point, and the range is covered up to one step
    assert (-128 - zero_point) * scale <= min(low, 0) + scale
    assert (127 - zero_point) * scale >= max(high, 0) - scale
    if low == 0.0:
        assert zero_point == -128


def test_layer_modules_cover_every_computed_activation() -> None:
    spec = SPECS["mobilenet-v2"]()
    graph = quantize_spec_net(random_net(spec), [inputs(spec, 8)])
    names = set(layer_modules(random_net(spec)))
    computed = {op.name for op in graph.ops if op.kind is not OpKind.AVERAGE_POOL_2D}
    assert names == computed


@pytest.mark.parametrize("name", list(SPECS))
def test_int8_graph_tracks_the_float_model(name: str) -> None:
    spec = SPECS[name]()
    model = random_net(spec)
    calibration = inputs(spec, 64, seed=5)
    graph = quantize_spec_net(model, [calibration[:32], calibration[32:]])
    for tensor in graph.tensors.values():
        if tensor.constant:
            assert tensor.data is not None and tensor.quant is not None
    logits, expected = int8_and_float_logits(model, graph, inputs(spec, 16))
    spread = expected.max() - expected.min()
    error = np.abs(logits - expected)
    assert error.max() < 0.03 * spread, (error.max(), spread)
    assert error.mean() < 0.01 * spread, (error.mean(), spread)


def test_graph_follows_tflite_quantisation_rules() -> None:
    spec = SPECS["mobilenet-v2"]()
    graph = quantize_spec_net(random_net(spec), [inputs(spec, 16)])
    producers = graph.producers()
    for op in graph.ops:
        if op.kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED):
            x, w, b = (graph.tensor(n) for n in op.inputs)
            assert w.dtype is DType.INT8 and b.dtype is DType.INT32
            assert w.quant.axis == (3 if op.kind is OpKind.DEPTHWISE_CONV_2D else 0)
            expected_bias_scales = np.float32(x.quant.scale[0]) * np.asarray(w.quant.scale)
            np.testing.assert_allclose(b.quant.scale, expected_bias_scales, rtol=1e-6)
            y = graph.tensor(op.outputs[0])
            if op.attrs.clamp == (0.0, 6.0):  # ReLU6: the range is [0, <=6]
                assert y.quant.zero_point[0] == -128 and y.quant.scale[0] <= 6 / 255 + 1e-9
        if op.kind is OpKind.AVERAGE_POOL_2D:
            assert graph.tensor(op.outputs[0]).quant == graph.tensor(op.inputs[0]).quant
        if op.kind is OpKind.ADD:
            assert graph.tensor(op.outputs[0]).quant != graph.tensor(op.inputs[0]).quant
    assert producers[graph.outputs[0]].kind is OpKind.FULLY_CONNECTED


def test_calibration_ranges_are_observed_values() -> None:
    spec = SPECS["mobilenet-v2"]()
    model = random_net(spec)
    x = inputs(spec, 8)
    ranges = calibrate(model, [x])
    assert calibrate(model, x) == ranges  # one tensor is one batch
    assert ranges["input"] == pytest.approx((float(x.min()), float(x.max())))
    with torch.no_grad():
        logits = model(x)
    last_fc = next(name for name in ranges if name.endswith(".fc"))
    assert ranges[last_fc] == pytest.approx((float(logits.min()), float(logits.max())))
    percentile = calibrate(model, [x], observer="percentile:99")
    assert percentile[last_fc][1] <= ranges[last_fc][1]


def test_int4_weights_halve_weight_flash() -> None:
    spec = SPECS["mobilenet-v2"]()
    model = random_net(spec)
    calibration = [inputs(spec, 16)]
    graph8 = quantize_spec_net(model, calibration)
    graph4 = quantize_spec_net(model, calibration, weight_bits=4)
    convs = [op.inputs[1] for op in graph8.ops
             if op.kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D)]
    assert convs and all(graph4.tensor(n).dtype is DType.INT4 for n in convs)
    for name in convs:
        tensor = graph4.tensor(name)
        assert tensor.data.dtype == np.int8 and np.abs(tensor.data).max() <= 7
        assert tensor.nbytes == (graph8.tensor(name).nbytes + 1) // 2
    # The classifier stays int8 unless asked (TFLite Micro's FULLY_CONNECTED has no int4 filters).
    fc = next(op for op in graph4.ops if op.kind is OpKind.FULLY_CONNECTED)
    assert graph4.tensor(fc.inputs[1]).dtype is DType.INT8
    all_int4 = quantize_spec_net(model, calibration, weight_bits=4, int4_fc=True)
    assert all_int4.tensor(fc.inputs[1]).dtype is DType.INT4
    flash8, flash4 = graph_cost(graph8).flash_bytes, graph_cost(graph4).flash_bytes
    assert 0.5 < flash4 / flash8 < 0.7, (flash4, flash8)


def test_blocks_without_a_qat_export_are_a_clear_error() -> None:
    # PTQ handles MobileNetV3 (tests/test_quant_mobilenet_v3.py); QAT does not yet.
    from mcuforge.errors import UnsupportedOpError
    from mcuforge.quant.qat import prepare_qat
    spec = get_spec("mobilenet-v3-small", resolution=32, width=0.5, num_classes=10)
    with pytest.raises(UnsupportedOpError, match="squeeze-excite|h-swish"):
        prepare_qat(build_torch(spec).eval(), [inputs(spec, 2)])
