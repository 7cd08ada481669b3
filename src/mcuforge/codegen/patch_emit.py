"""Generated C for patch schedules: the patch stage unrolled patch by patch, the rest layer by layer.

Supported schedules: any grid (``R x C``: row strips, square or uneven grids) with halos recomputed
(MCUNetV2), and row strips with cached halos (``+halo-full``: every row computed once,
`patch_halo_emit.py`; with several columns the cache is refused with a clear error).

Windows and row pitches: a patch window of an NHWC tensor is a sub-rectangle of the buffer holding
it, contiguous only when it spans the buffer's whole width. The kernels take the bytes between two
rows as template constants (`layers.with_row_pitches`; absent = the dense ``W * C`` of the
layer-based code), so every window is read and written where it lies, with no copy: the first op
reads its window straight from the network input (pitch = input width x C), the last op writes its
tile straight into the split tensor (pitch = split width x C), a residual ADD reads its sub-window
of the block input's buffer, and any op whose read is narrower than the buffer it reads (a stride
skipping the last columns, a tensor read by two ops with different halos) reads it in place.
Patch-local outputs are always dense (each patch's buffer holds that patch's rows x columns).

Each op of each patch is lowered by the ordinary lowering (`emit._LOWER`) on a one-op graph whose
tensors have that patch's window shapes and whose op has that patch's per-edge padding
(`runtime.patch.cropped_op`); the patch geometry is `planner.patch`'s, the one the reference patch
executor runs, so the C computes exactly what the tested reference schedule computes.

Overlaps (in-place depthwise, pointwise, element-wise) are planned per patch on that patch's
buffers (`patch_plan.py`) and stay safe with pitched inputs: the overlapping output is dense and
starts at or before the input window, and a window of a larger buffer only moves unread inputs
further up (see `_lower_patch_op`).

Arena layout (one static buffer; bytes): the stage's patch-local tensors are planned once per patch
shape, the row caches follow the largest of those plans; the network input, the split tensor and
that region are live during the stage, and are laid out beside the rest of the graph by
`patch_plan.layout_regions`. The analytic patch peak (`planner.patch`, under the plan's memory
options) is reported beside the arena: arena = peak + gap + scratch growth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType

from ..analysis.overlap import _ELEMENTWISE
from ..analysis.receptive import Interval
from ..errors import UnsupportedOpError
from ..ir import Graph, Op, OpKind, Tensor
from ..planner.arena import ArenaPlan, PlanOptions, TensorPlacement, plan_arena
from ..planner.halo_cache import halo_cache_layout
from ..planner.patch import PatchConfig, PatchGeometry, parse_patch_option, patch_geometry
from ..planner.patch_eval import PatchEvaluator
from ..planner.patch_report import patch_summary
from ..planner.patch_search import Candidate, choose, pareto_front, search_patches
from ..planner.placement import align_up
from ..runtime.patch import cropped_op
from .edges import strip_edge_conversions
from .emit import _LOWER, GeneratedModel, _render  # the layer-based generator's lowering and renderer
from .layers import Buffer, LayerCall, with_row_pitches
from .patch_halo_emit import RowCaches, cached_elementwise_aligned, check_cached_overlaps
from .patch_plan import (empty_buffer, layout_regions, plan_patches, plan_stage, rest_graph,
                         with_caches)
from .targets import Target


def check_c_patch_support(graph: Graph, geometry: PatchGeometry) -> None:
    """Raise `UnsupportedOpError` unless the generated C can run ``geometry``: any grid with
    recomputed halos; row strips (``N x 1``) with cached halos (``+halo-full``), whose buffers span
    the whole width; windows of larger buffers only for ops whose kernels take row pitches."""
    config = geometry.config
    if config.grid[1] != 1 and config.halo != "none":
        raise UnsupportedOpError(
            f"--patch {config.to_string()}: the generated C caches halos in row strips only "
            f"(e.g. {config.grid[0]}x1@{config.split_block}+halo-full); with {config.grid[1]} "
            f"columns it recomputes them ({config.grid[0]}x{config.grid[1]}@{config.split_block}); "
            "the reference runtime and `mcuforge profile` take any schedule")
    for op in geometry.stage_ops(graph):
        if op.kind not in _PITCHED_KINDS and _needs_row_pitch(graph, geometry, op):
            raise UnsupportedOpError(
                f"--patch {config.to_string()}: {op.kind.value} {op.name} reads or writes a window "
                "narrower than its buffer, and its C kernel has no row pitch (try row strips, "
                f"{config.grid[0]}x1@{config.split_block})")
        if config.halo == "none":
            continue
        if op.kind in _ELEMENTWISE and not cached_elementwise_aligned(graph, geometry, op):
            raise UnsupportedOpError(
                f"--patch {config.to_string()}: {op.kind.value} {op.name} writes over its input, "
                "but its cached rows sit above the input rows in some strip; the generated C "
                "needs them aligned (try the schedule without +halo-full)")
        for name in op.outputs:
            width = graph.tensor(name).shape[2]
            if name != geometry.stage.split and any(col.buffers[name].size != width
                                                    for col in geometry.cols):
                raise UnsupportedOpError(f"--patch {config.to_string()}: the patch stage keeps "
                                         f"part of the columns of {name} (width {width}); the "
                                         "generated C caches rows of full-width buffers only")


# Op kinds whose kernels take row pitches (`layers.with_row_pitches`).
_PITCHED_KINDS = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.AVERAGE_POOL_2D,
                  OpKind.MAX_POOL_2D, OpKind.PAD, OpKind.ADD)


def _needs_row_pitch(graph: Graph, geometry: PatchGeometry, op: Op) -> bool:
    """Whether some patch of ``op`` reads fewer columns than the buffer it reads holds (the
    network input's whole width, or a stage tensor's buffer), or writes a tile narrower than the
    split tensor."""
    stage = geometry.stage
    split_width = graph.tensor(stage.split).shape[2]
    for col in geometry.cols:
        if op.outputs[0] == stage.split and col.fresh[stage.split].size != split_width:
            return True
        for read in col.reads[op.name]:
            held = (graph.tensor(read.tensor).shape[2] if read.tensor == stage.input
                    else col.buffers[read.tensor].size)
            if read.interval.size != held:
                return True
    return False


def _key(op: Op, patch: int, role: str) -> str:
    return f"{op.name}@p{patch}:{role}"


@dataclass(frozen=True)
class _PatchOp:
    """One op of one patch: its lowering graph and op, where its tensors start in the arena
    (relative to the stage input, to a patch-local tensor or to the split tensor), and the row
    pitch of each of its windows that is narrower than the buffer holding it."""

    graph: Graph
    op: Op
    anchors: dict  # local key -> ("input" | "local" | "split", tensor name, byte offset inside it)
    pitches: dict  # local key -> bytes between the starts of two rows (absent: dense)

    def span_bytes(self, key: str) -> int:
        """Bytes from the first to the last byte of window ``key`` in its buffer."""
        tensor = self.graph.tensor(key)
        if key not in self.pitches or not tensor.shape[1]:
            return tensor.nbytes
        return (tensor.shape[1] - 1) * self.pitches[key] + tensor.nbytes // tensor.shape[1]


def _window(key: str, tensor: Tensor, rows, cols, buffer_rows, buffer_cols, where: str
            ) -> tuple[Tensor, tuple[str, str, int], int]:
    """The local tensor of a window (``rows`` x ``cols`` of ``tensor``, inside a buffer holding
    ``buffer_rows`` x ``buffer_cols``), its anchor and its row pitch in bytes."""
    pixel = tensor.nbytes // (tensor.shape[1] * tensor.shape[2])
    pitch = buffer_cols.size * pixel
    offset = (rows.start - buffer_rows.start) * pitch + (cols.start - buffer_cols.start) * pixel
    local = Tensor(key, (1, rows.size, cols.size, tensor.shape[3]), tensor.dtype, tensor.quant)
    return local, (where, tensor.name, offset), pitch


def _patch_op(graph: Graph, op: Op, patch: int, row, col, stage) -> _PatchOp:
    """``op`` on the windows of patch ``(row, col)``: it reads the network input in place, its
    stage inputs inside their patch buffers, and writes its fresh region at the top of its buffer
    (below the cached rows) or its tile straight into the split tensor."""
    tensors: dict[str, Tensor] = {}
    anchors: dict[str, tuple[str, str, int]] = {}
    pitches: dict[str, int] = {}
    inputs = []
    reads = iter(zip(row.reads[op.name], col.reads[op.name]))
    for k, name in enumerate(op.inputs):
        source = graph.tensor(name)
        if not graph.is_activation(name):
            tensors[name] = source
            inputs.append(name)
            continue
        r_read, c_read = next(reads)
        key = _key(op, patch, f"in{k}")
        if name == stage.input:
            buffer_rows, buffer_cols = Interval(0, source.shape[1]), Interval(0, source.shape[2])
        else:
            buffer_rows, buffer_cols = row.buffers[name], col.buffers[name]
        tensors[key], anchors[key], pitches[key] = _window(
            key, source, r_read.interval, c_read.interval, buffer_rows, buffer_cols,
            "input" if name == stage.input else "local")
        inputs.append(key)
    out = graph.tensor(op.outputs[0])
    out_key = _key(op, patch, "out")
    if out.name == stage.split:
        buffer_rows, buffer_cols, where = Interval(0, out.shape[1]), Interval(0, out.shape[2]), "split"
    else:
        buffer_rows, buffer_cols, where = row.buffers[out.name], col.buffers[out.name], "local"
    tensors[out_key], anchors[out_key], pitches[out_key] = _window(
        out_key, out, row.fresh[out.name], col.fresh[out.name], buffer_rows, buffer_cols, where)
    local_op = replace(cropped_op(op, row.reads[op.name], col.reads[op.name]),
                       inputs=tuple(inputs), outputs=(out_key,))
    local = Graph(f"{graph.name}:{out_key}", tensors, (local_op,), tuple(k for k in inputs
                                                                        if k in anchors), (out_key,))
    narrower = {key: pitch for key, pitch in pitches.items() if local.tensor(key).nbytes
                and pitch != local.tensor(key).nbytes // local.tensor(key).shape[1]}
    return _PatchOp(local, local_op, anchors, narrower)


def _lower(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    lower = _LOWER.get(op.kind)
    if lower is None:
        raise UnsupportedOpError(f"cannot generate C for {op.kind.value} at operator #{index}")
    return lower(graph, index, op, target, overlapped)


def _lower_patch_op(item: _PatchOp, index: int, target: Target, overlapped: bool) -> LayerCall:
    """The kernel call of one op of one patch, specialised for the row pitches of its windows.
    Overlaps stay safe with pitched inputs: outputs in the stage are dense and start at or before
    the input window they overlap, so a byte is still read before it is written (the kernels that
    overlap read channel planes or pixel groups ahead of their writes, and a window of a larger
    buffer only moves later inputs further up). An in-place depthwise op whose input is such a
    window takes the channel-plane kernel (in place safe too; its scratch is planned)."""
    op = item.op
    if overlapped and op.kind is OpKind.DEPTHWISE_CONV_2D and item.pitches:
        if item.graph.tensor(op.inputs[0]).shape[3] == 1:
            raise UnsupportedOpError(f"in-place depthwise {op.name} (one channel) reads a window "
                                     "narrower than its buffer: not supported by the generated C")
        overlapped = False
    layer = _lower(item.graph, index, op, target, overlapped)
    return with_row_pitches(layer, item.graph, op, item.pitches)


def _overlapped_ops(graph: Graph, plan: ArenaPlan) -> set[str]:
    producer = {op.outputs[0]: op.name for op in graph.ops}
    return {producer[o.output] for o in plan.overlaps}


def generate_patched(graph: Graph, target: Target, config: PatchConfig,
                     plan_options: PlanOptions = PlanOptions(),
                     model_name: str | None = None) -> GeneratedModel:
    """The C project of ``graph`` under the patch schedule ``config`` (nothing written to disk).
    In-place depthwise ops keep the channel-plane kernel here (``depthwise_row_buffer`` is ignored:
    the row ring is not specialised per patch)."""
    plan_options = replace(plan_options, depthwise_row_buffer=False)
    edges = strip_edge_conversions(graph)
    g = edges.graph
    geometry = patch_geometry(g, config)
    check_c_patch_support(g, geometry)
    stage = geometry.stage
    ops = geometry.stage_ops(g)
    index_of = g.op_index()
    grid = [(row, col) for row in geometry.rows for col in geometry.cols]  # raster order
    patch_ops = [[_patch_op(g, op, p, row, col, stage) for op in ops]
                 for p, (row, col) in enumerate(grid)]
    scratch = [{item.op.name: _lower(item.graph, index_of[item.op.name], item.op, target,
                                     False).scratch_bytes for item in per_patch}
               for per_patch in patch_ops]
    stage_plans = plan_stage(g, geometry, ops, grid, scratch, plan_options)
    layout = halo_cache_layout(g, geometry)
    for p, per_patch in enumerate(patch_ops):
        check_cached_overlaps(stage_plans.plans[p], layout, ops, [per_patch])
    local_arena = stage_plans.arena_bytes
    local_bytes = with_caches(local_arena, layout.total_bytes, plan_options.alignment)

    rest = rest_graph(g, geometry)
    first = [_lower(rest, index_of[op.name], op, target, False) for op in rest.ops]
    rest_scratch = {layer.op_name: layer.scratch_bytes for layer in first if layer.scratch_bytes}
    input_bytes = g.tensor(stage.input).nbytes
    regions = layout_regions(rest, stage.split, input_bytes, local_bytes, plan_options, rest_scratch)
    arena, input_at, local_at = regions.arena_bytes, regions.input_offset, regions.local_offset
    rest_plan = regions.rest_plan
    rest_overlapped = _overlapped_ops(rest, rest_plan)
    caches = RowCaches(g, layout, local_at + align_up(local_arena, plan_options.alignment))
    bases = {"input": input_at, "split": rest_plan.placements[stage.split].offset}

    def shifted(mapping, delta, suffix=""):
        return {k + suffix: replace(v, offset=v.offset + delta) for k, v in mapping.items()}

    placements: dict[str, TensorPlacement] = dict(rest_plan.placements)
    placements[stage.input] = TensorPlacement(stage.input, input_at, input_bytes, -1, 0)
    scratch_at = dict(rest_plan.scratch)
    overlap_buffers = dict(rest_plan.overlap_buffers)
    layers: list[LayerCall] = []
    for p, per_patch in enumerate(patch_ops):
        local_plan, suffix = stage_plans.plans[p], f"@p{p}"
        scratch_at.update(shifted(local_plan.scratch, local_at, suffix))
        overlap_buffers.update(shifted(local_plan.overlap_buffers, local_at, suffix))
        overlapped = stage_plans.overlapped_ops(p, ops)
        note = f"patch {p + 1}/{len(patch_ops)}"
        row, col = grid[p]
        for op, item in zip(ops, per_patch):
            if op.outputs[0] != stage.split and empty_buffer(g, op.outputs[0], row, col):
                continue  # nothing of its output is needed by this patch
            for key, (where, name, offset) in item.anchors.items():
                if where != "local":
                    base = bases[where]
                elif empty_buffer(g, name, row, col):
                    base = local_at  # an empty window
                else:
                    base = local_at + local_plan.placements[name].offset
                placements[key] = TensorPlacement(key, base + offset, item.span_bytes(key), 0, 0)
            layer = _lower_patch_op(item, index_of[item.op.name], target, op.name in overlapped)
            layers.append(replace(_per_patch_buffers(layer, suffix),
                                  note=note + (f", {layer.note}" if layer.note else "")))
            name = op.outputs[0]
            if name == stage.split:
                continue
            buffer_at = local_at + local_plan.placements[name].offset
            for k, copy in enumerate(caches.copies(name, row.buffers[name], row.fresh[name],
                                                   buffer_at)):
                src, dst = f"{name}@p{p}:copy{k}:src", f"{name}@p{p}:copy{k}:dst"
                placements[src] = TensorPlacement(src, copy.src, copy.nbytes, 0, 0)
                placements[dst] = TensorPlacement(dst, copy.dst, copy.nbytes, 0, 0)
                layers.append(LayerCall(f"{item.op.name}.halo", "HALO_COPY", None, (),
                                        copy=(Buffer("tensor", src), Buffer("tensor", dst),
                                              copy.nbytes), note=f"{note}: {copy.what}"))
    for op in rest.ops:
        layers.append(_lower(rest, index_of[op.name], op, target, op.name in rest_overlapped))

    stage_options = stage_plans.options
    analytic = PatchEvaluator(g, plan_options.memory_options, stage_options.memory_options
                              ).evaluate(config)
    # The activations alone (plans without kernel scratch): arena = peak + gap + scratch growth.
    local_alone = plan_patches(g, geometry, ops, grid, [{}] * len(grid), stage_options)
    local_alone_bytes = with_caches(local_alone.arena_bytes, layout.total_bytes,
                                    plan_options.alignment)
    activation_arena = layout_regions(rest, stage.split, input_bytes, local_alone_bytes,
                                      plan_options, {}).arena_bytes
    peak = analytic.peak_activation_bytes
    overlaps = {(o.kind, o.input, o.output): o for plan in stage_plans.plans for o in plan.overlaps}
    worst = max(stage_plans.plans, key=lambda plan: plan.arena_bytes)
    plan = ArenaPlan(
        arena_bytes=arena,
        placements=MappingProxyType(placements),
        overlaps=tuple(overlaps.values()) + tuple(rest_plan.overlaps),
        scratch=MappingProxyType(scratch_at),
        scratch_bytes=max(0, arena - max(activation_arena, peak)),
        peak_activation_bytes=peak,
        gap_bytes=max(0, activation_arena - peak),
        algorithm=f"patch {config.to_string()}: stage planned per patch, largest {worst.algorithm}; "
                  f"rest {rest_plan.algorithm}",
        overlap_buffers=MappingProxyType(overlap_buffers),
        options=plan_options,
        activation_arena_bytes=activation_arena)
    files = _render(g, edges, tuple(layers), plan, target, model_name or graph.name)
    return GeneratedModel(g, edges, tuple(layers), plan, target, files)


def _per_patch_buffers(layer: LayerCall, suffix: str) -> LayerCall:
    """``layer`` with its scratch and overlap buffers renamed to this patch's (each patch has its
    own plan, hence its own offsets)."""
    args = tuple(replace(a, key=a.key + suffix) if isinstance(a, Buffer) and a.kind != "tensor"
                 else a for a in layer.args)
    return replace(layer, args=args)


ROW_STRIPS_MAX = 16  # the most row strips `auto` / `min-memory` try for the generated C
SQUARE_GRID_MAX = 8  # the largest square grid (n x n) they try


def resolve_c_patch(graph: Graph, option: str, sram_bytes: int | None = None,
                    plan_options: PlanOptions = PlanOptions()) -> PatchConfig | None:
    """The schedule ``--patch`` names for the generated C: None for ``none`` (or when ``auto`` keeps
    layer-based execution), an explicit ``RxC@SPLIT[+halo-full]``, or the schedule that ``auto`` /
    ``min-memory`` picks among those the C supports: row strips (halos recomputed or cached) and
    square grids (halos recomputed). Cached schedules are evaluated as they are generated: their
    stage without pointwise overlaps. A schedule's peak is taken as at least the arena the planner
    gives the rest of the graph after its split (the greedy planner cannot always lay the rest's
    pointwise overlaps out at their analytic figure; the C needs that arena whatever the stage)."""
    g = strip_edge_conversions(graph).graph
    parsed = parse_patch_option(option, g)
    if parsed == "none":
        return None
    if isinstance(parsed, PatchConfig):
        check_c_patch_support(g, patch_geometry(g, parsed))
        return parsed
    options = plan_options.memory_options
    search = search_patches(g, options, halo_modes=("none",), grids="rows", max_grid=ROW_STRIPS_MAX)
    squares = search_patches(g, options, halo_modes=("none",), grids="square",
                             max_grid=SQUARE_GRID_MAX)
    cached = search_patches(g, options, halo_modes=("full",), grids="rows",  # as generated:
                            max_grid=ROW_STRIPS_MAX,
                            stage_options=replace(options, overlap_pointwise=False))
    supported = [search.layer_based]
    rest_arenas: dict[str, int] = {}
    for candidate in search.candidates + squares.candidates + cached.candidates:
        if candidate.plan is None:
            continue
        try:
            check_c_patch_support(g, patch_geometry(g, candidate.plan.config))
        except UnsupportedOpError:
            continue
        supported.append(_with_rest_arena(g, candidate, plan_options, rest_arenas))
    search = replace(search, candidates=tuple(supported), front=pareto_front(supported))
    picked = choose(search, parsed, sram_bytes)
    return None if picked.plan is None else picked.plan.config


def _with_rest_arena(graph: Graph, candidate: Candidate, plan_options: PlanOptions,
                     rest_arenas: dict[str, int]) -> Candidate:
    """``candidate`` with its peak raised to the planned arena of the rest after its split."""
    split = candidate.plan.config.split_block
    if split not in rest_arenas:
        geometry = patch_geometry(graph, PatchConfig((1, 1), split))
        rest_arenas[split] = plan_arena(rest_graph(graph, geometry), plan_options).arena_bytes
    return replace(candidate, peak_bytes=max(candidate.peak_bytes, rest_arenas[split]))


def patch_report_fields(graph: Graph, model: GeneratedModel, config: PatchConfig) -> dict:
    """The report.json entries of a patch schedule: ``schedule``, both input conventions of the
    analytic peak, the layer-based peak, and the plan's figures (`patch_report.patch_summary`)."""
    g = model.graph
    options = model.plan.options.memory_options
    stage_options = options
    plan = PatchEvaluator(g, options).evaluate(config)
    if plan.peak_activation_bytes != model.plan.peak_activation_bytes:
        stage_options = replace(options, overlap_pointwise=False)  # see `_plan_stage`
        plan = PatchEvaluator(g, options, stage_options).evaluate(config)
    return {
        "schedule": config.to_string(),
        "peak_activation_bytes": plan.peak_activation_bytes,
        "peak_activation_bytes_input_streamed": plan.peak_activation_bytes_input_streamed,
        "layer_peak_activation_bytes": plan.layer_peak_activation_bytes,
        "patch_stage_overlap_pointwise": stage_options.overlap_pointwise,
        "patch": patch_summary(g, plan, options),
    }


__all__ = ["check_c_patch_support", "generate_patched", "patch_report_fields", "resolve_c_patch"]
