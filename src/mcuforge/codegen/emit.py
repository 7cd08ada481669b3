"""Turn an int8 graph into a self-contained C project (no interpreter, no heap).

Steps: strip the float edge conversions (`edges`), lower every op to a specialised kernel call (its
op module's `OpDef.lower`, `mcuforge.ops`), ask the arena planner for one static arena with an
offset for every activation tensor and every kernel's scratch (`planner.arena.plan_arena`; the overlaps it selects —
in-place depthwise, pointwise and element-wise overlaps, reshape aliases — switch the kernels to
their overlap-safe variants), then render model.h, model.c (weights as const arrays, one call per
layer with constant offsets, the persistent state of stateful ops as static arrays outside the
arena with ``mcuforge_reset_state``), kernels/*.c (only the specialisations used), the runners,
linker scripts and the Makefile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..analysis.memory import memory_profile
from ..ir import Graph, OpKind
from ..ops import OverlapRule, definitions, find_op_def
from ..patch.schedule import PatchSchedule
from ..planner.arena import ArenaPlan, PlanOptions, plan_arena
from .edges import EdgeConversions, strip_edge_conversions
from .kernels import KernelSpec, render_kernel, render_template
from .layers import Buffer, ConstArray, LayerCall, StateArray, unsupported
from .targets import HOST_SANITIZE_FLAGS, TARGETS, Target, with_optimisation

# The lowering of every op kind that has one (its op module's `OpDef.lower`):
# ``lower(graph, index, op, target, overlapped)``.
_LOWER = {kind: definition.lower for definition in definitions() if definition.has_lowering
          for kind in definition.kinds}
_RUNNER_FILES = ("main_host.c", "main_cortex_m.c", "startup.c", "semihost.c", "semihost.h")
STACK_BYTES = 16 * 1024


@dataclass(frozen=True)
class GeneratedModel:
    """A generated project in memory: its files by relative path and the figures behind them."""

    graph: Graph
    edges: EdgeConversions
    layers: tuple[LayerCall, ...]
    plan: ArenaPlan
    target: Target
    files: Mapping[str, str]
    patch_schedule: PatchSchedule | None = None  # the planned schedule of a patch-based project
    postprocess: Any = None  # a `postprocess.PostProcessModule` the runners apply to every output

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one inference."""
        return sum(layer.macs for layer in self.layers)

    @property
    def state_bytes(self) -> int:
        """Bytes of the ops' persistent state (static arrays of model.c, outside the arena)."""
        return sum(state.nbytes for state in _states(self.layers).values())

    @property
    def kernels(self) -> tuple[str, ...]:
        """Names of the specialised kernels emitted."""
        return tuple(sorted({layer.kernel.name for layer in self.layers if layer.kernel}))


def lowering_of(kind: OpKind):
    """The lowering function of op kind ``kind`` (None when the C has no kernel for it)."""
    return _LOWER.get(kind)


def lower_graph(graph: Graph, target: Target, overlapped_ops: frozenset[str] = frozenset(),
                depthwise_row_ring: bool = False) -> list[LayerCall]:
    """Every op of the int8 graph as a kernel call; ``overlapped_ops`` names the ops whose output the
    plan lays over an input. ``depthwise_row_ring``: the plan's in-place depthwise buffers are rows
    (planner option ``depthwise_row_buffer``), so overlapped depthwise ops take the row-ring kernel."""
    layers = []
    for index, op in enumerate(graph.ops):
        definition = find_op_def(op.kind)
        if definition is None or not definition.has_lowering:
            raise unsupported(graph, index, op, "no C kernel for this op kind")
        overlapped = op.name in overlapped_ops
        layers.append(definition.lower(graph, index, op, target, overlapped,
                                       row_ring=overlapped and depthwise_row_ring))
    return layers


