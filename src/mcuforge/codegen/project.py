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

import hashlib
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import numpy as np

from ..analysis.latency_energy import board_estimates, estimates_json
from ..analysis.memory import memory_profile
from ..atomic import (clean_stale_staging, folder_lock, make_staging_folder, replace_folder,
                      write_json_atomic)
from ..errors import DoesNotFitError, McuforgeError
from ..ir import Graph
from ..planner.arena import PlanOptions
from ..targets import Board
from .build import build, section_sizes, symbol_bytes
from .elf import read_elf
from .emit import GeneratedModel, generate, total_weight_bytes, write_project
from .listen import (FRONTEND_SYMBOL_PREFIXES, FrontendSources, add_frontend, count_listen,
                     listen_frames, pcm_wav_bytes, run_qemu_listen)
from .postprocess import PostProcessModule, with_postprocess
from .qemu import run_qemu
from .targets import TARGETS, Target, get_core, with_optimisation
from .unicorn_count import count_invoke

MEASURE_SEED = 0


SRAM_FORMULA = ("measured_sram_bytes = arena_bytes (activations + kernel scratch, one static buffer) "
                "+ data_bytes + bss_bytes (they hold state_bytes, the ops' persistent state) "
                "+ stack_high_water_bytes")


def measurement_input(model: GeneratedModel, seed: int = MEASURE_SEED) -> bytes:
    """The deterministic input of the measured inference: uniform random int8 from ``seed``."""
    return measurement_bytes(model.graph, seed)


def measurement_bytes(graph: Graph, seed: int = MEASURE_SEED) -> bytes:
    """`measurement_input` for the int8 graph ``graph`` (its inputs one after the other)."""
    rng = np.random.default_rng(seed)
    total = sum(graph.tensors[n].nbytes for n in graph.inputs)
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
        "optimise": model.target.optimise,
        "schedule": "layer",
        "units": "bytes (1 kB = 1024 B)",
        "arena_bytes": plan.arena_bytes,
        "scratch_bytes": plan.scratch_bytes,
        "scratch_note": "kernel scratch lives inside the arena (in gaps of the activation layout); "
                        "scratch_bytes is the arena growth it caused",
        "scratch_requested_bytes": sum(layer.scratch_bytes for layer in model.layers),
        "state_bytes": model.state_bytes,
        "state_note": "the persistent state of stateful ops (an LSTM's hidden and cell state): "
                      "static arrays outside the arena, kept across invocations",
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


def _kernel_owner(function: str, names: list[str]) -> str | None:
    """The kernel a function belongs to: its own name, or a static helper ``<kernel>_...``
    (``names`` longest first, so that ``conv_1`` does not claim ``conv_10``'s helpers)."""
    return next((n for n in names if function == n or function.startswith(n + "_")), None)


def by_op_class(model: GeneratedModel, per_function: dict[str, int],
                function_bytes: dict[str, int] | None = None) -> dict:
    """MACs, instructions and MACs/instruction per op class (kernel functions matched by name; a
    kernel's static helpers such as ``<name>_gather`` count for it; memcpy, memset and the invoke
    function itself (input/output copies, reshape copies) count as "other"); with
    ``function_bytes`` (function name -> code bytes, from the ELF) also the code bytes of each
    class's kernels."""
    class_of = {layer.kernel.name: _op_class(layer) for layer in model.layers if layer.kernel}
    names = sorted(class_of, key=len, reverse=True)
    figures: dict[str, dict] = {}
    for function, count in per_function.items():
        owner = _kernel_owner(function, names)
        cls = class_of[owner] if owner else "other"
        figures.setdefault(cls, {"macs": 0, "instructions": 0})["instructions"] += count
    for layer in model.layers:
        cls = _op_class(layer)
        figures.setdefault(cls, {"macs": 0, "instructions": 0})["macs"] += layer.macs
    if function_bytes is not None:
        for cls, size in code_bytes_per_kernel(model, function_bytes, by_class=True).items():
            figures.setdefault(cls, {"macs": 0, "instructions": 0})["code_bytes"] = size
    for entry in figures.values():
        entry["macs_per_instruction"] = (round(entry["macs"] / entry["instructions"], 4)
                                         if entry["instructions"] and entry["macs"] else None)
    return dict(sorted(figures.items()))


