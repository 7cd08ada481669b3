"""Generated C for patch schedules: the patch stage unrolled patch by patch, the rest layer by layer.

Supported schedules: any grid (``R x C``: row strips, square or uneven grids) with halos recomputed
(MCUNetV2) or cached (``+halo-cols``: column caches; ``+halo-full``: column and row caches, every
position computed once; `patch_halo_emit.py`).

Windows and row pitches: a patch window of an NHWC tensor is a sub-rectangle of the buffer holding
it, contiguous only when it spans the buffer's whole width. The kernels take the bytes between two
rows as template constants (`layers.with_row_pitches`; absent = the dense ``W * C`` of the
layer-based code), so every window is read and written where it lies, with no copy: the first op
reads its window straight from the network input (pitch = input width x C), the last op writes its
tile straight into the split tensor (pitch = split width x C), a residual ADD reads its sub-window
of the block input's buffer, and any op whose read is narrower than the buffer it reads (a stride
skipping the last columns, a tensor read by two ops with different halos) reads it in place.
Patch-local outputs are always dense (each patch's buffer holds that patch's rows x columns).

Each op of each patch is lowered by the ordinary lowering (`emit.lowering_of`) on a one-op graph
whose tensors have that patch's window shapes and whose op has that patch's per-edge padding
(`runtime.patch.cropped_op`); the patch geometry is `patch.geometry`'s, the one the reference patch
executor runs, so the C computes exactly what the tested reference schedule computes.

Overlaps (in-place depthwise, pointwise, element-wise) are planned per patch on that patch's
buffers (`patch.arena`) and stay safe with pitched inputs: the overlapping output is dense and
starts at or before the input window, and a window of a larger buffer only moves unread inputs
further up (see `_lower_patch_op`).

Arena layout (one static buffer; bytes): `patch.plan_schedule` plans it, and this module only lowers
and renders the `PatchSchedule` it returns: the stage's patch-local tensors are planned once per
patch shape, the row caches follow the largest of those plans; the network input, the split tensor
and that region are live during the stage, and are laid out beside the rest of the graph
(`patch.arena.layout_regions`). The schedule's analytic peak, evaluated under the conventions its
stage is planned with, is reported beside the arena: arena = peak + gap + scratch growth. Where a
patch's kernel scratch (or the rest's) lifts its plan above its peak, those ops take their kernels
without scratch (`patch_scratch.py`) when that gives a smaller arena.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ..analysis.overlap import is_elementwise
from ..errors import UnsupportedOpError
from ..ir import Graph, Op, OpKind
from ..ops import find_op_def
from ..patch.arena import rest_graph
from ..patch.patch_graph import empty_buffer
from ..patch.geometry import PatchConfig, PatchGeometry, patch_geometry
from ..patch.report import patch_summary
from ..patch.resolve import GridFamily, resolve_schedule
from ..patch.schedule import PatchSchedule, plan_schedule
from ..planner.arena import PlanOptions, ScratchPlacement, TensorPlacement
from .edges import strip_edge_conversions
from .emit import GeneratedModel, lowering_of, render_files
from .layers import Buffer, LayerCall, with_row_pitches
from .patch_halo_emit import HaloCaches, cached_elementwise_aligned, check_cached_overlaps
from .patch_scratch import (NoScratchFreeKernel, ScratchFree, growing_scratch, kernel_overlapped,
                            overlapped_ops)
from .patch_windows import PatchOp, patch_op
from .targets import Target


def check_c_patch_support(graph: Graph, geometry: PatchGeometry) -> None:
    """Raise `UnsupportedOpError` unless the generated C can run ``geometry``: any grid, halos
    recomputed or cached (`patch_halo_emit.py`); windows of larger buffers (and fresh regions
    beside cached columns) only for ops whose kernels take row pitches; an element-wise op over
    cached rows only where they are aligned with its input's."""
    config = geometry.config
    for op in geometry.stage_ops(graph):
        if op.kind not in _PITCHED_KINDS and _needs_row_pitch(graph, geometry, op):
            raise UnsupportedOpError(
                f"--patch {config.to_string()}: {op.kind.value} {op.name} reads or writes a window "
                "narrower than its buffer, and its C kernel has no row pitch (try row strips, "
                f"{config.grid[0]}x1@{config.split_block})")
        if config.halo == "none":
            continue
        if is_elementwise(op) and not cached_elementwise_aligned(graph, geometry, op):
            raise UnsupportedOpError(
                f"--patch {config.to_string()}: {op.kind.value} {op.name} writes over its input, "
                "but its cached rows or columns sit beside the input's in some patch; the "
                "generated C needs them aligned (try the schedule without +halo-"
                f"{config.halo})")


