"""Quantisation-aware training: the fake-quantised model computes what the exported int8 graph
computes, gradients pass the straight-through estimator to weights and ranges, and the export uses
the learned ranges."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mcuforge.quant.inference import int8_logits, quantize_input
from mcuforge.quant.observers import activation_quant_params
from mcuforge.quant.ptq import quantize_spec_net
from mcuforge.quant.qat import learned_ranges, prepare_qat, round_ste
from test_quant_ptq import SPECS, inputs, random_net


def test_round_ste_rounds_forward_and_passes_gradients() -> None:
    x = torch.tensor([0.4, 1.6, -2.5], requires_grad=True)
    y = round_ste(x)
    assert y.tolist() == torch.round(x.detach()).tolist()
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("name", ["mobilenet-v2", "mobilenet-v1"])
def test_fake_quant_model_simulates_the_int8_graph(name: str) -> None:
    spec = SPECS[name]()
    model = prepare_qat(random_net(spec), [inputs(spec, 64, seed=5)]).eval()
    graph = quantize_spec_net(model)
    assert graph.metadata["quantization"]["observer"] == "qat"
    x = inputs(spec, 16)
    q = int8_logits(graph, quantize_input(graph, x), batch_size=16)
    out_q = graph.tensor(graph.outputs[0]).quant
    logits = (q.astype(np.float64) - out_q.zero_point[0]) * out_q.scale[0]
    with torch.no_grad():
        simulated = model(x).double().numpy()
    steps = np.abs(logits - simulated) / out_q.scale[0]
    # Integer requantisation and float rounding may differ by one step at a tie, nowhere more.
    assert steps.max() <= 1.01, steps.max()
    assert steps.mean() < 0.5, steps.mean()


def test_gradients_reach_weights_and_ranges() -> None:
    spec = SPECS["mobilenet-v2"]()
    model = prepare_qat(random_net(spec), [inputs(spec, 32)]).train()
    x = inputs(spec, 8, seed=9)
    labels = torch.arange(8) % spec.num_classes
    loss = torch.nn.functional.cross_entropy(model(x) * 50, labels)
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    weight_grads = [g for n, g in grads.items() if n.endswith("weight.original")]
    range_grads = [g for n, g in grads.items() if n.startswith("activation_quantizers")]
    assert weight_grads and range_grads
    assert all(float(g.abs().sum()) > 0 for g in weight_grads[:3])
    assert sum(float(g.abs().sum()) > 0 for g in range_grads) > len(range_grads) // 2


def test_export_uses_the_learned_ranges() -> None:
    spec = SPECS["mobilenet-v2"]()
    model = prepare_qat(random_net(spec), [inputs(spec, 32)])
    quantizer = model.activation_quantizers["b1/dw"]
    with torch.no_grad():
        quantizer.high.mul_(0.5)
    graph = quantize_spec_net(model)
    ranges = learned_ranges(model)
    dw_out = graph.op("b1.dw").outputs[0]
    assert graph.tensor(dw_out).quant == activation_quant_params(*ranges["b1.dw"])
    assert learned_ranges(random_net(spec)) is None
    with pytest.raises(ValueError):
        prepare_qat(model, [inputs(spec, 4)])


def test_a_deep_copy_of_a_prepared_model_uses_its_own_ranges() -> None:
    spec = SPECS["mobilenet-v2"]()
    model = prepare_qat(random_net(spec), [inputs(spec, 32)]).eval()
    twin = copy.deepcopy(model)
    x = inputs(spec, 4, seed=3)
    with torch.no_grad():
        before = model(x)
        for quantizer in twin.activation_quantizers.values():
            quantizer.high.mul_(0.25)
        assert torch.equal(model(x), before)
        assert not torch.equal(twin(x), before)
    keys = model.state_dict().keys()
    assert not any("_mcuforge" in key for key in keys)


@pytest.mark.parametrize("bits", [8, 4])
def test_biases_train_on_the_int32_grid_of_the_export(bits: int) -> None:
    spec = SPECS["mobilenet-v2"]()
    net = random_net(spec)
    with torch.no_grad():  # near-zero variance: folding makes these weights (and bias steps) large
        net.blocks[1].dw.bn.running_var[:4] = 1e-6
    model = prepare_qat(net, [inputs(spec, 32)], weight_bits=bits).eval()
    graph = quantize_spec_net(model)
    for op_name, layer in (("b0", model.blocks[0].conv), ("b1.dw", model.blocks[1].dw.conv),
                           ("b3.project", model.blocks[3].project.conv)):
        bias = graph.tensor(graph.op(op_name).inputs[2])
        exported = bias.data.astype(np.float64) * np.asarray(bias.quant.scale)
        simulated = layer.bias.detach().double().numpy()
        step = np.asarray(bias.quant.scale)
        assert np.all(np.abs(simulated - exported) <= 1e-2 * step + 1e-6 * np.abs(exported)), op_name
    assert max(graph.tensor("b1.dw.bias").quant.scale) > 1e-3  # the case that needs it is covered