def code_bytes_per_kernel(model: GeneratedModel, function_bytes: dict[str, int],
                          by_class: bool = False) -> dict[str, int]:
    """Code bytes of each generated kernel (its function and its static helpers, from the ELF
    symbol table ``function_bytes``: name -> size), or summed per op class with ``by_class``."""
    class_of = {layer.kernel.name: _op_class(layer) for layer in model.layers if layer.kernel}
    names = sorted(class_of, key=len, reverse=True)
    sizes: dict[str, int] = {}
    for function, size in function_bytes.items():
        owner = _kernel_owner(function, names)
        if owner is not None:
            key = class_of[owner] if by_class else owner
            sizes[key] = sizes.get(key, 0) + size
    return dict(sorted(sizes.items()))


def measure_cortex_m(directory: Path, model: GeneratedModel, target: Target,
                     count_instructions: bool = True) -> dict:
    """Build the Cortex-M ELF(s) in ``directory`` and return the measured figures; without
    ``count_instructions`` only what QEMU and the ELF give (sizes, stack, SRAM), not unicorn's count
    (minutes for a model of a billion instructions)."""
    elf = build(directory, target.name)
    sizes = section_sizes(elf)
    in_bytes, out_bytes = io_bytes(model)
    sample = measurement_input(model)
    qemu = run_qemu(elf, target, sample, out_bytes, 1)
    function_bytes = {name: size for _start, size, name in read_elf(elf).functions}
    figures = {
        "flash_bytes": sizes.flash_bytes,
        "text_bytes": sizes.text_bytes,
        "rodata_bytes": sizes.rodata_bytes,
        "data_bytes": sizes.data_bytes,
        "bss_bytes": sizes.bss_bytes,
        "arena_section_bytes": sizes.arena_section_bytes,
        "stack_high_water_bytes": qemu.stack_high_water_bytes,
        "measured_sram_bytes": (model.plan.arena_bytes + sizes.data_bytes + sizes.bss_bytes
                                + qemu.stack_high_water_bytes),
        "sram_formula": SRAM_FORMULA,
        "code_bytes_per_kernel": code_bytes_per_kernel(model, function_bytes),
        "code_bytes_note": f"function sizes from the {target.name} ELF's symbol table; a kernel counts "
                           "its static helpers; code shared by kernels (mf_* helpers that are not "
                           "inlined, memcpy/memset) is not in any kernel",
        "measure_input": f"uniform random int8, numpy seed {MEASURE_SEED}",
        "flash_note": "text includes the runner, startup and semihosting code (a few hundred bytes) "
                      "and newlib's memcpy/memset",
    }
    if not count_instructions:
        return figures
    m7 = with_optimisation(TARGETS["cortex-m7"], target.optimise)
    m7_elf = elf if target.name == m7.name else build(directory, m7.name)
    counted = count_invoke(m7_elf, m7, sample, out_bytes)
    if counted.output != qemu.outputs:
        raise McuforgeError("unicorn and QEMU disagree on the output of the measured inference")
    figures.update({
        "invoke_stack_bytes": counted.stack_bytes,
        "instructions": counted.instructions,
        "instructions_target": m7.name,
        "macs_per_instruction": round(model.macs / counted.instructions, 4) if counted.instructions else None,
        "by_op_class": by_op_class(model, counted.per_function, function_bytes),
        "measured_output_sha256": hashlib.sha256(counted.output).hexdigest(),
    })
    return figures


def count_instructions(graph: Graph, core: str = "cortex-m7") -> int:
    """Instructions of one ``mcuforge_invoke`` of the generated C of the int8 ``graph`` on ``core``
    (built in a temporary folder, run once in unicorn on `measurement_input`)."""
    target = get_core(core)
    model = generate(graph, target)
    with tempfile.TemporaryDirectory(prefix="mcuforge-count-") as folder:
        write_project(model, Path(folder))
        elf = build(Path(folder), target.name)
        return count_invoke(elf, target, measurement_input(model), io_bytes(model)[1]).instructions


def inference_report(instructions: int | None, board: Board | None, cycles: int | None) -> dict | None:
    """report.json's ``inference`` entry: latency and energy per inference on ``board`` (or on
    every board when none is named), from the counted ``instructions`` or the measured ``cycles``
    (`mcuforge.analysis.latency_energy`); None when there is neither."""
    if instructions is None and cycles is None:
        return None
    return estimates_json(board_estimates(instructions, board, cycles))


FRONTEND_SRAM_FORMULA = ("listen_measured_sram_bytes = arena_bytes + data_bytes + bss_bytes + "
                         "stack_high_water_bytes of the listen build (front end state, FFT buffers "
                         "and the feature frames are in its .bss)")


