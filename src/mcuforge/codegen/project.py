"""`compile_model`: graph -> C project folder with measured figures in report.json.

The project is generated and built in a staging folder beside the destination, under the
destination's lock file (a second writer waits, then refuses), and swapped into place in one rename
only when everything succeeded (`mcuforge.atomic.replace_folder`), so a failure (a model that does
not fit ``sram_bytes``, a compiler error) or a kill at any moment leaves the old project or the new
one, complete; staging folders of killed runs are removed by the next run. For a Cortex-M target the ELF is measured:
section sizes (``arm-none-eabi-size``), the painted-stack high-water mark of one inference under
QEMU, and the exact instruction count of ``mcuforge_invoke`` in unicorn (always on the Cortex-M7
build, the yardstick's core). All byte figures are bytes (1 kB = 1024 B).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..analysis.memory import memory_profile
from ..atomic import (clean_stale_staging, folder_lock, make_staging_folder, replace_folder,
                      write_json_atomic)
from ..errors import DoesNotFitError, McuforgeError
from ..ir import Graph
from ..planner.arena import PlanOptions
from .build import build, section_sizes
from .emit import GeneratedModel, generate, total_weight_bytes, write_project
from .postprocess import PostProcessModule, with_postprocess
from .qemu import run_qemu
from .targets import TARGETS, Target, get_core
from .unicorn_count import count_invoke

MEASURE_SEED = 0
SRAM_FORMULA = ("measured_sram_bytes = arena_bytes (activations + kernel scratch, one static buffer) "
                "+ data_bytes + bss_bytes + stack_high_water_bytes")


def measurement_input(model: GeneratedModel, seed: int = MEASURE_SEED) -> bytes:
    """The deterministic input of the measured inference: uniform random int8 from ``seed``."""
    rng = np.random.default_rng(seed)
    total = sum(model.graph.tensors[n].nbytes for n in model.graph.inputs)
    return rng.integers(-128, 128, size=total, dtype=np.int8).tobytes()


def io_bytes(model: GeneratedModel) -> tuple[int, int]:
    """(input bytes, output bytes) of one inference."""
    graph = model.graph
    return (sum(graph.tensors[n].nbytes for n in graph.inputs),
            sum(graph.tensors[n].nbytes for n in graph.outputs))


def _base_report(model: GeneratedModel, source: str) -> dict:
    plan = model.plan
    graph = model.graph
    return {
        "model": graph.name,
        "source": source,
        "target": model.target.name,
        "schedule": "layer",
        "units": "bytes (1 kB = 1024 B)",
        "arena_bytes": plan.arena_bytes,
        "scratch_bytes": plan.scratch_bytes,
        "scratch_note": "kernel scratch lives inside the arena (in gaps of the activation layout); "
                        "scratch_bytes is the arena growth it caused",
        "scratch_requested_bytes": sum(layer.scratch_bytes for layer in model.layers),
        "peak_activation_bytes": plan.peak_activation_bytes,
        # The MCUNetV2 paper's convention: the network input is read from the caller's buffer.
        "peak_activation_bytes_input_streamed": memory_profile(
            graph, replace(plan.options.conventions, count_network_input=False)).peak_activation_bytes,
        "depthwise_row_buffer": plan.options.conventions.depthwise_row_buffer,
        "gap_bytes": plan.gap_bytes,
        "planner": plan.algorithm,
        "overlaps": sorted(f"{o.kind.value}:{o.output}" for o in plan.overlaps),
        "macs": model.macs,
        "weight_bytes": total_weight_bytes(model),
        "layers": len(model.layers),
        "kernels": list(model.kernels),
        "input_bytes": io_bytes(model)[0],
        "output_bytes": io_bytes(model)[1],
        "float_io": bool(model.edges.float_inputs or model.edges.float_outputs),
        **({"postprocess": {"name": model.postprocess.name, **model.postprocess.report}}
           if model.postprocess is not None else {}),
    }


def _op_class(layer) -> str:
    """depthwise, pointwise_1x1, conv_im2col, fully_connected, or the kernel family (add, pool, ...)."""
    if layer.kernel is None:
        return "copy"
    return {"conv_1x1": "pointwise_1x1", "depthwise": "depthwise"}.get(layer.kernel.template,
                                                                       layer.kernel.template)


def by_op_class(model: GeneratedModel, per_function: dict[str, int]) -> dict:
    """MACs, instructions and MACs/instruction per op class (kernel functions matched by name; a
    kernel's static helpers such as ``<name>_gather`` count for it; memcpy, memset and the invoke
    function itself (input/output copies, reshape copies) count as "other")."""
    class_of = {layer.kernel.name: _op_class(layer) for layer in model.layers if layer.kernel}
    names = sorted(class_of, key=len, reverse=True)
    figures: dict[str, dict] = {}
    for function, count in per_function.items():
        owner = next((n for n in names if function == n or function.startswith(n + "_")), None)
        cls = class_of[owner] if owner else "other"
        figures.setdefault(cls, {"macs": 0, "instructions": 0})["instructions"] += count
    for layer in model.layers:
        cls = _op_class(layer)
        figures.setdefault(cls, {"macs": 0, "instructions": 0})["macs"] += layer.macs
    for entry in figures.values():
        entry["macs_per_instruction"] = (round(entry["macs"] / entry["instructions"], 4)
                                         if entry["instructions"] and entry["macs"] else None)
    return dict(sorted(figures.items()))


def measure_cortex_m(directory: Path, model: GeneratedModel, target: Target) -> dict:
    """Build the Cortex-M ELF(s) in ``directory`` and return the measured figures."""
    elf = build(directory, target.name)
    sizes = section_sizes(elf)
    in_bytes, out_bytes = io_bytes(model)
    sample = measurement_input(model)
    qemu = run_qemu(elf, target, sample, out_bytes, 1)
    m7 = TARGETS["cortex-m7"]
    m7_elf = elf if target.name == m7.name else build(directory, m7.name)
    counted = count_invoke(m7_elf, m7, sample, out_bytes)
    if counted.output != qemu.outputs:
        raise McuforgeError("unicorn and QEMU disagree on the output of the measured inference")
    figures = {
        "flash_bytes": sizes.flash_bytes,
        "text_bytes": sizes.text_bytes,
        "rodata_bytes": sizes.rodata_bytes,
        "data_bytes": sizes.data_bytes,
        "bss_bytes": sizes.bss_bytes,
        "arena_section_bytes": sizes.arena_section_bytes,
        "stack_high_water_bytes": qemu.stack_high_water_bytes,
        "invoke_stack_bytes": counted.stack_bytes,
        "measured_sram_bytes": (model.plan.arena_bytes + sizes.data_bytes + sizes.bss_bytes
                                + qemu.stack_high_water_bytes),
        "sram_formula": SRAM_FORMULA,
        "instructions": counted.instructions,
        "instructions_target": m7.name,
        "macs_per_instruction": round(model.macs / counted.instructions, 4) if counted.instructions else None,
        "by_op_class": by_op_class(model, counted.per_function),
        "measure_input": f"uniform random int8, numpy seed {MEASURE_SEED}",
        "flash_note": "text includes the runner, startup and semihosting code (a few hundred bytes) "
                      "and newlib's memcpy/memset",
    }
    return figures


def compile_model(graph: Graph, out_dir: Path, target_name: str = "cortex-m7",
                  sram_bytes: int | None = None, source: str = "", measure: bool = True,
                  patch=None, plan_options: PlanOptions = PlanOptions(),
                  postprocess: PostProcessModule | None = None,
                  avoid_scratch: bool | None = None) -> dict:
    """Generate, build and measure the C project of ``graph`` into ``out_dir``; returns the report.
    ``plan_options``: the planner's conventions (e.g. ``depthwise_row_buffer``; patch schedules
    keep the channel-plane in-place depthwise kernel). ``postprocess``: a module the runners apply
    to every inference's outputs (e.g. detection decoding, `mcuforge.detect.c_module`); the measured
    Flash and stack then include it. ``avoid_scratch``: True takes kernels without scratch where
    the fast kernels' scratch would grow the arena (arena = analytic peak; those convolutions are
    slower), False keeps the fast kernels everywhere, None (``--kernel-scratch auto``) keeps them
    unless their arena exceeds ``sram_bytes``.

    Raises `DoesNotFitError` (needed vs available bytes) when the arena, or the measured SRAM of the
    Cortex-M build, exceeds ``sram_bytes``; nothing is left at ``out_dir`` then."""
    target = get_core(target_name)
    model = _generate(graph, target, patch, plan_options, bool(avoid_scratch))
    if avoid_scratch is None and sram_bytes is not None and model.plan.arena_bytes > sram_bytes:
        model = _generate(graph, target, patch, plan_options, True)
    if postprocess is not None:
        model = with_postprocess(model, postprocess)
    if sram_bytes is not None and model.plan.arena_bytes > sram_bytes:
        raise DoesNotFitError(f"model {graph.name} (arena)", model.plan.arena_bytes, sram_bytes)
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    with folder_lock(out_dir):
        clean_stale_staging(out_dir)
        check_output_folder(out_dir)  # another writer may have finished while we waited
        return _build_into(model, graph, out_dir, target, sram_bytes, source, measure, patch)


def _generate(graph: Graph, target, patch, plan_options: PlanOptions, avoid_scratch: bool):
    """The generated model, layer-based or under the patch schedule ``patch``."""
    if patch is None:
        return generate(graph, target, plan_options,
                        scratch_free_kernels=None if avoid_scratch else False)
    from .patch_emit import generate_patched  # a `patch.PatchConfig` (codegen/patch_emit.py)
    return generate_patched(graph, target, patch, plan_options, avoid_scratch=avoid_scratch)


def check_output_folder(out_dir: Path) -> None:
    """Refuse, in one line, an output path that cannot become a project folder: a missing or
    read-only parent folder, an existing file, a folder that is not an earlier mcuforge project."""
    parent = out_dir.resolve().parent
    if not parent.is_dir():
        raise McuforgeError(f"{out_dir}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise McuforgeError(f"{out_dir}: cannot write in folder {parent} (permission denied)")
    if out_dir.exists() and not out_dir.is_dir():
        raise McuforgeError(f"{out_dir} exists and is not a folder; not replacing it")
    if out_dir.is_dir() and not (out_dir / "report.json").exists() and any(out_dir.iterdir()):
        raise McuforgeError(f"{out_dir} exists and is not an mcuforge project; not replacing it")


def _build_into(model: GeneratedModel, graph: Graph, out_dir: Path, target: Target,
                sram_bytes: int | None, source: str, measure: bool, patch) -> dict:
    """Write, build and measure the project in a staging folder, then swap it in atomically
    (`mcuforge.atomic.replace_folder`); the staging folder is removed on any error."""
    staging = make_staging_folder(out_dir)
    try:
        write_project(model, staging)
        report = _base_report(model, source)
        if patch is not None:
            from .patch_emit import patch_report_fields
            report.update(patch_report_fields(model))
        if measure and target.is_cortex_m:
            report.update(measure_cortex_m(staging, model, target))
            if sram_bytes is not None and report["measured_sram_bytes"] > sram_bytes:
                raise DoesNotFitError(f"model {graph.name} (measured SRAM)",
                                      report["measured_sram_bytes"], sram_bytes)
        elif measure:
            build(staging, "host")
        report["sram_available_bytes"] = sram_bytes
        write_json_atomic(staging / "report.json", report)  # last: a project with it is complete
        replace_folder(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report