def generate(graph: Graph, target: Target, plan_options: PlanOptions = PlanOptions(),
             model_name: str | None = None, in_place_depthwise_kernel: bool = False,
             scratch_free_kernels: bool | None = False) -> GeneratedModel:
    """Generate the C project of ``graph`` for ``target`` (nothing is written to disk).

    ``in_place_depthwise_kernel``: every depthwise conv the plan puts in place uses the in-place
    kernel (no scratch beyond the channel plane, or the row ring with ``plan_options``'
    ``depthwise_row_buffer``; slower); by default only those whose padded-plane scratch would grow
    the arena do; with ``scratch_free_kernels`` None, so do the other ops whose scratch would grow
    it and that have a kernel without scratch (`OpDef.lower_without_scratch`: the direct
    convolution).
    ``scratch_free_kernels``: None for that choice, False (default) for the kernels with scratch
    everywhere (the fast ones; scratch may grow the arena), True for the kernels without scratch
    wherever an op has one (when the plan is no larger)."""
    edges = strip_edge_conversions(graph)
    int8_graph = edges.graph
    producer = {op.outputs[0]: op.name for op in int8_graph.ops}
    index_of = int8_graph.op_index()
    multi_channel_dw = {op.name for op in int8_graph.ops
                        if find_op_def(op.kind).overlap is OverlapRule.INPLACE_DEPTHWISE
                        and int8_graph.tensors[op.inputs[0]].shape[3] > 1}

    def scratch_of(layers) -> dict[str, int]:
        return {layer.op_name: layer.scratch_bytes for layer in layers if layer.scratch_bytes}

    def lower_for(plan: ArenaPlan, scratchless: frozenset[str]) -> tuple[LayerCall, ...]:
        # The padded-plane depthwise kernel is in-place safe, so an in-place depthwise op takes the
        # in-place kernel (which needs only the plan's H x W channel plane) only when it is
        # scratchless; any other scratchless op takes its kernel without scratch.
        overlapped = frozenset(producer[o.output] for o in plan.overlaps)
        layers = lower_graph(int8_graph, target, overlapped - (multi_channel_dw - scratchless),
                             plan_options.conventions.depthwise_row_buffer)
        in_place_kernel = overlapped & multi_channel_dw  # already without scratch
        return tuple(without_scratch(index, layer, overlapped)
                     if layer.op_name in scratchless - in_place_kernel else layer
                     for index, layer in enumerate(layers))

    def without_scratch(index: int, layer: LayerCall, overlapped: frozenset[str]) -> LayerCall:
        op = int8_graph.ops[index]
        lowered = find_op_def(op.kind).lower_without_scratch(int8_graph, index, op, target,
                                                             op.name in overlapped)
        return layer if lowered is None else lowered  # then `covered` refuses the plan

    def has_scratch_free(name: str, overlapped: set[str]) -> bool:
        index = index_of[name]
        op = int8_graph.ops[index]
        return find_op_def(op.kind).lower_without_scratch(int8_graph, index, op, target,
                                                          name in overlapped) is not None

    def grows(plan: ArenaPlan, name: str, overlapped: set[str]) -> bool:
        # Its scratch ends above the activations or, for the choice without scratch, cannot fit
        # under the analytic peak beside the op's live tensors (wherever the planner put it).
        if name in multi_channel_dw and in_place_depthwise_kernel or scratch_free_kernels:
            return True
        return (plan.scratch[name].end > plan.activation_arena_bytes
                or (scratch_free_kernels is None
                    and live_bytes[name] + scratch[name] > plan.peak_activation_bytes))

    def avoidable(name: str, overlapped: set[str]) -> bool:
        if name in multi_channel_dw and name in overlapped:
            return True  # the in-place depthwise kernel
        return scratch_free_kernels is not False and has_scratch_free(name, overlapped)

    def covered(plan: ArenaPlan, layers) -> bool:
        return all(not layer.scratch_bytes or (layer.op_name in plan.scratch and
                                               plan.scratch[layer.op_name].size >= layer.scratch_bytes)
                   for layer in layers)

    # First plan: every kernel's scratch, fast kernels everywhere. Then, while the scratch of some
    # ops grows the arena (`grows`), plan again with those ops "scratchless" and keep the smaller
    # arena: in-place depthwise ops take the slower in-place kernel, ops with a scratch-free kernel
    # (`OpDef.lower_without_scratch`, overlapped or not) take it, unless scratch_free_kernels is
    # False.
    scratch = scratch_of(lower_graph(int8_graph, target))
    plan = plan_arena(int8_graph, plan_options, scratch_sizes=scratch)
    live_bytes = {entry.op_name: entry.live_bytes
                  for entry in memory_profile(int8_graph, plan_options.conventions).per_op}
    layers = lower_for(plan, frozenset())
    assert covered(plan, layers)
    scratchless: frozenset[str] = frozenset()
    for _ in range(3):
        overlapped = {producer[o.output] for o in plan.overlaps}
        growing = frozenset(name for name in set(plan.scratch) - scratchless
                            if grows(plan, name, overlapped) and avoidable(name, overlapped))
        if not growing:
            break
        trial_scratchless = scratchless | growing
        trial = plan_arena(int8_graph, plan_options, scratch_sizes={
            k: v for k, v in scratch.items() if k not in trial_scratchless})
        trial_layers = lower_for(trial, trial_scratchless)
        smaller = trial.arena_bytes < plan.arena_bytes or (
            (in_place_depthwise_kernel or scratch_free_kernels)
            and trial.arena_bytes == plan.arena_bytes)
        if not (covered(trial, trial_layers) and smaller):
            break
        plan, layers, scratchless = trial, trial_layers, trial_scratchless
    name = model_name or graph.name
    files = render_files(int8_graph, edges, layers, plan, target, name)
    return GeneratedModel(int8_graph, edges, layers, plan, target, files)


