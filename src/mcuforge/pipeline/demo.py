"""`mcuforge demo`: from nothing to a model running on an emulated MCU, and a report of why it fits.

Stages, in order (a `mcuforge.stages.Run` with its results in ``DIR/results/``); each saves
``DIR/results/<stage>.json`` atomically when it finishes, so a rerun after an interruption resumes
from the first unfinished stage (and the search resumes inside itself from its own stages and
checkpoints):

1. ``search``   TinyNAS quick preset for the data set under the target's SRAM/Flash budget, jointly
                with the patch schedule; the winner is fine-tuned, quantised to int8 (PTQ) and its
                int8 accuracy measured by the reference runtime (also saves ``train`` and ``quantize``).
2. ``compile``  C code with the best patch schedule (``--patch auto`` under the SRAM limit), built for
                the target's core and measured (arena, Flash, SRAM, unicorn instruction count).
3. ``mcu``      the first N test images through the Cortex-M build under QEMU: accuracy, and the
                number of outputs bit-identical to the reference runtime.
4. ``tflm``     the same int8 model as a .tflite in TensorFlow Lite Micro: its arena (head/tail/total).
5. ``report``   ``DIR/report/index.html`` with its PNGs (`report.html`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import McuforgeError
from ..report.results import RESULTS_FOLDER, load_stage, save_stage
from ..stages import Run, Stage
from ..targets import get_board

STAGES = ("search", "compile", "mcu", "tflm", "report")


DEMO_THREADS = 2


@dataclass(frozen=True)
class DemoSettings:
    """What the demo does; the defaults are the built-in default job."""

    run_dir: Path = Path("mcuforge-demo")
    dataset: str = "fashion-mnist"
    target: str = "stm32f412"
    sram_bytes: int | None = None
    flash_bytes: int | None = None
    preset: str = "quick"
    mcu_images: int = 1000
    # Torch threads: fixed, not "all cores", because float training is bit-reproducible only at the
    # same thread count; with a fixed count the demo prints the same figures on any machine's CPU.
    threads: int | None = DEMO_THREADS
    # The built-in default keeps the search small enough to finish in minutes on two cores: widths up
    # to 0.5, resolutions 32 and 48, a short supernet phase.
    widths: tuple[float, ...] | None = (0.2, 0.3, 0.4, 0.5)
    resolutions: tuple[int, ...] | None = (32, 48)
    supernet_train_samples: int | None = 4000

    def limits(self) -> tuple[int, int]:
        """(SRAM, Flash) budget in bytes: the target's unless given."""
        target = get_board(self.target)
        return self.sram_bytes or target.sram_bytes, self.flash_bytes or target.flash_bytes


def winner_dir(settings: DemoSettings) -> Path:
    """Where the search leaves the fine-tuned winner (model.pt, model_int8.tflite)."""
    return settings.run_dir / "search" / "winner"


def stage_search(settings: DemoSettings, log: Callable[[str], None]) -> dict:
    """Run the TinyNAS search (resumable) and record search, train and quantize results."""
    from ..nas.pipeline import run_search
    from ..nas.settings import preset_settings

    sram, flash = settings.limits()
    search_dir = settings.run_dir / "search"
    resume = search_dir.exists() and any(search_dir.iterdir())
    nas_settings = preset_settings(settings.preset, dataset=settings.dataset, target=settings.target,
                                   sram_bytes=sram, flash_bytes=flash, patch=True, compile=False,
                                   threads=settings.threads, widths=settings.widths,
                                   resolutions=settings.resolutions,
                                   supernet_train_samples=settings.supernet_train_samples)
    report = run_search(nas_settings, search_dir, resume=resume, log=log)
    if report is None:
        raise McuforgeError("the search returned no report")
    fitting = report["stage1"]["fitting_macs"]
    top_spaces = [entry["space"] for entry in report["stage1"]["spaces"][:6]]  # ranked best first
    spaces = {name: fitting[name] for name in top_spaces if fitting.get(name)}
    candidates = [{"sram_bytes": item["peak_sram_bytes"], "accuracy": item["fitness"],
                   "kind": "evolution, layer-based" if item["schedule"] == "layer-based" else "evolution, patch-based"}
                  for item in report["evolution"]["candidates"]]
    deployed = report["deploy"]
    save_stage(settings.run_dir, "train", {"spec": deployed["spec"], "epochs": deployed["epochs"],
                                           "float_accuracy": deployed["float_accuracy"],
                                           "seconds": deployed["train_seconds"]})
    save_stage(settings.run_dir, "quantize", {"int8_accuracy": deployed["int8_accuracy"],
                                              "test_images": deployed["int8_test_samples"]})
    return {"target": settings.target, "sram_bytes": sram, "flash_bytes": flash,
            "chosen_space": report["space"]["name"], "best_spec": report["winner"]["spec"],
            "space_macs": spaces, "candidates": candidates, "winner": report["winner"],
            "seconds": report["seconds"]}


def _int8_graph(settings: DemoSettings):
    from ..frontends.tflite import read_tflite

    path = winner_dir(settings) / "model_int8.tflite"
    if not path.exists():
        raise McuforgeError(f"{path} is missing: rerun the search stage (delete {settings.run_dir / 'results'})")
    return read_tflite(path)


