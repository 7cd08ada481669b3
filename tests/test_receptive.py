"""Patch geometry: windows, per-edge pads, receptive fields, uneven grids, halo positions."""

from __future__ import annotations

import pytest

from mcuforge.analysis.conventions import REFERENCE_CONVENTIONS
from mcuforge.analysis.receptive import (AxisWindow, Interval, axis_geometry, halo_positions,
                                         receptive_field, tile_intervals)
from mcuforge.frontends.load import load_graph
from mcuforge.ir import Pads
from mcuforge.patch import PatchConfig, evaluate_patch, patch_stage

from patch_graphs import RandomNet


def test_window_of_a_stride_two_conv_at_borders_and_inside():
    window = AxisWindow(kernel=3, stride=2, pad_before=1)
    assert window.read(Interval(0, 7), 224) == (Interval(0, 14), 1, 0)
    assert window.read(Interval(7, 14), 224) == (Interval(13, 28), 0, 0)
    assert window.read(Interval(105, 112), 224) == (Interval(209, 224), 0, 0)
    same = AxisWindow(kernel=3, stride=2, pad_before=0)  # TFLite SAME on an even size: (0, 1)
    assert same.read(Interval(105, 112), 224) == (Interval(210, 224), 0, 1)
    assert same.read(Interval(0, 1), 224) == (Interval(0, 3), 0, 0)


def test_window_of_a_dilated_kernel_and_a_pad_op():
    dilated = AxisWindow(kernel=(3 - 1) * 2 + 1, stride=1, pad_before=2)
    assert dilated.read(Interval(0, 4), 10) == (Interval(0, 6), 2, 0)
    assert dilated.read(Interval(8, 10), 10) == (Interval(6, 10), 0, 2)
    pad = AxisWindow(kernel=1, stride=1, pad_before=1)  # PAD (1, 2) of a 5-long axis: 8 long
    assert pad.read(Interval(0, 3), 5) == (Interval(0, 2), 1, 0)
    assert pad.read(Interval(5, 8), 5) == (Interval(4, 5), 0, 2)
    assert pad.read(Interval(7, 8), 5) == (Interval(5, 5), 0, 1)  # only padding
    assert pad.read(Interval(0, 1), 5) == (Interval(0, 0), 1, 0)


@pytest.mark.parametrize("size, parts, sizes", [
    (28, 4, [7, 7, 7, 7]), (10, 3, [4, 3, 3]), (11, 3, [4, 3, 4]), (13, 4, [4, 3, 3, 3]),
    (14, 4, [4, 3, 3, 4]), (7, 1, [7]), (5, 5, [1, 1, 1, 1, 1])])
def test_uneven_grids_put_the_larger_tiles_at_the_borders(size, parts, sizes):
    tiles = tile_intervals(size, parts)
    assert [t.size for t in tiles] == sizes
    assert tiles[0].start == 0 and tiles[-1].stop == size
    assert all(a.stop == b.start for a, b in zip(tiles, tiles[1:]))


def test_more_tiles_than_positions_is_an_error():
    with pytest.raises(ValueError):
        tile_intervals(3, 4)


def test_mobilenet_v2_patch_stage_needs_a_75_pixel_input_patch():
    graph = load_graph("mobilenet-v2", 224, 1.0)
    stage = patch_stage(graph, "b4")
    ops = [graph.op(name) for name in stage.ops]
    assert graph.tensor(stage.split).shape == (1, 28, 28, 32)
    assert receptive_field(graph, ops, stage.split, 1) == (27, 8)
    plan = evaluate_patch(graph, PatchConfig((4, 4), "b4"), REFERENCE_CONVENTIONS)
    assert plan.input_patch == (75, 75)
    rows = axis_geometry(graph, ops, stage.split, 1, tile_intervals(28, 4), cache=False)
    # Tile i starts at 7i * 8 (jump) - 13 (pads 1+2+2+4+4 of the five 3x3 convs, scaled by jump).
    assert [r.buffers[stage.input] for r in rows] == [
        Interval(0, 62), Interval(43, 118), Interval(99, 174), Interval(155, 224)]


def _chain(kernels_strides):
    net = RandomNet(0, 40, 2)
    x = net.x
    for kernel, stride in kernels_strides:
        net.begin()
        x = net.conv(x, 4, kernel, stride)
        net.end_block()
    net.begin()
    x = net.conv(x, 4, 1)
    net.end_block()
    return net.head(x)


def test_halo_cache_keeps_kernel_minus_stride_positions():
    graph = _chain([(5, 1), (3, 2), (7, 1)])
    stage = patch_stage(graph, "b3")
    ops = [graph.op(name) for name in stage.ops]
    tiles = tile_intervals(graph.tensor(stage.split).shape[1], 4)
    cached = axis_geometry(graph, ops, stage.split, 1, tiles, cache=True)
    produced = [op.outputs[0] for op in ops]
    # Tensor read by the 3x3 stride-2 conv keeps 1 position, by the 7x7 one 6, by the 1x1 none.
    assert [halo_positions(cached, name) for name in produced[:3]] == [1, 6, 0]
    # Every position of every tensor is computed exactly once along the axis.
    for op in ops:
        name = op.outputs[0]
        fresh = [p.fresh[name] for p in cached]
        assert all(a.stop == b.start for a, b in zip(fresh, fresh[1:]))
        assert fresh[0].start == 0 and fresh[-1].stop == graph.tensor(name).shape[1]
    recomputed = axis_geometry(graph, ops, stage.split, 1, tiles, cache=False)
    assert sum(p.fresh[produced[0]].size for p in recomputed) > graph.tensor(produced[0]).shape[1]
    assert all(halo_positions(recomputed, name) == 0 for name in produced)


def test_interior_patches_get_zero_pads_border_patches_keep_the_real_padding():
    graph = _chain([(3, 1), (5, 2)])
    stage = patch_stage(graph, "b2")
    ops = [graph.op(name) for name in stage.ops]
    rows = axis_geometry(graph, ops, stage.split, 1, tile_intervals(20, 4), cache=False)
    first_conv = ops[0].name
    pads = [(r.reads[first_conv][0].pad_before, r.reads[first_conv][0].pad_after) for r in rows]
    assert pads[0] == (1, 0) and pads[-1] == (0, 1)
    assert all(p == (0, 0) for p in pads[1:-1])
    assert ops[0].attrs.pads == Pads.symmetric(1)