# Op kinds whose kernels take row pitches (`layers.with_row_pitches`).
_PITCHED_KINDS = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.AVERAGE_POOL_2D,
                  OpKind.MAX_POOL_2D, OpKind.PAD, OpKind.ADD)


def _needs_row_pitch(graph: Graph, geometry: PatchGeometry, op: Op) -> bool:
    """Whether some patch of ``op`` reads fewer columns than the buffer it reads holds (the
    network input's whole width, or a stage tensor's buffer), writes a tile narrower than the
    split tensor, or writes fresh columns beside cached ones."""
    stage = geometry.stage
    split_width = graph.tensor(stage.split).shape[2]
    out = op.outputs[0]
    for col in geometry.cols:
        if out == stage.split and col.fresh[stage.split].size != split_width:
            return True
        if out != stage.split and col.fresh[out].size not in (0, col.buffers[out].size):
            return True  # its fresh columns sit beside cached ones
        for read in col.reads[op.name]:
            held = (graph.tensor(read.tensor).shape[2] if read.tensor == stage.input
                    else col.buffers[read.tensor].size)
            if read.interval.size != held:
                return True
    return False


def _lower(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    lower = lowering_of(op.kind)
    if lower is None:
        raise UnsupportedOpError(f"cannot generate C for {op.kind.value} at operator #{index}")
    return lower(graph, index, op, target, overlapped)


def _lower_patch_op(item: PatchOp, index: int, target: Target, overlapped: bool,
                    scratch_free: bool = False) -> LayerCall:
    """The kernel call of one op of one patch, specialised for the row pitches of its windows.
    Overlaps stay safe with pitched inputs: outputs in the stage are dense and start at or before
    the input window they overlap, so a byte is still read before it is written (the kernels that
    overlap read channel planes or pixel groups ahead of their writes, and a window of a larger
    buffer only moves later inputs further up). An in-place depthwise op whose input is such a
    window takes the channel-plane kernel (in place safe too; its scratch is planned)."""
    op = item.op
    overlapped = kernel_overlapped(item, overlapped)
    if not scratch_free:
        return with_row_pitches(_lower(item.graph, index, op, target, overlapped), item.graph, op,
                                item.pitches)
    layer = find_op_def(op.kind).lower_without_scratch(item.graph, index, op, target, overlapped)
    if layer is None:
        raise NoScratchFreeKernel(op.name)
    try:
        return with_row_pitches(layer, item.graph, op, item.pitches)
    except UnsupportedOpError:
        raise NoScratchFreeKernel(op.name) from None  # that kernel takes no row pitch


def generate_patched(graph: Graph, target: Target, config: PatchConfig,
                     plan_options: PlanOptions = PlanOptions(),
                     model_name: str | None = None, avoid_scratch: bool = False
                     ) -> GeneratedModel:
    """The C project of ``graph`` under the patch schedule ``config`` (nothing written to disk).
    ``avoid_scratch``: kernels without scratch where scratch lifts a plan above its peak
    (`patch_scratch.py`, slower); by default the fast kernels everywhere.
    In-place depthwise ops keep the channel-plane kernel here (``depthwise_row_buffer`` is ignored:
    the row ring is not specialised per patch). Steps: cut every op of every patch to its windows,
    plan the schedule (`patch.plan_schedule`, with each patch's kernel scratch), lower the stage
    patch by patch at the planned offsets, lower the rest, render."""
    plan_options = plan_options.with_conventions(depthwise_row_buffer=False)
    edges = strip_edge_conversions(graph)
    g = edges.graph
    geometry = patch_geometry(g, config)
    check_c_patch_support(g, geometry)
    ops = geometry.stage_ops(g)
    grid = [(row, col) for row in geometry.rows for col in geometry.cols]  # raster order
    patch_ops = [[patch_op(g, op, p, row, col, geometry.stage) for op in ops]
                 for p, (row, col) in enumerate(grid)]
    free = ScratchFree(frozenset(), frozenset())
    schedule = _plan(g, geometry, ops, patch_ops, target, plan_options, free)
    lowered = _lower_stage(g, schedule, ops, patch_ops, target, free)
    layers = lowered.layers + _lower_rest(g, schedule, target, free)
    trial_free = growing_scratch(g, schedule, ops, patch_ops, target)
    for _ in range(4 if avoid_scratch else 0):
        # Kernels without scratch where a patch's (or the rest's) scratch lifts its plan above
        # its analytic peak; kept when the arena is smaller. An op the new plan lays out so that
        # it has no such kernel (its overlaps changed) keeps its scratch in the next try.
        if not (trial_free.patch_ops or trial_free.rest_ops):
            break
        trial = _plan(g, geometry, ops, patch_ops, target, plan_options, trial_free)
        if trial.regions.arena_bytes >= schedule.regions.arena_bytes:
            break
        try:
            trial_lowered = _lower_stage(g, trial, ops, patch_ops, target, trial_free)
            trial_layers = trial_lowered.layers + _lower_rest(g, trial, target, trial_free)
        except NoScratchFreeKernel as refused:
            trial_free = ScratchFree(
                frozenset(k for k in trial_free.patch_ops if k[1] != refused.name),
                trial_free.rest_ops - {refused.name})
            continue
        schedule, lowered, layers = trial, trial_lowered, trial_layers
        break
    plan = schedule.arena_plan(lowered.placements, lowered.scratch, lowered.overlap_buffers)
    files = render_files(g, edges, tuple(layers), plan, target, model_name or graph.name)
    return GeneratedModel(g, edges, tuple(layers), plan, target, files, schedule)


def _plan(graph: Graph, geometry: PatchGeometry, ops: list[Op], patch_ops: list[list[PatchOp]],
          target: Target, plan_options: PlanOptions, free: ScratchFree) -> PatchSchedule:
    """The schedule planned with every kernel's scratch (per patch and for the rest; none for the
    ops in ``free``), checked for overlaps the row-cache copies would break."""
    index_of = graph.op_index()
    scratch = [{item.op.name: 0 if (p, item.op.name) in free.patch_ops else
                _lower(item.graph, index_of[item.op.name], item.op, target, False).scratch_bytes
                for item in per_patch}
               for p, per_patch in enumerate(patch_ops)]
    rest = rest_graph(graph, geometry)
    first = [_lower(rest, index_of[op.name], op, target, False) for op in rest.ops]
    rest_scratch = {layer.op_name: layer.scratch_bytes for layer in first
                    if layer.scratch_bytes and layer.op_name not in free.rest_ops}
    schedule = plan_schedule(graph, geometry, ops, rest, scratch, rest_scratch, plan_options)
    for p, per_patch in enumerate(patch_ops):
        check_cached_overlaps(schedule.stage_plans.plans[p], schedule.cache, ops, [per_patch])
    return schedule


@dataclass
class _LoweredStage:
    """The stage's kernel calls in execution order and the arena offsets of everything they touch
    (the rest's placements first, then the network input, then every patch's windows)."""

    layers: list[LayerCall]
    placements: dict[str, TensorPlacement]
    scratch: dict[str, ScratchPlacement]
    overlap_buffers: dict[str, ScratchPlacement]


def _shifted(mapping: Mapping[str, ScratchPlacement], delta: int, suffix: str
             ) -> dict[str, ScratchPlacement]:
    return {k + suffix: replace(v, offset=v.offset + delta) for k, v in mapping.items()}


def _lower_stage(graph: Graph, schedule: PatchSchedule, ops: list[Op],
                 patch_ops: list[list[PatchOp]], target: Target, free: ScratchFree
                 ) -> _LoweredStage:
    """Every op of every patch lowered at its planned offsets, with the row-cache copies of cached
    halos after the op that fills a buffer."""
    stage = schedule.geometry.stage
    index_of = graph.op_index()
    rest_plan = schedule.regions.rest_plan
    input_at, local_at = schedule.regions.input_offset, schedule.local_offset
    caches = HaloCaches(graph, schedule.geometry, schedule.cache, schedule.row_cache_offset)
    n_cols = len(schedule.geometry.cols)
    bases = {"input": input_at, "split": rest_plan.placements[stage.split].offset}
    placements: dict[str, TensorPlacement] = dict(rest_plan.placements)
    placements[stage.input] = TensorPlacement(stage.input, input_at,
                                              graph.tensor(stage.input).nbytes, -1, 0)
    lowered = _LoweredStage([], placements, dict(rest_plan.scratch),
                            dict(rest_plan.overlap_buffers))
    for p, per_patch in enumerate(patch_ops):
        local_plan, suffix = schedule.stage_plans.plans[p], f"@p{p}"
        lowered.scratch.update(_shifted(local_plan.scratch, local_at, suffix))
        lowered.overlap_buffers.update(_shifted(local_plan.overlap_buffers, local_at, suffix))
        overlapped = schedule.stage_plans.overlapped_ops(p, ops)
        note = f"patch {p + 1}/{len(patch_ops)}"
        row, col = schedule.grid[p]
        if p % n_cols == 0:
            caches.new_row()
        for op, item in zip(ops, per_patch):
            if op.outputs[0] != stage.split and empty_buffer(graph, op.outputs[0], row, col):
                continue  # nothing of its output is needed by this patch
            for key, (where, name, offset) in item.anchors.items():
                if where != "local":
                    base = bases[where]
                elif empty_buffer(graph, name, row, col):
                    base = local_at  # an empty window
                else:
                    base = local_at + local_plan.placements[name].offset
                placements[key] = TensorPlacement(key, base + offset, item.span_bytes(key), 0, 0)
            layer = _lower_patch_op(item, index_of[item.op.name], target, op.name in overlapped,
                                    (p, op.name) in free.patch_ops)
            lowered.layers.append(replace(_per_patch_buffers(layer, suffix),
                                          note=note + (f", {layer.note}" if layer.note else "")))
            name = op.outputs[0]
            if name == stage.split:
                continue
            buffer_at = local_at + local_plan.placements[name].offset
            for k, copy in enumerate(caches.copies(name, row, col, p % n_cols, buffer_at)):
                src, dst = f"{name}@p{p}:copy{k}:src", f"{name}@p{p}:copy{k}:dst"
                src_span, dst_span = copy.span_bytes
                placements[src] = TensorPlacement(src, copy.src, src_span, 0, 0)
                placements[dst] = TensorPlacement(dst, copy.dst, dst_span, 0, 0)
                contiguous = copy.rows == 1 or copy.src_pitch == copy.dst_pitch == copy.nbytes
                lowered.layers.append(LayerCall(
                    f"{item.op.name}.halo", "HALO_COPY", None, (),
                    copy=(Buffer("tensor", src), Buffer("tensor", dst),
                          copy.nbytes * (copy.rows if contiguous else 1)),
                    note=f"{note}: {copy.what}",
                    copy_rows=None if contiguous else (copy.rows, copy.src_pitch, copy.dst_pitch)))
    return lowered


def _lower_rest(graph: Graph, schedule: PatchSchedule, target: Target, free: ScratchFree
                ) -> list[LayerCall]:
    """The ops after the stage, layer by layer, as the rest's plan lays them out (the ops in
    ``free`` with their kernels without scratch)."""
    index_of = graph.op_index()
    rest = schedule.rest
    overlapped = overlapped_ops(rest, schedule.regions.rest_plan)
    layers = []
    for op in rest.ops:
        if op.name in free.rest_ops:
            layer = find_op_def(op.kind).lower_without_scratch(rest, index_of[op.name], op, target,
                                                               op.name in overlapped)
            if layer is None:
                raise NoScratchFreeKernel(op.name)
        else:
            layer = _lower(rest, index_of[op.name], op, target, op.name in overlapped)
        layers.append(layer)
    return layers


def _per_patch_buffers(layer: LayerCall, suffix: str) -> LayerCall:
    """``layer`` with its scratch and overlap buffers renamed to this patch's (each patch has its
    own plan, hence its own offsets)."""
    args = tuple(replace(a, key=a.key + suffix) if isinstance(a, Buffer) and a.kind != "tensor"
                 else a for a in layer.args)
    return replace(layer, args=args)


ROW_STRIPS_MAX = 16  # the most row strips `auto` / `min-memory` try for the generated C
SQUARE_GRID_MAX = 8  # the largest square grid (n x n) they try
# The schedules the generated C runs, as the one resolver searches them: row strips and square
# grids with recomputed halos, and with cached halos, whose stage is evaluated as it is generated
# (without pointwise overlaps: outputs land below and beside their cached rows and columns).
C_GRID_FAMILIES = (GridFamily("rows", ("none",), ROW_STRIPS_MAX),
                   GridFamily("square", ("none",), SQUARE_GRID_MAX),
                   GridFamily("rows", ("full",), ROW_STRIPS_MAX, stage_overlap_pointwise=False),
                   GridFamily("square", ("cols", "full"), SQUARE_GRID_MAX,
                              stage_overlap_pointwise=False))


def resolve_c_patch(graph: Graph, option: str, sram_bytes: int | None = None,
                    plan_options: PlanOptions = PlanOptions(),
                    max_mac_factor: float | None = None) -> PatchConfig | None:
    """The schedule ``--patch`` names for the generated C (`patch.resolve_schedule` over the
    schedules the C supports, `C_GRID_FAMILIES` and `check_c_patch_support`): None for ``none`` (or
    when ``auto`` keeps layer-based execution), an explicit ``RxC@SPLIT[+halo-full]``, or the one
    ``auto`` / ``min-memory`` picks. A schedule's peak is taken as at least the arena the planner
    gives the rest of the graph after its split; ``max_mac_factor`` (``--max-macs``) limits the
    MACs as `patch.resolve_schedule` does."""
    g = strip_edge_conversions(graph).graph
    plan = resolve_schedule(g, option, plan_options.conventions, sram_bytes,
                            families=C_GRID_FAMILIES, check=check_c_patch_support,
                            rest_floor=plan_options, max_mac_factor=max_mac_factor)
    return None if plan is None else plan.config


def patch_report_fields(model: GeneratedModel) -> dict:
    """The report.json entries of a patch-based project, read from its planned schedule:
    ``schedule``, both input conventions of the analytic peak, the layer-based peak, whether the
    stage kept pointwise overlaps (`patch.arena.plan_stage`), and the figures
    (`patch.report.patch_summary`)."""
    schedule = model.patch_schedule
    figures = schedule.figures
    return {
        "schedule": schedule.config.to_string(),
        "peak_activation_bytes": figures.peak_activation_bytes,
        "peak_activation_bytes_input_streamed": figures.peak_activation_bytes_input_streamed,
        "layer_peak_activation_bytes": figures.layer_peak_activation_bytes,
        "patch_stage_overlap_pointwise": schedule.stage_conventions.overlap_pointwise,
        "patch": patch_summary(model.graph, figures, schedule.plan_options.conventions),
    }


__all__ = ["C_GRID_FAMILIES", "check_c_patch_support", "generate_patched", "patch_report_fields",
           "resolve_c_patch"]