def stage_compile(settings: DemoSettings, log: Callable[[str], None]) -> dict:
    """Generate, build and measure the C project with the best patch schedule under the SRAM limit."""
    from ..analysis.profile import profile_graph
    from ..patch import resolve_schedule
    from ..codegen.emit import generate
    from ..codegen.patch_emit import generate_patched, resolve_c_patch
    from ..codegen.project import compile_model
    from ..codegen.targets import get_core as codegen_target

    sram, _ = settings.limits()
    graph = _int8_graph(settings)
    core = get_board(settings.target).core
    schedule = resolve_c_patch(graph, "auto", sram)
    out_dir = settings.run_dir / "c"
    if out_dir.exists():
        import shutil
        shutil.rmtree(out_dir)
    report = compile_model(graph, out_dir, core, sram, source="demo winner", patch=schedule,
                           board=get_board(settings.target))
    model = generate(graph, codegen_target(core)) if schedule is None else \
        generate_patched(graph, codegen_target(core), schedule)
    layer_blocks = [(b.name, b.peak_activation_bytes) for b in profile_graph(graph).blocks]
    # Per-block memory of the compiled patch schedule (the figures of its planned schedule), or,
    # when layer-based execution fits, of the smallest-peak schedule for comparison (analytic).
    patch_plan = model.patch_schedule.figures if schedule is not None else \
        resolve_schedule(graph, "min-memory")
    patch_blocks = list(patch_plan.per_block) if patch_plan is not None else None
    placements = [(p.name, p.offset, p.size, p.first, p.last) for p in model.plan.placements.values()]
    log(f"compiled ({report['schedule']}): arena {report['arena_bytes']:,} B, measured SRAM "
        f"{report.get('measured_sram_bytes', 0):,} B, Flash {report.get('flash_bytes', 0):,} B")
    return {**{k: v for k, v in report.items() if not isinstance(v, dict)},
            "clock_hz": get_board(settings.target).clock_hz, "core": core,
            "board": get_board(settings.target).name,
            "blocks_layer": layer_blocks, "blocks_patch": patch_blocks,
            "patch_schedule_shown": patch_plan.config.to_string() if patch_plan is not None else None,
            "arena_placements": placements}


def stage_mcu(settings: DemoSettings, log: Callable[[str], None]) -> dict:
    """Run the first test images through the Cortex-M build under QEMU; compare with the reference."""
    from ..codegen.build import build
    from ..codegen.qemu import run_qemu
    from ..codegen.targets import get_core as codegen_target
    from ..data.registry import load_dataset
    from ..data.transforms import eval_batch
    from ..models.dsl import parse_spec
    from ..quant.inference import int8_logits, quantize_input

    graph = _int8_graph(settings)
    spec = parse_spec(load_stage(settings.run_dir, "train")["spec"])
    test = load_dataset(settings.dataset, "test")
    count = min(settings.mcu_images, len(test))
    images, labels = test.batch(np.arange(count))
    x = quantize_input(graph, eval_batch(images, spec.resolution, spec.in_channels))
    reference = int8_logits(graph, x, batch_size=count).reshape(count, -1)
    core = codegen_target(get_board(settings.target).core)
    elf = build(settings.run_dir / "c", core.name)
    out_bytes = reference.shape[1] * reference.itemsize
    started = time.perf_counter()
    run = run_qemu(elf, core, np.ascontiguousarray(x).astype(np.int8).tobytes(), out_bytes, count,
                   timeout_s=1800)
    mcu = np.frombuffer(run.outputs, dtype=reference.dtype).reshape(count, -1)
    labels = labels.numpy()
    identical = int((mcu == reference).all(axis=1).sum())
    result = {"images": count, "accuracy": float((mcu.argmax(1) == labels).mean()),
              "reference_accuracy": float((reference.argmax(1) == labels).mean()),
              "bit_identical_outputs": identical, "qemu_machine": core.qemu_machine,
              "seconds": time.perf_counter() - started}
    log(f"MCU (QEMU {core.qemu_machine}): accuracy {result['accuracy']:.2%} on {count} images, "
        f"{identical}/{count} outputs bit-identical to the reference runtime")
    if identical != count:
        raise McuforgeError(f"the Cortex-M build disagrees with the reference runtime on "
                            f"{count - identical} of {count} images")
    return result


def stage_tflm(settings: DemoSettings, log: Callable[[str], None]) -> dict:
    """TensorFlow Lite Micro's arena for the same int8 model."""
    from ..rivals.tflm import measure_tflm_arena

    arena = measure_tflm_arena(winner_dir(settings) / "model_int8.tflite")
    log(f"TFLite Micro arena: total {arena.total:,} B (head {arena.head:,}, tail {arena.tail:,})")
    return {"total": arena.total, "head": arena.head, "tail": arena.tail}


def stage_report(settings: DemoSettings, log: Callable[[str], None]) -> dict:
    """Render the HTML report from the saved results."""
    from ..report.html import render_report

    path = render_report(settings.run_dir)
    log(f"report: {path}")
    return {"path": str(path)}


STAGE_FUNCTIONS = {"search": stage_search, "compile": stage_compile, "mcu": stage_mcu,
                   "tflm": stage_tflm, "report": stage_report}


def demo_stages(log: Callable[[str], None]) -> list[Stage[DemoSettings]]:
    """The demo's stages in order (module doc), each a function of the settings; ``report`` always
    reruns so that it shows every saved result."""
    return [Stage(name, partial(STAGE_FUNCTIONS[name], log=log), always_runs=name == "report") for name in STAGES]


def run_demo(settings: DemoSettings, log: Callable[[str], None] = print) -> Path:
    """Run every unfinished stage in order (module doc); returns the report's path."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    run = Run(settings.run_dir, results_folder=RESULTS_FOLDER, timed=True, log=log)
    run.run_stages(demo_stages(log), settings, progress_label="demo")
    return settings.run_dir / "report" / "index.html"


__all__ = ["DemoSettings", "STAGES", "run_demo", "replace"]
