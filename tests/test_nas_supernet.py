"""The elastic supernet: shapes of elastic kernel / expansion / depth, weight sharing, the kernel
transformation, and that an extracted subnet computes exactly what the supernet computes."""

from __future__ import annotations

import random

import pytest
import torch

from mcuforge.nas.elastic import DynamicDepthwise, DynamicInvertedResidual, DynamicPointwise
from mcuforge.nas.space import SearchSpace
from mcuforge.nas.supernet import SuperNet

SPACE = SearchSpace(0.2, 32, in_channels=1, num_classes=10)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convs run far faster on one thread than on oversubscribed cores."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_elastic_kernel_shapes_and_transformation():
    layer = DynamicDepthwise(12, (3, 5, 7), 1, "relu6")
    assert set(layer.transforms) == {"7to5", "5to3"}
    for kernel in (3, 5, 7):
        assert layer.active_weight(8, kernel).shape == (8, 1, kernel, kernel)
    # With identity transforms the small kernels are the centre of the big one (weight sharing).
    full = layer.weight[:8]
    assert torch.equal(layer.active_weight(8, 5), full[:, :, 1:6, 1:6])
    assert torch.equal(layer.active_weight(8, 3), full[:, :, 2:5, 2:5])
    # A learnt transform changes the 5x5 (and hence 3x3) kernel but not the 7x7 one.
    with torch.no_grad():
        layer.transforms["7to5"].mul_(2.0)
    assert torch.allclose(layer.active_weight(8, 5), 2 * full[:, :, 1:6, 1:6])
    assert torch.equal(layer.active_weight(8, 7), full)
    layer.active_kernel = 3
    assert layer(torch.randn(2, 8, 9, 9)).shape == (2, 8, 9, 9)


def test_elastic_expansion_slices_shared_weights():
    block = DynamicInvertedResidual(8, 8, 1, (3, 5, 7), (3, 4, 6))
    x = torch.randn(2, 8, 10, 10)
    for expand in (3, 4, 6):
        block.set_active(5, expand)
        assert block.mid_channels == 8 * expand
        assert block.expand.active_weight(8).shape == (8 * expand, 8, 1, 1)
        assert block(x).shape == x.shape
    # The expand-3 weights are the first rows of the expand-6 weights (one tensor, sliced).
    assert block.expand.active_weight(8).data_ptr() == block.expand.weight.data_ptr()
    with pytest.raises(ValueError):
        block.set_active(4, 3)


def test_every_module_rebuilds_from_its_config():
    for module in (DynamicPointwise(4, 12, "relu6"), DynamicDepthwise(12, (3, 5, 7), 2, "relu6"),
                   DynamicInvertedResidual(8, 16, 2, (3, 5, 7), (3, 4, 6))):
        rebuilt = type(module)(**module.config)
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
            {k: v.shape for k, v in module.state_dict().items()}
    net = SuperNet(SPACE)
    assert SearchSpace.from_dict(net.config["space"]) == SPACE