def write_project(model: GeneratedModel, directory: Path) -> None:
    """Write the generated files under ``directory`` (created if needed)."""
    for relative, text in model.files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _array_body(values: np.ndarray, per_line: int = 24) -> str:
    flat = np.asarray(values).reshape(-1).tolist()
    lines = [", ".join(str(v) for v in flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    return ",\n".join("    " + line for line in lines)


class _Resolver:
    """Turns symbolic buffers into C expressions with the plan's constant offsets."""

    def __init__(self, plan: ArenaPlan):
        self.plan = plan

    def offset(self, buffer: Buffer) -> int:
        if buffer.kind == "tensor":
            return self.plan.placements[buffer.key].offset
        if buffer.kind == "scratch":
            return self.plan.scratch[buffer.key].offset
        return self.plan.overlap_buffers[buffer.key].offset

    def expression(self, arg) -> str:
        if isinstance(arg, Buffer):
            offset = self.offset(arg)
            if arg.ctype != "int8_t":
                if offset % 4:
                    raise ValueError(f"{arg.kind} buffer of {arg.key} at unaligned offset {offset}")
                return f"({arg.ctype} *)(void *)(A + {offset})"
            return f"A + {offset}"
        if isinstance(arg, (ConstArray, StateArray)):
            return arg.name
        return str(int(arg))


def _statement(layer: LayerCall, resolve: _Resolver) -> str:
    if layer.kernel is None:
        src, dst, nbytes = layer.copy
        src_off, dst_off = resolve.offset(src), resolve.offset(dst)
        if src_off == dst_off:
            return "/* output aliases the input: nothing to do */"
        if layer.copy_rows is not None:
            rows, src_pitch, dst_pitch = layer.copy_rows
            return (f"for (int32_t r = 0; r < {rows}; r++) memmove(A + {dst_off} + r * {dst_pitch}, "
                    f"A + {src_off} + r * {src_pitch}, {nbytes});")
        return f"memmove(A + {dst_off}, A + {src_off}, {nbytes});"
    args = ", ".join(resolve.expression(a) for a in layer.args)
    return f"{layer.kernel.name}({args});"


def _io_copies(graph: Graph, names, plan: ArenaPlan) -> list[dict]:
    copies, position = [], 0
    for name in names:
        nbytes = graph.tensors[name].nbytes
        copies.append({"offset": plan.placements[name].offset, "position": position, "bytes": nbytes})
        position += nbytes
    return copies


def _io_doc(graph: Graph, names) -> list[dict]:
    docs = []
    for name in names:
        t = graph.tensors[name]
        docs.append({"name_comment": name.replace("*/", "* /")[:60], "shape": list(t.shape),
                     "scale": f"{t.quant.scale[0]:.9g}", "zero_point": t.quant.zero_point[0]})
    return docs


def _states(layers) -> dict[str, StateArray]:
    """The state arrays of ``layers`` by name, in order of first use."""
    return {state.name: state for layer in layers for state in layer.states}


def _state_doc(state: StateArray) -> dict:
    """What model.c.j2 needs of one state array: its declaration and its reset."""
    initial = ""
    if state.reset_value:
        initial = " = {\n" + _array_body(np.full(state.length, state.reset_value)) + "\n}"
    if state.ctype == "int8_t" or state.reset_value == 0:
        reset = f"memset({state.name}, {state.reset_value}, sizeof {state.name});"
    else:
        reset = (f"for (int32_t i = 0; i < {state.length}; i++) {{ {state.name}[i] = "
                 f"{state.reset_value}; }}")
    return {"ctype": state.ctype, "name": state.name, "length": state.length,
            "initial": initial, "reset": reset}


def render_files(graph: Graph, edges: EdgeConversions, layers: tuple[LayerCall, ...], plan: ArenaPlan,
                 target: Target, name: str) -> dict[str, str]:
    """The project's files (relative path -> text) for ``layers`` laid out by ``plan``."""
    resolve = _Resolver(plan)
    arrays: dict[str, ConstArray] = {}
    for layer in layers:
        for array in layer.arrays:
            arrays[array.name] = array
    specs: dict[str, KernelSpec] = {}
    for layer in layers:
        if layer.kernel is not None:
            specs[layer.kernel.name] = layer.kernel
    states = list(_states(layers).values())
    input_bytes = sum(graph.tensors[n].nbytes for n in graph.inputs)
    output_bytes = sum(graph.tensors[n].nbytes for n in graph.outputs)
    common = {"model_name": name, "target": target.name}
    files: dict[str, str] = {}
    files["model.h"] = render_template(
        "model.h.j2", **common, input_bytes=input_bytes, output_bytes=output_bytes,
        arena_bytes=plan.arena_bytes, state_bytes=sum(st.nbytes for st in states),
        inputs=_io_doc(graph, graph.inputs),
        outputs=_io_doc(graph, graph.outputs), float_io=bool(edges.float_inputs or edges.float_outputs))
    files["model.c"] = render_template(
        "model.c.j2", **common, macs=sum(layer.macs for layer in layers),
        arena_bytes=plan.arena_bytes, peak_bytes=plan.peak_activation_bytes, algorithm=plan.algorithm,
        arrays=[{"ctype": a.ctype, "name": a.name, "length": int(np.asarray(a.values).size),
                 "body": _array_body(a.values)} for a in arrays.values()],
        states=[_state_doc(state) for state in states],
        input_copies=_io_copies(graph, graph.inputs, plan),
        output_copies=_io_copies(graph, graph.outputs, plan),
        layers=[{"index": i, "kind": layer.kind, "op_name": layer.op_name.replace("*/", "* /"),
                 "note": layer.note, "statement": _statement(layer, resolve)}
                for i, layer in enumerate(layers)])
    files["kernels/mf_common.h"] = render_template("kernels/mf_common.h.j2", dsp=target.dsp)
    files["kernels/mf_gemm.h"] = render_template("kernels/mf_gemm.h.j2")
    files["kernels/mf_kernels.h"] = render_template(
        "kernels/mf_kernels.h.j2", prototypes=[spec.prototype for spec in specs.values()])
    for spec in specs.values():
        files[f"kernels/{spec.name}.c"] = render_kernel(spec)
    files.update(runner_files())
    # Every build of the project at the optimisation the target was generated for.
    arm_targets = [with_optimisation(t, target.optimise) for t in TARGETS.values() if t.is_cortex_m]
    for t in arm_targets:
        files[f"runner/{t.name}.ld"] = render_template(
            "runner/cortex_m.ld.j2", machine=t.qemu_machine, cpu=t.qemu_cpu,
            flash_origin=t.flash_origin, flash_bytes=t.flash_bytes, sram_origin=t.sram_origin,
            sram_bytes=t.sram_bytes, stack_bytes=STACK_BYTES)
    files["Makefile"] = render_template(
        "Makefile.j2", **common, default_target=target.name,
        default_arm=target.name if target.is_cortex_m else "",
        host_cflags=" ".join(with_optimisation(TARGETS["host"], target.optimise).cflags),
        sanitize_cflags=" ".join(HOST_SANITIZE_FLAGS),
        arm_targets=[{"name": t.name, "var": t.name.replace("-", "_").upper(),
                      "cflags": " ".join(t.cflags), "machine": t.qemu_machine, "cpu": t.qemu_cpu}
                     for t in arm_targets])
    return files


def runner_files(postprocess_header: str | None = None) -> dict[str, str]:
    """The runners' files; with ``postprocess_header`` (a post-processing module's header, see
    `postprocess`) the host and Cortex-M runners call its ``mf_postprocess`` after every inference."""
    return {f"runner/{runner}": render_template(f"runner/{runner}",
                                                postprocess_header=postprocess_header)
            for runner in _RUNNER_FILES}


def total_weight_bytes(model: GeneratedModel) -> int:
    """Bytes of the const arrays (weights and requantisation constants)."""
    seen: dict[str, ConstArray] = {}
    for layer in model.layers:
        for array in layer.arrays:
            seen[array.name] = array
    return sum(int(np.asarray(a.values).nbytes) for a in seen.values())


__all__ = ["GeneratedModel", "generate", "lower_graph", "runner_files", "total_weight_bytes",
           "write_project"]
