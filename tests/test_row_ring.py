"""Row-buffered in-place depthwise: ring sizes (ops/row_ring.py) and the overlap they give."""

from __future__ import annotations

import pytest

from mcuforge.analysis.conventions import MemoryConventions, REFERENCE_CONVENTIONS
from mcuforge.analysis.memory import memory_profile
from mcuforge.analysis.overlap import OverlapKind
from mcuforge.ops.row_ring import row_ring_release, row_ring_rows
from mcuforge.frontends.load import load_graph


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("size", [7, 8, 9, 14, 15, 28, 56, 112, 224])
@pytest.mark.parametrize("pads", ["same", "symmetric", "valid"])
def test_ring_holds_pad_top_over_stride_plus_one_rows(stride, kernel, size, pads):
    """The table of the module comment: ``pad_top // stride + 1`` rows for the usual pads."""
    if pads == "same":
        top, bottom = _same_pads(size, kernel, stride)
    else:
        top = bottom = (kernel - 1) // 2 if pads == "symmetric" else 0
    out = (size + top + bottom - kernel) // stride + 1
    assert row_ring_rows(size, size, out, out, stride, top) == top // stride + 1


@pytest.mark.parametrize("stride,kernel,top,bottom", [(1, 3, 1, 1), (1, 5, 2, 2), (1, 7, 3, 3),
                                                      (2, 3, 0, 1), (2, 3, 1, 1), (2, 5, 2, 2),
                                                      (2, 7, 3, 3), (1, 3, 2, 0), (2, 5, 1, 0)])
@pytest.mark.parametrize("height,width", [(9, 9), (8, 13), (13, 6), (28, 28)])
def test_ring_schedule_never_overwrites_a_row_still_read(stride, kernel, top, bottom, height, width):
    """Simulate one channel: a write-back only covers input pixels no later output row reads, and
    the ring never holds more than `row_ring_rows` pending rows."""
    left = right = (kernel - 1) // 2
    out_h = (height + top + bottom - kernel) // stride + 1
    out_w = (width + left + right - kernel) // stride + 1
    rows = row_ring_rows(height, width, out_h, out_w, stride, top)
    overwritten: set[int] = set()  # flat input pixel positions already holding outputs
    pending: list[int] = []
    flushed = 0
    for step in range(out_h):
        first_row = max(step * stride - top, 0)
        last_row = min(step * stride - top + kernel - 1, height - 1)
        for iy in range(first_row, last_row + 1):
            for ix in range(width):
                assert iy * width + ix not in overwritten
        pending.append(step)
        assert len(pending) <= rows
        while flushed < out_h and row_ring_release(flushed, height, width, out_h, out_w, stride,
                                                   top) <= step:
            overwritten.update(range(flushed * out_w, (flushed + 1) * out_w))
            pending.remove(flushed)
            flushed += 1
    assert flushed == out_h and not pending


def test_mobilenet_v2_in_place_depthwise_needs_rows_not_planes():
    graph = load_graph("mobilenet-v2", 224, 1.0)
    plane = memory_profile(graph, REFERENCE_CONVENTIONS)
    rows = memory_profile(graph, MemoryConventions(overlap_pointwise=False, depthwise_row_buffer=True))
    extras = {}
    for a, b in zip(plane.per_op, rows.per_op):
        if a.overlap is not None and a.overlap.kind is OverlapKind.INPLACE_DEPTHWISE:
            assert b.overlap is not None and b.overlap.extra_bytes < a.overlap.extra_bytes
            extras[a.op_name] = (a.overlap.extra_bytes, b.overlap.extra_bytes)
            assert b.live_bytes == a.live_bytes - a.overlap.extra_bytes + b.overlap.extra_bytes
    # A 28x28 stride-1 3x3 depthwise: a 784 B plane becomes two 28-pixel rows.
    stride1_28 = [op.name for op in graph.ops if op.kind.value == "DEPTHWISE_CONV_2D"
                  and graph.tensor(op.inputs[0]).shape[1] == 28 and op.attrs.stride == (1, 1)]
    assert stride1_28 and all(extras[name] == (784, 56) for name in stride1_28 if name in extras)
    assert rows.peak_activation_bytes <= plane.peak_activation_bytes


def test_profile_prints_the_paper_figure_with_row_buffers(capsys):
    """`mcuforge profile mobilenet-v2 --patch 4x4@b4 --overlap-pointwise --depthwise-row-buffer
    --json`: 4x4 patches reach the MCUNetV2 paper's 172 kB with the input streamed."""
    import json

    from mcuforge.cli import main
    assert main(["profile", "mobilenet-v2", "--patch", "4x4@b4", "--overlap-pointwise",
                 "--depthwise-row-buffer", "--json"]) == 0
    patch = json.loads(capsys.readouterr().out)["patch"]
    assert patch["input_patch"] == [75, 75]
    assert patch["peak_activation_bytes_input_streamed"] == 175808 <= 172 * 1024
    overheads = {mode["halo"]: mode["mac_overhead"] for mode in patch["halo_modes"]}
    assert overheads["none"] == patch["mac_overhead"] > overheads["cols"] > overheads["full"] == 0
    assert all(mode["peak_activation_bytes_input_streamed"] <= 172 * 1024 for mode in patch["halo_modes"])


def test_planner_lays_out_the_row_rings():
    """The arena planner places each in-place depthwise op's ring (``Overlap.extra_bytes``) and
    reaches the analytic peak under the same option."""
    from mcuforge.planner.arena import PlanOptions, plan_arena
    graph = load_graph("mobilenet-v2", 224, 1.0)
    plane = plan_arena(graph, PlanOptions())
    rows = plan_arena(graph, PlanOptions().with_conventions(depthwise_row_buffer=True))
    assert rows.options.conventions.depthwise_row_buffer
    assert rows.arena_bytes == rows.peak_activation_bytes == memory_profile(
        graph, rows.options.conventions).peak_activation_bytes < plane.arena_bytes
    producer = {op.outputs[0]: op for op in graph.ops}
    rings = 0
    for overlap in rows.overlaps:
        if overlap.kind is OverlapKind.INPLACE_DEPTHWISE:
            op = producer[overlap.output]
            x, y = graph.tensor(overlap.input), graph.tensor(overlap.output)
            expected = row_ring_rows(x.shape[1], x.shape[2], y.shape[1], y.shape[2], op.attrs.stride[0],
                                     op.attrs.pads.top) * y.shape[2]
            assert rows.overlap_buffers[op.name].size >= overlap.extra_bytes == expected
            rings += 1
    assert rings
