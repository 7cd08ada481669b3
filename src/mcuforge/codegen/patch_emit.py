"""Generated C for patch schedules: the patch stage unrolled patch by patch, the rest layer by layer.

Supported schedules: row strips (``N x 1`` grids, the whole width in every patch), with halos
recomputed (MCUNetV2) or cached (``+halo-full``: every row computed once, `patch_halo_emit.py`).
A strip's window of an NHWC tensor is a contiguous run of bytes, so every kernel of the layer-based
code generator runs unchanged on it: the first op reads its rows straight from the network input, a
residual ADD reads its rows inside the block input's buffer, and the last op of the stage writes its
tile straight into the split tensor. (Square grids would need kernels with a row pitch, or copies
that the analytic peak does not count.)

Each op of each patch is lowered by the ordinary lowering (`emit._LOWER`) on a one-op graph whose
tensors have that patch's window shapes and whose op has that patch's per-edge padding
(`runtime.patch.cropped_op`); the patch geometry is `planner.patch`'s, the one the reference patch
executor runs, so the C computes exactly what the tested reference schedule computes.

Arena layout (one static buffer; bytes): the stage's patch-local tensors are planned once by the
arena planner on the largest patch (every patch's tensor is at most that large, and the planned
overlaps stay safe for smaller patches: an in-place depthwise output starts at its input; a
pointwise expansion input sits at ``N_max (C_out - C_in)`` in its output, which keeps every write
behind the unread input for any ``N <= N_max``); the row caches follow that region. During the
stage the network input, the split tensor and the patch-local region are live at once; the rest of
the graph is planned together with two placeholders for the input and the local region that live
only before its first op (`_joint_rest_graph`), or, when that is larger, on its own with the two
regions put below or above the split tensor (`_combine`). The analytic patch peak (`planner.patch`,
under the plan's memory options) is reported beside the arena: arena = peak + gap + scratch growth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType

from ..analysis.overlap import _ELEMENTWISE, OverlapKind
from ..analysis.receptive import OpRead, axis_window
from ..errors import UnsupportedOpError
from ..ir import DType, Graph, Op, OpKind, Tensor
from ..planner.arena import ArenaPlan, PlanOptions, TensorPlacement, plan_arena
from ..planner.halo_cache import halo_cache_layout
from ..planner.patch import PatchConfig, PatchGeometry, parse_patch_option, patch_geometry
from ..planner.patch_eval import PatchEvaluator
from ..planner.patch_report import patch_summary
from ..planner.patch_search import choose, pareto_front, search_patches
from ..runtime.patch import cropped_op
from .edges import strip_edge_conversions
from .emit import _LOWER, GeneratedModel, _render  # the layer-based generator's lowering and renderer
from .layers import Buffer, LayerCall
from .patch_halo_emit import RowCaches
from .targets import Target


def check_c_patch_support(graph: Graph, geometry: PatchGeometry) -> None:
    """Raise `UnsupportedOpError` unless the generated C can run ``geometry`` (row strips,
    recomputation, every window the full width of its tensor)."""
    config = geometry.config
    if config.grid[1] != 1:
        raise UnsupportedOpError(
            f"--patch {config.to_string()}: the generated C runs row strips (Nx1@SPLIT, e.g. "
            f"{config.grid[0]}x1@{config.split_block}, optionally +halo-full); the reference "
            "runtime and `mcuforge profile` take any grid")
    (col,) = geometry.cols
    for op in geometry.stage_ops(graph):
        for read in col.reads[op.name]:
            width = graph.tensor(read.tensor).shape[2]
            if read.interval.start != 0 or (read.interval.stop != width
                                            and not _trailing_columns_unused(graph, op, read, width)):
                raise UnsupportedOpError(f"op {op.name} reads columns [{read.interval.start}, "
                                         f"{read.interval.stop}) of {read.tensor} (width {width}); "
                                         "the generated C needs full-width windows")
        if op.kind in _ELEMENTWISE and not _cached_elementwise_aligned(graph, geometry, op):
            raise UnsupportedOpError(
                f"--patch {config.to_string()}: {op.kind.value} {op.name} writes over its input, "
                "but its cached rows sit above the input rows in some strip; the generated C "
                "needs them aligned (try the schedule without +halo-full)")
        for name in op.outputs:
            if name != geometry.stage.split and col.buffers[name].size != graph.tensor(name).shape[2]:
                raise UnsupportedOpError(f"the patch stage keeps columns [{col.buffers[name].start}, "
                                         f"{col.buffers[name].stop}) of {name} (width "
                                         f"{graph.tensor(name).shape[2]}); the generated C needs "
                                         "full-width buffers")


_WINDOWED = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.AVERAGE_POOL_2D, OpKind.MAX_POOL_2D)


def _cached_elementwise_aligned(graph: Graph, geometry: PatchGeometry, op: Op) -> bool:
    """For an element-wise op whose output has a row cache: whether some input it may write over
    starts, in every strip, as many rows into its buffer as the output's fresh rows start into the
    output's buffer (the condition `_check_cached_overlaps` checks on the plan)."""
    out = op.outputs[0]
    if out == geometry.stage.split or geometry.config.halo != "full":
        return True
    entry = halo_cache_layout(graph, geometry).of(out)
    if entry is None or not entry.halo_rows:
        return True
    for name in graph.activation_inputs(op):
        if name == geometry.stage.input:
            continue
        if all(next(r for r in row.reads[op.name] if r.tensor == name).interval.start
               - row.buffers[name].start == row.fresh[out].start - row.buffers[out].start
               for row in geometry.rows):
            return True
    return False