def measurement_wav(frontend: FrontendSources, seed: int = MEASURE_SEED) -> bytes:
    """A one-second WAV of seeded noise at the front end's rate (the measured listen run's input)."""
    rng = np.random.default_rng(seed)
    samples = rng.integers(-3000, 3000, size=frontend.sample_rate, dtype=np.int16)
    return pcm_wav_bytes(samples, frontend.sample_rate)


def measure_frontend(directory: Path, model: GeneratedModel, target: Target,
                     frontend: FrontendSources) -> dict:
    """Build the listen ELF and measure it: its sections, its stack under QEMU on `measurement_wav`,
    and the front end's and the listen glue's own symbols (``arm-none-eabi-nm -S``)."""
    elf = build(directory, f"listen-{target.name}")
    sizes = section_sizes(elf)
    run = run_qemu_listen(elf, target, measurement_wav(frontend), io_bytes(model)[0])
    own = symbol_bytes(elf, FRONTEND_SYMBOL_PREFIXES)
    glue = symbol_bytes(elf, ("mf_listen_", "mcuforge_listen", "mcuforge_stream_", "mcuforge_labels",
                              "mf_argmax"))
    m7 = TARGETS["cortex-m7"]
    m7_elf = elf if target.name == m7.name else build(directory, f"listen-{m7.name}")
    pcm = np.random.default_rng(MEASURE_SEED).integers(-3000, 3000, size=frontend.sample_rate,
                                                       dtype=np.int16)
    counted = count_listen(m7_elf, m7, pcm, len(run.scores), io_bytes(model)[0])
    if counted.scores != run.scores:
        raise McuforgeError("unicorn and QEMU disagree on the scores of the measured listen run")
    frontend_instructions = counted.frontend_instructions
    frames = listen_frames(model, frontend)
    return {
        "instructions_per_clip": counted.instructions,
        "frontend_instructions_per_clip": frontend_instructions,
        "frontend_instructions_per_frame": round(frontend_instructions / frames),
        "frontend_instructions_per_second": round(frontend_instructions / frames
                                                  * frontend.sample_rate / frontend.hop_samples),
        "instructions_target": m7.name,
        "instructions_note": "mcuforge_listen on one clip of measure_input, counted in unicorn; "
                             "the front end's share is its own functions (mf_fe_*, mf_frontend_*), "
                             "memcpy/memset it calls excluded",
        "frontend_flash_bytes": own["text"] + own["rodata"] + own["data"],
        "frontend_sram_bytes": own["data"] + own["bss"],
        "frontend_symbols": own,
        "listen_glue_symbols": glue,
        "state_note": "frontend_sram_bytes: the front end's static scratch (FFT, spectrum, energies, "
                      "bands) and streaming window; the clip state and the feature frames are the "
                      "listen glue's (listen_glue_symbols.bss)",
        "listen_flash_bytes": sizes.flash_bytes,
        "listen_data_bytes": sizes.data_bytes,
        "listen_bss_bytes": sizes.bss_bytes,
        "listen_stack_high_water_bytes": run.stack_high_water_bytes,
        "listen_measured_sram_bytes": (model.plan.arena_bytes + sizes.data_bytes + sizes.bss_bytes
                                       + run.stack_high_water_bytes),
        "listen_sram_formula": FRONTEND_SRAM_FORMULA,
        "measure_input": f"1 s of uniform noise in [-3000, 3000), numpy seed {MEASURE_SEED}",
    }


