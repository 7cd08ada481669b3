"""Multi-stage fusion: figures of schedules with several fused stages (and a pooled last stage),
their execution in the reference runtime (bit-exact with layer by layer), and the DP search."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mcuforge.analysis.conventions import REFERENCE_CONVENTIONS
from mcuforge.errors import McuforgeError
from mcuforge.frontends.load import load_graph
from mcuforge.ir import MeanAttrs, OpKind
from mcuforge.patch import PatchConfig, PatchEvaluator
from mcuforge.patch.geometry import patch_stage
from mcuforge.patch.msf_search import search_multistage, square_grids
from mcuforge.patch.multistage import (FusedStage, MultiStageEvaluator, MultiStageSchedule,
                                       evaluate_multistage, global_pool_after)
from mcuforge.patch.search import search_patches
from mcuforge.runtime.multistage import run_multistage
from mcuforge.runtime.reference import Interpreter

from conftest import require_reference_file
from patch_graphs import RandomNet

ARENA = REFERENCE_CONVENTIONS
STREAMED = replace(REFERENCE_CONVENTIONS, count_network_input=False)


def chain_net(seed: int, pool_kind: str = "average"):
    """Stem (stride 2), six inverted residual blocks (two of stride 2), a 1x1 feature mix and the
    global pool (AVERAGE_POOL_2D over the whole map, or MEAN over H and W), blocks b0 .. b8."""
    net = RandomNet(seed, (27, 25), 3)
    net.begin()
    x = net.conv(net.x, 8, 3, 2)
    net.end_block("stem")
    for out_c, kernel, stride in [(8, 3, 1), (8, 5, 1), (12, 3, 2), (12, 7, 1), (16, 3, 2),
                                  (16, 5, 1)]:
        x = net.mbconv(x, out_c, kernel, stride)
    net.begin()
    x = net.conv(x, 24, 1)
    net.end_block()
    if pool_kind == "average":
        return net, net.head(x)
    net.begin()
    y = net.b.op(OpKind.MEAN, [x], MeanAttrs((1, 2), True), name="mean",
                 quant=net._act_q(net.b.tensors[x].quant.scale[0] * 0.7))
    net.end_block("head")
    return net, net.b.finish([y])


SCHEDULES = [
    (FusedStage("b0", "b2", (3, 3)), FusedStage("b3", "b5", (2, 2), "cols"),
     FusedStage("b6", "b7", (2, 2), "full", pooled=True)),
    (FusedStage("b0", "b0", (4, 4), "full"), FusedStage("b2", "b4", (3, 2)),
     FusedStage("b5", "b7", (4, 4), "cols")),
    (FusedStage("b0", "b7", (4, 4), "none", pooled=True),),
    (FusedStage("b1", "b3", (2, 3), "full"), FusedStage("b4", "b7", (3, 3), "none", pooled=True)),
]


@pytest.mark.parametrize("pool_kind", ["average", "mean"])
@pytest.mark.parametrize("stages", SCHEDULES, ids=lambda s: " ".join(x.to_string() for x in s))
def test_multistage_schedules_are_bit_exact(stages, pool_kind):
    net, graph = chain_net(4, pool_kind)
    x = net.random_input()
    reference = Interpreter(graph).invoke([x])
    schedule = MultiStageSchedule(stages)
    existed: set[str] = set()
    out = run_multistage(graph, schedule, [x], trace=existed)
    assert np.array_equal(out[0], reference[0]), schedule.to_string()
    pooled = [s for s in stages if s.pooled]
    if pooled:  # the feature map before the pool never existed in full
        block = next(b for b in graph.blocks if b.name == pooled[0].last_block)
        last = graph.op(block.ops[-1]).outputs[0]
        assert last not in existed


def test_schedules_found_by_the_search_are_bit_exact():
    net, graph = chain_net(7)
    x = net.random_input()
    reference = Interpreter(graph).invoke([x])
    search = search_multistage(graph, STREAMED, max_grid=4, max_stage_blocks=4)
    assert any(len(p.schedule.stages) >= 2 for p in search.front)
    for point in search.front:
        out = run_multistage(graph, point.schedule, [x])
        assert np.array_equal(out[0], reference[0]), point.schedule.to_string()


@pytest.mark.parametrize("conventions", [ARENA, STREAMED], ids=["arena", "streamed"])
def test_one_stage_from_the_input_counts_as_the_single_split(conventions):
    graph = load_graph("mcunet-in3")
    single = PatchEvaluator(graph, ARENA)
    multi = MultiStageEvaluator(graph, conventions)
    for config in [PatchConfig((4, 4), "b4"), PatchConfig((8, 8), "b6", "cols"),
                   PatchConfig((3, 3), "b2", "full")]:
        plan = single.evaluate(config)
        figures = multi.evaluate(MultiStageSchedule((FusedStage("b0", config.split_block,
                                                                config.grid, config.halo),)))
        expected = plan.peak_activation_bytes if conventions.count_network_input else \
            plan.peak_activation_bytes_input_streamed
        assert figures.peak_activation_bytes == expected, config.to_string()
        assert figures.macs == plan.total_macs


def test_search_front_reevaluates_and_beats_the_single_split():
    net, graph = chain_net(5)
    for conventions in (ARENA, STREAMED):
        search = search_multistage(graph, conventions, max_grid=4, max_stage_blocks=9)
        peaks = [p.peak_bytes for p in search.front]
        macs = [p.macs for p in search.front]
        assert peaks == sorted(peaks) and macs == sorted(macs, reverse=True)
        for point in search.front:
            figures = evaluate_multistage(graph, point.schedule, conventions)
            assert (figures.peak_activation_bytes, figures.macs) == (point.peak_bytes, point.macs)
        single = search_patches(graph, REFERENCE_CONVENTIONS, halo_modes=("none", "cols", "full"),
                                max_grid=4, input_streamed=not conventions.count_network_input)
        assert search.front[0].peak_bytes <= single.front[0].peak_bytes
        # a schedule the single split cannot express reaches below it
        assert search.front[0].peak_bytes < single.front[0].peak_bytes or \
            conventions.count_network_input


def test_pooled_stage_accumulates_instead_of_holding_the_map():
    net, graph = chain_net(6)
    evaluator = MultiStageEvaluator(graph, STREAMED)
    held = evaluator.evaluate(MultiStageSchedule((FusedStage("b4", "b7", (2, 2)),)))
    pooled = evaluator.evaluate(MultiStageSchedule((FusedStage("b4", "b7", (2, 2), pooled=True),)))
    assert pooled.stages[0].peak_bytes < held.stages[0].peak_bytes
    assert pooled.macs == held.macs


def test_bad_schedules_name_the_problem():
    net, graph = chain_net(3)
    with pytest.raises(McuforgeError, match="not followed by a global pooling"):
        evaluate_multistage(graph, MultiStageSchedule((FusedStage("b0", "b3", (2, 2),
                                                                  pooled=True),)))
    with pytest.raises(McuforgeError, match="overlap"):
        evaluate_multistage(graph, MultiStageSchedule((FusedStage("b0", "b3", (2, 2)),
                                                       FusedStage("b2", "b5", (2, 2)))))
    with pytest.raises(McuforgeError, match="only"):
        evaluate_multistage(graph, MultiStageSchedule((FusedStage("b0", "b7", (9, 9)),)))
    with pytest.raises(McuforgeError, match="no block"):
        evaluate_multistage(graph, MultiStageSchedule((FusedStage("b0", "b99", (2, 2)),)))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["models/mcunet/mcunet-320kb-1mb_imagenet.tflite",
                                   "models/tflite_micro/person_detect.tflite",
                                   "models/mlperf_tiny/vww_96_int8.tflite"])
def test_reference_models_front_sample_is_bit_exact(model):
    graph = load_graph(str(require_reference_file(model)))
    name, shape, dtype = Interpreter(graph).input_specs()[0]
    x = np.random.default_rng(0).integers(-128, 128, shape).astype(dtype)
    reference = Interpreter(graph).invoke([x])
    search = search_multistage(graph, STREAMED, max_grid=8, max_stage_blocks=6)
    sample = [search.front[0], search.front[len(search.front) // 2], search.front[-1]]
    assert any(len(point.schedule.stages) >= 2 for point in sample)
    for point in sample:
        out = run_multistage(graph, point.schedule, [x])
        assert all(np.array_equal(a, b) for a, b in zip(out, reference)), point.schedule.to_string()


def _every_schedule(graph, blocks, k, max_grid, max_stage_blocks):
    """Every multi-stage schedule of blocks ``k ..`` with the search's candidate stages."""
    if k >= len(blocks):
        yield ()
        return
    yield from _every_schedule(graph, blocks, k + 1, max_grid, max_stage_blocks)
    for j in range(k, min(len(blocks), k + max_stage_blocks)):
        try:
            stage = patch_stage(graph, blocks[j], first_block=blocks[k])
        except McuforgeError:
            continue
        pools = (False, True) if global_pool_after(graph, stage) is not None else (False,)
        for grid in square_grids(graph, stage, max_grid):
            for halo in ("none", "cols", "full"):
                for pool in pools:
                    head = FusedStage(blocks[k], blocks[j], grid, halo, pool)
                    for tail in _every_schedule(graph, blocks, j + 2 if pool else j + 1,
                                                max_grid, max_stage_blocks):
                        yield (head,) + tail


def test_the_search_front_is_the_front_of_every_schedule():
    net = RandomNet(11, (15, 13), 3)
    net.begin()
    x = net.conv(net.x, 8, 3, 2)
    net.end_block("stem")
    x = net.mbconv(x, 8, 3, 1)
    x = net.mbconv(x, 12, 5, 2)
    x = net.mbconv(x, 12, 3, 1)
    graph = net.head(x)
    blocks = [b.name for b in graph.blocks]
    for conventions in (ARENA, STREAMED):
        evaluator = MultiStageEvaluator(graph, conventions)
        points = []
        for stages in _every_schedule(graph, blocks, 0, 3, 3):
            figures = evaluator.evaluate(MultiStageSchedule(stages))
            points.append((figures.peak_activation_bytes, figures.macs))
        assert len(points) > 200
        brute = []
        for peak, macs in sorted(set(points)):
            if not brute or macs < brute[-1][1]:
                brute.append((peak, macs))
        search = search_multistage(graph, conventions, max_grid=3, max_stage_blocks=3)
        assert [(p.peak_bytes, p.macs) for p in search.front] == brute
