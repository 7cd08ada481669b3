"""Patch-based execution in the reference runtime is bit-exact with layer-based execution."""

from __future__ import annotations

import numpy as np
import pytest

from mcuforge.analysis.conventions import REFERENCE_CONVENTIONS
from mcuforge.errors import McuforgeError
from mcuforge.frontends.load import load_graph
from mcuforge.ir import OpKind, Pads
from mcuforge.patch import PatchConfig, patch_geometry, split_candidates
from mcuforge.patch.search import search_patches
from mcuforge.runtime.patch import run_patch_based
from mcuforge.runtime.reference import Interpreter

from conftest import require_reference_file
from patch_graphs import RandomNet

HALO_MODES = ("none", "cols", "full")


def mixed_net(seed: int, kernels: tuple[int, int, int], resolution=(23, 21)):
    """Stem (stride 2), a residual block, a stride-2 block, an explicit PAD + VALID conv, a
    max pool with SAME-style asymmetric pads, a residual block, and the head."""
    k1, k2, k3 = kernels
    net = RandomNet(seed, resolution, 3)
    net.begin()
    x = net.conv(net.x, 8, k1, 2)
    net.end_block("stem")
    x = net.mbconv(x, 8, k2, 1)
    x = net.mbconv(x, 12, k3, 2)
    net.begin()
    x = net.pad(x, 1, 2, 0, 1)
    x = net.conv(x, 12, 3, 1, pads=Pads())
    net.end_block()
    net.begin()
    x = net.pool(x, OpKind.MAX_POOL_2D, 2, 1, Pads(0, 1, 0, 1))
    net.end_block()
    x = net.mbconv(x, 12, 3, 1)
    net.begin()
    x = net.conv(x, 12, 3, 2, pads=Pads(0, 1, 0, 1))
    net.end_block()
    return net, net.head(x)


@pytest.mark.parametrize("seed, kernels", [(1, (3, 5, 7)), (2, (7, 1, 3)), (3, (5, 3, 5))])
@pytest.mark.parametrize("halo", HALO_MODES)
def test_random_graphs_bit_exact_on_every_split_and_grid(seed, kernels, halo):
    net, graph = mixed_net(seed, kernels)
    x = net.random_input()
    reference = Interpreter(graph).invoke([x])
    splits = [stage.split_block for stage in split_candidates(graph)]
    assert len(splits) >= 5
    for split in splits:
        stage_shape = graph.tensor(patch_geometry(graph, PatchConfig((1, 1), split)).stage.split).shape
        for grid in [(2, 2), (3, 2), (stage_shape[1], stage_shape[2]), (min(4, stage_shape[1]), 1)]:
            out = run_patch_based(graph, PatchConfig(grid, split, halo), [x])
            assert np.array_equal(out[0], reference[0]), (split, grid, halo)


def test_dilated_and_average_pool_stages_bit_exact():
    net = RandomNet(7, (19, 24), 4)
    net.begin()
    x = net.conv(net.x, 6, 3, 1, dilation=2)
    net.end_block()
    net.begin()
    x = net.pool(x, OpKind.AVERAGE_POOL_2D, 3, 2, Pads(1, 1, 1, 1))
    net.end_block()
    net.begin()
    x = net.conv(x, 6, 5, 1, depthwise=True, dilation=2)
    net.end_block()
    x = net.mbconv(x, 6, 7, 1)
    graph = net.head(x)
    x_in = net.random_input()
    reference = Interpreter(graph).invoke([x_in])
    for halo in HALO_MODES:
        for grid in [(2, 3), (4, 4), (10, 12)]:
            out = run_patch_based(graph, PatchConfig(grid, "b3", halo), [x_in])
            assert np.array_equal(out[0], reference[0]), (grid, halo)


def test_a_wrong_window_would_be_caught():
    """The comparison can fail: shifting the input breaks equality."""
    net, graph = mixed_net(1, (3, 3, 3))
    x = net.random_input()
    reference = Interpreter(graph).invoke([x])
    shifted = np.roll(x, 1, axis=1)
    out = run_patch_based(graph, PatchConfig((2, 2), "b2"), [shifted])
    assert not np.array_equal(out[0], reference[0])


def test_splitting_after_a_global_op_is_refused():
    net, graph = mixed_net(1, (3, 3, 3))
    with pytest.raises(McuforgeError, match="cannot split"):
        run_patch_based(graph, PatchConfig((2, 2), graph.blocks[-1].name), [net.random_input()])


def _input_for(graph):
    name, shape, dtype = Interpreter(graph).input_specs()[0]
    rng = np.random.default_rng(0)
    if dtype == np.float32:
        return rng.uniform(-1, 1, shape).astype(np.float32)
    return rng.integers(-128, 128, shape).astype(dtype)


def _check_front(model: str, limit: int) -> None:
    graph = load_graph(str(require_reference_file(model)))
    x = _input_for(graph)
    reference = Interpreter(graph).invoke([x])
    search = search_patches(graph, REFERENCE_CONVENTIONS, halo_modes=HALO_MODES)
    plans = [c.plan for c in search.front if c.plan is not None][:limit]
    assert plans
    for plan in plans:
        out = run_patch_based(graph, plan.config, [x])
        assert all(np.array_equal(a, b) for a, b in zip(out, reference)), plan.config.to_string()


def test_person_detect_pareto_schedules_bit_exact():
    _check_front("models/tflite_micro/person_detect.tflite", 3)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["models/mlperf_tiny/vww_96_int8.tflite",
                                   "models/tinyengine/vww.tflite",
                                   "models/mcunet/mcunet-320kb-1mb_imagenet.tflite"])
def test_reference_models_pareto_schedules_bit_exact(model):
    _check_front(model, 4)