def test_elastic_depth_runs_the_first_blocks():
    net = SuperNet(SPACE)
    net.set_active_subnet(ks=3, e=3, d=[2, 3, 4, 2, 3])
    assert [len([b for b in net.active_blocks() if b in list(stage)]) for stage in net.stages] == [2, 3, 4, 2, 3]
    assert net.get_active_arch().depths == (2, 3, 4, 2, 3)
    spec = net.get_active_spec()
    assert sum(1 for b in spec.blocks if b.kind == "ir") == 1 + 14 + 1
    with pytest.raises(ValueError):
        net.set_active_subnet(d=[1, 2, 2, 2, 2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_extracted_subnet_equals_supernet(seed):
    torch.manual_seed(seed)
    net = SuperNet(SPACE)
    rng = random.Random(seed)
    arch = net.sample_active_subnet(rng)
    x = torch.randn(6, 1, 32, 32)
    net.train()
    with torch.no_grad():
        for _ in range(2):  # move the BN statistics away from their initial values
            net(x)
        # and the transforms away from the identity
        for block in net.active_blocks():
            for matrix in block.dw.transforms.values():
                matrix.add_(0.01 * torch.randn_like(matrix))
    net.eval()
    subnet = net.get_active_subnet().eval()
    assert subnet.spec.to_string() == SPACE.spec_string(arch)
    with torch.no_grad():
        assert torch.allclose(net(x), subnet(x), atol=1e-5, rtol=1e-5)
    # and in training mode (batch statistics) as well
    net.train()
    subnet.train()
    with torch.no_grad():
        assert torch.allclose(net(x), subnet(x), atol=1e-4, rtol=1e-4)


def test_weight_sharing_between_subnets():
    net = SuperNet(SPACE)
    net.set_max_net()
    big = net.get_active_subnet()
    net.set_min_net()
    small = net.get_active_subnet()
    # The smallest subnet's first stage-1 expansion weights are a slice of the largest's.
    big_w = big.blocks[2].expand.conv.weight
    small_w = small.blocks[2].expand.conv.weight
    assert torch.equal(small_w, big_w[: small_w.shape[0]])
    # One gradient step on the smallest subnet changes the shared weight the largest one uses.
    before = net.stages[0][0].expand.weight.detach().clone()
    net(torch.randn(2, 1, 32, 32)).sum().backward()
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    net.set_max_net()
    assert not torch.equal(net.stages[0][0].expand.weight[: small_w.shape[0]], before[: small_w.shape[0]])


def test_supernet_training_resumes_exactly(tmp_path):
    from mcuforge.nas.sandwich import SupernetTrainConfig, train_supernet
    from test_nas_ddp import tiny_dataset

    config = SupernetTrainConfig(epochs=2, batch_size=16, lr=0.05, progress=False, checkpoint_every_steps=None,
                                 train_samples=32, num_random=0)
    torch.manual_seed(0)
    straight = SuperNet(SPACE)
    history = train_supernet(straight, tiny_dataset(), config)
    assert len(history) == 2 and history[0]["steps"] == 2
    torch.manual_seed(0)
    interrupted = SuperNet(SPACE)
    stop_config = SupernetTrainConfig(**{**config.to_dict(), "stop_after_steps": 3})
    train_supernet(interrupted, tiny_dataset(), stop_config, run_dir=tmp_path)
    torch.manual_seed(1)  # a different initialisation: everything must come from the checkpoint
    resumed = SuperNet(SPACE)
    train_supernet(resumed, tiny_dataset(), config, run_dir=tmp_path, resume=True)
    for name, value in straight.state_dict().items():
        assert torch.allclose(value.float(), resumed.state_dict()[name].float(), atol=1e-6), name
    from mcuforge.errors import McuforgeError
    with pytest.raises(McuforgeError, match="exists"):
        train_supernet(SuperNet(SPACE), tiny_dataset(), config, run_dir=tmp_path)


def test_supernet_training_stops_at_its_time_limit_with_a_decayed_learning_rate(tmp_path):
    from mcuforge.nas.sandwich import SupernetTrainConfig, load_supernet, train_supernet
    from test_nas_ddp import tiny_dataset

    config = SupernetTrainConfig(epochs=50, batch_size=16, lr=0.05, progress=False, checkpoint_every_steps=None,
                                 train_samples=32, num_random=0, time_limit_s=0.0)
    torch.manual_seed(0)
    history = train_supernet(SuperNet(SPACE), tiny_dataset(), config, run_dir=tmp_path)
    assert len(history) == 1 and history[0]["steps"] == 1 and history[0]["stopped_by_time_limit"]
    _, state = load_supernet(tmp_path / "supernet.pt")
    assert state["epoch"] == 50 and state["seconds_spent"] > 0
    # the clock was past the limit: the cosine is at its end, not at the first step's value
    assert all(group["lr"] == pytest.approx(0.0, abs=1e-9) for group in state["optimizer"]["param_groups"])