def _trailing_columns_unused(graph: Graph, op: Op, read: OpRead, width: int) -> bool:
    """Whether ``op`` computes the same output columns from the full ``width`` as from the columns
    ``[0, read.stop)`` it needs: a strided window whose last input columns fall between its taps
    (a 1x1 stride-2 convolution of an even width reads columns 0, 2, ..., width - 2). The kernel
    then reads whole rows, so its window stays a contiguous run of bytes."""
    if op.kind not in _WINDOWED:
        return False
    window = axis_window(graph, op, 2)
    pad = read.pad_before + read.pad_after
    needed = read.interval.size
    return (read.pad_after == 0
            and (needed + pad - window.kernel) // window.stride
            == (width + pad - window.kernel) // window.stride)


def _key(op: Op, patch: int, role: str) -> str:
    return f"{op.name}@p{patch}:{role}"


@dataclass(frozen=True)
class _PatchOp:
    """One op of one patch: its lowering graph and op, and where its tensors start in the arena,
    relative to the stage input, to a patch-local tensor or to the split tensor."""

    graph: Graph
    op: Op
    anchors: dict  # local key -> ("input" | "local" | "split", tensor name, byte offset inside it)


def _patch_op(graph: Graph, op: Op, patch: int, row, col, stage) -> _PatchOp:
    tensors: dict[str, Tensor] = {}
    anchors: dict[str, tuple[str, str, int]] = {}
    inputs = []
    row_reads = {r.tensor: r for r in row.reads[op.name]}
    activations = set(graph.activation_inputs(op))
    for k, name in enumerate(op.inputs):
        source = graph.tensor(name)
        if name not in activations:
            tensors[name] = source
            inputs.append(name)
            continue
        read = row_reads[name]
        key = _key(op, patch, f"in{k}")
        width, channels = source.shape[2], source.shape[3]
        element = source.nbytes // source.num_elements
        start = read.interval.start - (0 if name == stage.input else row.buffers[name].start)
        anchors[key] = ("input" if name == stage.input else "local", name,
                        start * width * channels * element)
        tensors[key] = Tensor(key, (1, read.interval.size, width, channels), source.dtype,
                              source.quant)
        inputs.append(key)
    out = graph.tensor(op.outputs[0])
    fresh = row.fresh[out.name]
    out_key = _key(op, patch, "out")
    element = out.nbytes // out.num_elements
    if out.name == stage.split:
        anchors[out_key] = ("split", out.name, fresh.start * out.shape[2] * out.shape[3] * element)
    else:
        cached_rows = fresh.start - row.buffers[out.name].start
        anchors[out_key] = ("local", out.name, cached_rows * out.shape[2] * out.shape[3] * element)
    tensors[out_key] = Tensor(out_key, (1, fresh.size, out.shape[2], out.shape[3]), out.dtype,
                              out.quant)
    local_op = replace(cropped_op(op, row.reads[op.name], col.reads[op.name]),
                       inputs=tuple(inputs), outputs=(out_key,))
    local = Graph(f"{graph.name}:{out_key}", tensors, (local_op,), tuple(k for k in inputs
                                                                        if k in anchors), (out_key,))
    return _PatchOp(local, local_op, anchors)


def _largest_patch_graph(graph: Graph, geometry: PatchGeometry, ops: list[Op]) -> Graph:
    """The stage with every patch-local tensor as large as in any patch; the split tile has no bytes
    here (the last op writes straight into the split tensor, placed with the rest)."""
    stage = geometry.stage
    (col,) = geometry.cols
    tensors: dict[str, Tensor] = {}
    for op in ops:
        for name in op.inputs + op.outputs:
            tensor = graph.tensor(name)
            if tensor.constant:
                tensors[name] = tensor
            elif name == stage.split:
                tensors[name] = Tensor(name, (1, 0, 0, tensor.shape[3]), tensor.dtype, tensor.quant)
            else:
                rows = max(r.buffers[name].size for r in geometry.rows)
                tensors[name] = Tensor(name, (1, rows, col.buffers[name].size, tensor.shape[3]),
                                       tensor.dtype, tensor.quant)
    return Graph(f"{graph.name}:patch", tensors, tuple(ops), (stage.input,), (stage.split,))


def _rest_graph(graph: Graph, geometry: PatchGeometry) -> Graph:
    stage = geometry.stage
    ops = graph.ops[stage.end_index + 1:]
    names = {n for op in ops for n in op.inputs + op.outputs} | set(graph.outputs)
    blocks = [b for b in graph.blocks if all(n in {op.name for op in ops} for n in b.ops)]
    return Graph(f"{graph.name}:rest", {n: graph.tensor(n) for n in names}, tuple(ops),
                 (stage.split,), graph.outputs, tuple(blocks))


_INPUT_REGION, _LOCAL_REGION = "__patch_stage_input__", "__patch_stage_local__"


def _joint_rest_graph(rest: Graph, input_bytes: int, local_bytes: int) -> Graph:
    """The rest with two more graph inputs that no op reads, as large as the network input and the
    patch-local region: they live only before the rest's first op, together with the split tensor,
    so one plan lays out the stage's three regions and the rest's tensors jointly."""
    tensors = dict(rest.tensors)
    for name, size in ((_INPUT_REGION, input_bytes), (_LOCAL_REGION, local_bytes)):
        tensors[name] = Tensor(name, (1, max(size, 1)), DType.INT8)
    return replace(rest, tensors=tensors, inputs=rest.inputs + (_INPUT_REGION, _LOCAL_REGION))


def _align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def _with_caches(local_bytes: int, cache_bytes: int, alignment: int) -> int:
    """Bytes of the patch-local region: the planned largest patch, then the row caches."""
    return _align(local_bytes, alignment) + cache_bytes if cache_bytes else local_bytes


def _combine(input_bytes: int, local_bytes: int, split_offset: int, split_bytes: int,
             rest_bytes: int, alignment: int) -> tuple[int, int, int, int]:
    """(arena bytes, input offset, local region offset, shift of the rest's layout): the network
    input and the patch-local region below or above the split tensor, smallest arena first."""
    a_in, a_local = _align(input_bytes, alignment), _align(local_bytes, alignment)
    best = None
    arrangements = [((), ("input", "local")), ((), ("local", "input")), (("input",), ("local",)),
                    (("local",), ("input",)), (("input", "local"), ()), (("local", "input"), ())]
    for below, above in arrangements:
        sizes = {"input": a_in, "local": a_local}
        need_below = sum(sizes[r] for r in below)
        shift = _align(max(0, need_below - split_offset), alignment)
        split_at = split_offset + shift
        offsets, cursor = {}, 0
        for region in below:
            offsets[region], cursor = cursor, cursor + sizes[region]
        cursor = _align(split_at + split_bytes, alignment)
        for region in above:
            offsets[region], cursor = cursor, cursor + sizes[region]
        raw = {"input": input_bytes, "local": local_bytes}  # only offsets need the alignment
        top = max(rest_bytes + shift, split_at + split_bytes,
                  *(offsets[r] + raw[r] for r in offsets))
        candidate = (top, offsets["input"], offsets["local"], shift)
        if best is None or candidate < best:
            best = candidate
    return best


def _plan_stage(largest: Graph, plan_options: PlanOptions, scratch: dict[str, int]
                ) -> tuple[PlanOptions, ArenaPlan]:
    """Plan the largest patch. When the planner cannot lay the pointwise overlaps out at the
    analytic peak (their rigid groups get too wide on a short chain), plan without them as well and
    keep the smaller arena; the stage's analytic figure then follows the options kept."""
    options = replace(plan_options, count_network_input=False)
    plan = plan_arena(largest, options, scratch)
    if plan.gap_bytes == 0 or not plan_options.overlap_pointwise:
        return plan_options, plan
    plain_options = replace(plan_options, overlap_pointwise=False)
    plain = plan_arena(largest, replace(plain_options, count_network_input=False), scratch)
    if (plain.arena_bytes, plain.gap_bytes) < (plan.arena_bytes, plan.gap_bytes):
        return plain_options, plain
    return plan_options, plan


def _lower(graph: Graph, index: int, op: Op, target: Target, overlapped: bool) -> LayerCall:
    lower = _LOWER.get(op.kind)
    if lower is None:
        raise UnsupportedOpError(f"cannot generate C for {op.kind.value} at operator #{index}")
    return lower(graph, index, op, target, overlapped)


def _overlapped_ops(graph: Graph, plan: ArenaPlan) -> set[str]:
    producer = {op.outputs[0]: op.name for op in graph.ops}
    return {producer[o.output] for o in plan.overlaps}


def _check_cached_overlaps(plan: ArenaPlan, layout, ops: list[Op],
                           patch_ops: list[list[_PatchOp]]) -> None:
    """Refuse overlaps the row caches would break. An element-wise op (the residual ADD) may write
    over an input whose rows are cached too, when in every patch its fresh output rows start where
    the input rows it reads start: each byte is then read before it is written, and the cached rows
    filled in above them afterwards land on input rows no later op reads."""
    producer = {op.outputs[0]: k for k, op in enumerate(ops)}
    for overlap in plan.overlaps:
        entry = layout.of(overlap.output)
        if entry is None or not entry.halo_rows:
            continue
        k = producer[overlap.output]
        aligned = overlap.kind is OverlapKind.ELEMENTWISE and overlap.output_offset == 0
        for per_patch in patch_ops if aligned else ():
            item = per_patch[k]
            reads = [anchor for key, anchor in item.anchors.items()
                     if anchor[0] == "local" and anchor[1] == overlap.input and ":in" in key]
            out = next(anchor for key, anchor in item.anchors.items() if key.endswith(":out"))
            if not reads or any(read[2] != out[2] for read in reads):
                aligned = False
                break
        if not aligned:
            raise UnsupportedOpError(f"{overlap.kind.value} overlap on {overlap.output}, whose rows "
                                     "are cached: not supported by the generated C")


def generate_patched(graph: Graph, target: Target, config: PatchConfig,
                     plan_options: PlanOptions = PlanOptions(),
                     model_name: str | None = None) -> GeneratedModel:
    """The C project of ``graph`` under the patch schedule ``config`` (nothing written to disk).
    In-place depthwise ops keep the channel-plane kernel here (``depthwise_row_buffer`` is ignored:
    patch ops are lowered per patch while the plan is sized on the largest one)."""
    plan_options = replace(plan_options, depthwise_row_buffer=False)
    edges = strip_edge_conversions(graph)
    g = edges.graph
    geometry = patch_geometry(g, config)
    check_c_patch_support(g, geometry)
    stage = geometry.stage
    ops = geometry.stage_ops(g)
    index_of = g.op_index()
    (col,) = geometry.cols
    patch_ops = [[_patch_op(g, op, p, row, col, stage) for op in ops]
                 for p, row in enumerate(geometry.rows)]
    scratch: dict[str, int] = {}
    for per_patch in patch_ops:
        for item in per_patch:
            layer = _lower(item.graph, index_of[item.op.name], item.op, target, False)
            scratch[item.op.name] = max(scratch.get(item.op.name, 0), layer.scratch_bytes)
    largest = _largest_patch_graph(g, geometry, ops)
    stage_scratch = {k: v for k, v in scratch.items() if v}
    if config.halo == "full":  # outputs land below their cached rows: no pointwise overlaps
        stage_options = replace(plan_options, overlap_pointwise=False)
        local_plan = plan_arena(largest, replace(stage_options, count_network_input=False),
                                stage_scratch)
    else:
        stage_options, local_plan = _plan_stage(largest, plan_options, stage_scratch)
    local_overlapped = _overlapped_ops(largest, local_plan)
    layout = halo_cache_layout(g, geometry)
    _check_cached_overlaps(local_plan, layout, ops, patch_ops)
    local_bytes = _with_caches(local_plan.arena_bytes, layout.total_bytes, plan_options.alignment)

    rest = _rest_graph(g, geometry)
    first = [_lower(rest, index_of[op.name], op, target, False) for op in rest.ops]
    rest_plan = plan_arena(rest, plan_options,
                           {layer.op_name: layer.scratch_bytes for layer in first if layer.scratch_bytes})
    rest_overlapped = _overlapped_ops(rest, rest_plan)

    split_bytes = g.tensor(stage.split).nbytes
    input_bytes = g.tensor(stage.input).nbytes
    arena, input_at, local_at, shift = _combine(
        input_bytes, local_bytes, rest_plan.placements[stage.split].offset, split_bytes,
        rest_plan.arena_bytes, plan_options.alignment)
    joint = plan_arena(_joint_rest_graph(rest, input_bytes, local_bytes), plan_options,
                       {layer.op_name: layer.scratch_bytes for layer in first if layer.scratch_bytes})
    if joint.arena_bytes < arena:
        arena, input_at, local_at, shift = (joint.arena_bytes, joint.placements[_INPUT_REGION].offset,
                                            joint.placements[_LOCAL_REGION].offset, 0)
        rest_plan = replace(joint, placements={n: p for n, p in joint.placements.items()
                                               if n not in (_INPUT_REGION, _LOCAL_REGION)})
        rest_overlapped = _overlapped_ops(rest, rest_plan)
    caches = RowCaches(g, layout, local_at + _align(local_plan.arena_bytes, plan_options.alignment))
    split_at = rest_plan.placements[stage.split].offset + shift
    bases = {"input": input_at, "split": split_at}

    placements: dict[str, TensorPlacement] = {
        name: replace(p, offset=p.offset + shift) for name, p in rest_plan.placements.items()}
    placements[stage.input] = TensorPlacement(stage.input, input_at, input_bytes, -1, 0)
    layers: list[LayerCall] = []
    for p, per_patch in enumerate(patch_ops):
        for op, item in zip(ops, per_patch):
            for key, (where, name, offset) in item.anchors.items():
                base = local_at + local_plan.placements[name].offset if where == "local" else bases[where]
                placements[key] = TensorPlacement(key, base + offset, item.graph.tensor(key).nbytes, 0, 0)
            layer = _lower(item.graph, index_of[item.op.name], item.op, target,
                           item.op.name in local_overlapped)
            layers.append(replace(layer, note=f"patch {p + 1}/{len(patch_ops)}"
                                  + (f", {layer.note}" if layer.note else "")))
            name = op.outputs[0]
            if name != stage.split:
                row = geometry.rows[p]
                buffer_at = local_at + local_plan.placements[name].offset
                for k, copy in enumerate(caches.copies(name, row.buffers[name], row.fresh[name],
                                                       buffer_at)):
                    src, dst = f"{name}@p{p}:copy{k}:src", f"{name}@p{p}:copy{k}:dst"
                    placements[src] = TensorPlacement(src, copy.src, copy.nbytes, 0, 0)
                    placements[dst] = TensorPlacement(dst, copy.dst, copy.nbytes, 0, 0)
                    layers.append(LayerCall(f"{item.op.name}.halo", "HALO_COPY", None, (),
                                            copy=(Buffer("tensor", src), Buffer("tensor", dst),
                                                  copy.nbytes),
                                            note=f"patch {p + 1}/{len(patch_ops)}: {copy.what}"))
    for op in rest.ops:
        layers.append(_lower(rest, index_of[op.name], op, target, op.name in rest_overlapped))

    def shifted(mapping, delta):
        return {k: replace(v, offset=v.offset + delta) for k, v in mapping.items()}

    analytic = PatchEvaluator(g, plan_options.memory_options, stage_options.memory_options
                              ).evaluate(config)
    # The activations alone (plans without kernel scratch): arena = peak + gap + scratch growth.
    local_alone = plan_arena(largest, replace(stage_options, count_network_input=False))
    rest_alone = plan_arena(rest, plan_options)
    local_alone_bytes = _with_caches(local_alone.arena_bytes, layout.total_bytes,
                                     plan_options.alignment)
    activation_arena = min(
        _combine(input_bytes, local_alone_bytes, rest_alone.placements[stage.split].offset,
                 split_bytes, rest_alone.arena_bytes, plan_options.alignment)[0],
        plan_arena(_joint_rest_graph(rest, input_bytes, local_alone_bytes), plan_options).arena_bytes)
    peak = analytic.peak_activation_bytes
    plan = ArenaPlan(
        arena_bytes=arena,
        placements=MappingProxyType(placements),
        overlaps=tuple(local_plan.overlaps) + tuple(rest_plan.overlaps),
        scratch=MappingProxyType({**shifted(rest_plan.scratch, shift),
                                  **shifted(local_plan.scratch, local_at)}),
        scratch_bytes=max(0, arena - max(activation_arena, peak)),
        peak_activation_bytes=peak,
        gap_bytes=max(0, activation_arena - peak),
        algorithm=f"patch {config.to_string()}: stage {local_plan.algorithm}; rest {rest_plan.algorithm}",
        overlap_buffers=MappingProxyType({**shifted(rest_plan.overlap_buffers, shift),
                                          **shifted(local_plan.overlap_buffers, local_at)}),
        options=plan_options,
        activation_arena_bytes=activation_arena)
    files = _render(g, edges, tuple(layers), plan, target, model_name or graph.name)
    return GeneratedModel(g, edges, tuple(layers), plan, target, files)


ROW_STRIPS_MAX = 16  # the most row strips `auto` / `min-memory` try for the generated C


def resolve_c_patch(graph: Graph, option: str, sram_bytes: int | None = None,
                    plan_options: PlanOptions = PlanOptions()) -> PatchConfig | None:
    """The schedule ``--patch`` names for the generated C: None for ``none`` (or when ``auto`` keeps
    layer-based execution), an explicit ``Nx1@SPLIT[+halo-full]``, or the row-strip schedule (halos
    recomputed or cached) that ``auto`` / ``min-memory`` picks among those the C supports. Cached
    schedules are evaluated as they are generated: their stage without pointwise overlaps."""
    g = strip_edge_conversions(graph).graph
    parsed = parse_patch_option(option, g)
    if parsed == "none":
        return None
    if isinstance(parsed, PatchConfig):
        check_c_patch_support(g, patch_geometry(g, parsed))
        return parsed
    options = plan_options.memory_options
    search = search_patches(g, options, halo_modes=("none",), grids="rows", max_grid=ROW_STRIPS_MAX)
    cached = search_patches(g, options, halo_modes=("full",), grids="rows",  # as generated:
                            max_grid=ROW_STRIPS_MAX,
                            stage_options=replace(options, overlap_pointwise=False))
    supported = [search.layer_based]
    for candidate in search.candidates + cached.candidates:
        if candidate.plan is None:
            continue
        try:
            check_c_patch_support(g, patch_geometry(g, candidate.plan.config))
        except UnsupportedOpError:
            continue
        supported.append(candidate)
    search = replace(search, candidates=tuple(supported), front=pareto_front(supported))
    picked = choose(search, parsed, sram_bytes)
    return None if picked.plan is None else picked.plan.config


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