def compile_model(graph: Graph, out_dir: Path, target_name: str = "cortex-m7",
                  sram_bytes: int | None = None, source: str = "", measure: bool = True,
                  patch=None, plan_options: PlanOptions = PlanOptions(),
                  postprocess: PostProcessModule | None = None,
                  frontend: FrontendSources | None = None,
                  labels: tuple[str, ...] | None = None,
                  extra_files: Mapping[str, bytes] | None = None,
                  report_fields: Mapping[str, object] | None = None, board: Board | None = None,
                  cycles: int | None = None, optimise: str = "balanced",
                  count_instructions: bool = True, avoid_scratch: bool | None = None) -> dict:
    """Generate, build and measure the C project of ``graph`` into ``out_dir``; returns the report.
    ``plan_options``: the planner's conventions (e.g. ``depthwise_row_buffer``; patch schedules
    keep the channel-plane in-place depthwise kernel). ``postprocess``: a module the runners apply
    to every inference's outputs (e.g. detection decoding, `mcuforge.detect.c_module`); the measured
    Flash and stack then include it. ``frontend`` (from `mcuforge.audio.emit.frontend_sources`): the
    project also takes raw PCM (``frontend/``, the ``listen-*`` builds; `mcuforge.codegen.listen`)
    with ``labels`` naming the scores, and the report's ``frontend`` entry holds the listen build's
    measured Flash and SRAM. ``extra_files`` (name -> bytes) are written into the project too (e.g.
    the int8 .tflite of a model quantised on the way), and ``report_fields`` are added to report.json.
    The report's ``inference`` entry holds the latency and energy per
    inference on ``board`` (every board when None) from the counted instructions, or from ``cycles``
    measured on ``board`` when given (they replace the estimate).
    ``optimise``: balanced, speed or size (`codegen.targets.OPTIMISATIONS`).
    ``count_instructions``: `measure_cortex_m`'s.
    ``avoid_scratch``: True takes kernels without scratch where
    the fast kernels' scratch would grow the arena (arena = analytic peak; those convolutions are
    slower), False keeps the fast kernels everywhere, None (``--kernel-scratch auto``) keeps them
    unless their arena exceeds ``sram_bytes``.

    Raises `DoesNotFitError` (needed vs available bytes) when the arena, or the measured SRAM of the
    Cortex-M build, exceeds ``sram_bytes``; nothing is left at ``out_dir`` then."""
    target = with_optimisation(get_core(target_name), optimise)
    model = _generate(graph, target, patch, plan_options, bool(avoid_scratch))
    if avoid_scratch is None and sram_bytes is not None and model.plan.arena_bytes > sram_bytes:
        model = _generate(graph, target, patch, plan_options, True)
    if postprocess is not None:
        model = with_postprocess(model, postprocess)
    if frontend is not None:
        outputs = graph.tensors[graph.outputs[0]].nbytes
        model = add_frontend(model, frontend, labels or tuple(str(i) for i in range(outputs)))
    resident = model.plan.arena_bytes + model.state_bytes
    if sram_bytes is not None and resident > sram_bytes:
        what = "arena + state" if model.state_bytes else "arena"
        raise DoesNotFitError(f"model {graph.name} ({what})", resident, sram_bytes)
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    with folder_lock(out_dir):
        clean_stale_staging(out_dir)
        check_output_folder(out_dir)  # another writer may have finished while we waited
        return _build_into(model, graph, out_dir, target, sram_bytes, source, measure, patch,
                           frontend, dict(extra_files or {}), dict(report_fields or {}), board, cycles,
                           count_instructions)


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
                sram_bytes: int | None, source: str, measure: bool, patch,
                frontend: FrontendSources | None, extra_files: dict[str, bytes],
                report_fields: dict[str, object], board: Board | None = None,
                cycles: int | None = None, count_instructions: bool = True) -> dict:
    """Write, build and measure the project in a staging folder, then swap it in atomically
    (`mcuforge.atomic.replace_folder`); the staging folder is removed on any error."""
    staging = make_staging_folder(out_dir)
    try:
        write_project(model, staging)
        for name, payload in extra_files.items():
            (staging / name).write_bytes(payload)
        report = _base_report(model, source)
        report.update(report_fields)
        if patch is not None:
            from .patch_emit import patch_report_fields
            report.update(patch_report_fields(model))
        if frontend is not None:
            report["frontend"] = {"name": frontend.name, "frames": listen_frames(model, frontend),
                                  "window_samples": frontend.window_samples,
                                  "hop_samples": frontend.hop_samples,
                                  "sample_rate": frontend.sample_rate}
        if measure and target.is_cortex_m:
            report.update(measure_cortex_m(staging, model, target, count_instructions))
            if frontend is not None:
                report["frontend"].update(measure_frontend(staging, model, target, frontend))
            if sram_bytes is not None and report["measured_sram_bytes"] > sram_bytes:
                raise DoesNotFitError(f"model {graph.name} (measured SRAM)",
                                      report["measured_sram_bytes"], sram_bytes)
        elif measure:
            build(staging, "host")
            if frontend is not None:
                build(staging, "listen-host")
        report["sram_available_bytes"] = sram_bytes
        inference = inference_report(report.get("instructions"), board, cycles)
        if inference is not None:
            report["inference"] = inference
        write_json_atomic(staging / "report.json", report)  # last: a project with it is complete
        replace_folder(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report
