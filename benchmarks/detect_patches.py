"""High-resolution detection through patches: the MCUNetV2 argument, measured on the raccoon data.

    .venv/bin/python benchmarks/detect_patches.py --high runs/det256 --low runs/det160 \\
        [--board stm32f412] [--out detect-patches] [--no-compile] [--mcu-images 32] [--mcu-images-high N]

``--high`` and ``--low`` are two detector run folders (`mcuforge train --task detect`) of the same
architecture trained the same way at two resolutions: the high one (>= 256 px) whose layer-based
peak does not fit the board's SRAM, the low one the largest resolution that does (the script checks
both claims and says which resolution that is). For each: float mAP, int8 mAP in the reference
runtime through the integer post-processing the C runs (the MCU's boxes equal these: the
generated C is bit-exact with the reference runtime, patch-based or not), the layer-based peak,
the patch schedule (fewest MACs under the SRAM) with its peak and MAC overhead, and, unless
``--no-compile``, the measured SRAM of the Cortex-M build (arena + .data + .bss + stack
high-water under QEMU; the input image is the caller's buffer). Memory is printed in both input
conventions: the network input held in the arena, and streamed from the caller's buffer
(MCUNetV2's convention; the patch-based C reads its input windows from the caller's buffer).
Bytes; 1 kB = 1024 B. mAP on the fixed validation split (`data.voc`: sorted names, every 5th).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import warnings
from dataclasses import replace
from pathlib import Path

from mcuforge.analysis.conventions import MemoryConventions
from mcuforge.analysis.memory import memory_profile
from mcuforge.codegen.patch_emit import SQUARE_GRID_MAX, check_c_patch_support
from mcuforge.codegen.project import compile_model
from mcuforge.data.registry import load_detection_dataset
from mcuforge.detect.c_module import detect_module
from mcuforge.detect.fixed import DetectConfig
from mcuforge.detect.head import head_from_json
from mcuforge.detect.head import save_head_json, sidecar_head_path
from mcuforge.detect.mcu import detect_on_target
from mcuforge.detect.metrics import MAP_DETECT_CONFIG, detection_scores
from mcuforge.detect.run import make_detector
from mcuforge.errors import DoesNotFitError, McuforgeError
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.models.spec_graph import build_graph
from mcuforge.patch.resolve import resolve_schedule
from mcuforge.planner.arena import PlanOptions, plan_arena
from mcuforge.quant.detection import int8_scores, predict_int8, quantize_detector
from mcuforge.targets import BOARDS
from mcuforge.train.detect import evaluate_detector
from mcuforge.train.run import load_trained_model

STREAMED = PlanOptions().with_conventions(count_network_input=False)


def streamed_schedule(graph, sram: int):
    """The square-grid schedule (recomputed halos, one the generated C runs) with the fewest MACs
    whose peak with the input streamed fits ``sram`` (MCUNetV2's convention), or None."""
    best = None
    for blocks in range(1, len(graph.blocks)):
        for n in range(2, SQUARE_GRID_MAX + 1):
            try:
                plan = resolve_schedule(graph, f"{n}x{n}@b{blocks}", STREAMED.conventions,
                                        check=check_c_patch_support)
            except McuforgeError:
                continue
            if plan.peak_activation_bytes_input_streamed <= sram and (best is None or plan.total_macs < best.total_macs):
                best = plan
    return best


def layer_figures(graph) -> dict[str, int]:
    """Layer-based analytic peaks (input in the arena / streamed) and the planned arena."""
    conventions = MemoryConventions()
    return {"peak": memory_profile(graph, conventions).peak_activation_bytes,
            "peak_streamed": memory_profile(graph, replace(conventions, count_network_input=False)
                                            ).peak_activation_bytes,
            "arena": plan_arena(graph, PlanOptions()).arena_bytes}


def map_config(head) -> DetectConfig:
    """`MAP_DETECT_CONFIG` with a candidate buffer of every (cell, anchor) of the head (none is
    dropped before NMS, and the C's buffer is no larger than that)."""
    cells = sum(len(o.anchors) * head.grid(i)[0] * head.grid(i)[1] for i, o in enumerate(head.outputs))
    return replace(MAP_DETECT_CONFIG, max_candidates=cells)


def mcu_scores(graph, project: Path, core: str, val_set, head, count: int) -> dict:
    """The first ``count`` validation images through the Cortex-M build under QEMU (its own
    ``mf_detect`` decoding them): how many images' boxes equal the reference runtime's, and the mAP
    of the MCU's boxes and of the reference's on those images."""
    subset = val_set.subset(range(min(count, len(val_set))))
    reference_boxes, reference_fixed = predict_int8(graph, subset, head, map_config(head))
    mcu = detect_on_target(project, make_detector(graph, head), [sample.image for sample in subset.samples], core, timeout_s=7200)
    same = int(sum(np.array_equal(a, b) for a, b in zip(mcu.fixed, reference_fixed)))
    truths = subset.ground_truths()
    return {"images": len(subset), "identical": same,
            "map50": detection_scores(list(mcu.boxes), truths, head.num_classes).map50_voc,
            "reference_map50": detection_scores(reference_boxes, truths, head.num_classes).map50_voc}


def measure(run: Path, board: str, out: Path, compile_c: bool, mcu_images: int) -> dict:
    """Every figure of one run folder (module doc)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, spec, saved = load_trained_model(run / "model.pt")
    head = head_from_json(saved["head"])
    train_set = load_detection_dataset(saved.get("dataset") or "raccoon", "train")
    val_set = load_detection_dataset(saved.get("dataset") or "raccoon", "val")
    sram = BOARDS[board].sram_bytes
    started = time.perf_counter()
    _, float_scores = evaluate_detector(model, val_set, head)
    graph = quantize_detector(model, train_set)
    scores = int8_scores(graph, val_set, head, map_config(head), progress=True)
    figures = {"resolution": spec.resolution, "float": float_scores, "int8": scores,
               "layer": layer_figures(build_graph(spec)), "sram": sram}
    plan = None if figures["layer"]["arena"] <= sram else streamed_schedule(graph, sram)
    figures["schedule"] = schedule = None if plan is None else plan.config
    if plan is not None:
        figures["patch"] = {"peak_streamed": plan.peak_activation_bytes_input_streamed,
                            "peak": plan.peak_activation_bytes, "mac_overhead": plan.mac_overhead,
                            "macs_layer": plan.total_macs_layer}
    tflite = write_tflite(graph, out / f"detector_r{spec.resolution}.tflite")
    save_head_json(head, sidecar_head_path(tflite))  # what `mcuforge detect` reads beside the model
    if compile_c:
        core = BOARDS[board].core
        project = out / f"c_r{spec.resolution}"
        try:
            report = compile_model(graph, project, core, None, source=str(tflite), patch=schedule,
                                   plan_options=PlanOptions().with_conventions(depthwise_row_buffer=schedule is None),
                                   postprocess=detect_module(graph, head, map_config(head)), count_instructions=False)
        except DoesNotFitError as error:
            figures["compiled"] = {"does_not_fit": str(error)}
        else:
            figures["compiled"] = {key: report[key] for key in ("arena_bytes", "measured_sram_bytes", "flash_bytes",
                                                                 "stack_high_water_bytes")}
            figures["mcu"] = mcu_scores(graph, project, core, val_set, head, mcu_images)
    figures["seconds"] = time.perf_counter() - started
    return figures


def _kb(value: int) -> str:
    return f"{value:,} B ({value / 1024:.1f} kB)"


def report(name: str, figures: dict) -> list[str]:
    """The printed lines of one resolution."""
    layer, sram = figures["layer"], figures["sram"]
    lines = [f"{name}: r{figures['resolution']}",
             f"  mAP@0.5 (VOC): float {figures['float'].map50_voc:.3f}, int8 reference {figures['int8'].map50_voc:.3f}"
             f"  | mAP@[.5:.95] float {figures['float'].map_coco:.3f}, int8 {figures['int8'].map_coco:.3f}",
             f"  layer-based peak: {_kb(layer['peak'])} input in arena, {_kb(layer['peak_streamed'])} input streamed;"
             f" planned arena {_kb(layer['arena'])}; fits {sram // 1024} kB layer by layer: "
             f"{'yes' if layer['arena'] <= sram else 'no'}"]
    if figures.get("patch"):
        patch = figures["patch"]
        overhead = patch["mac_overhead"]
        lines.append(f"  patch schedule {figures['schedule'].to_string()}: peak {_kb(patch['peak_streamed'])} input "
                     f"streamed ({_kb(patch['peak'])} input in arena); MAC overhead +{overhead:,} "
                     f"({overhead / max(1, patch['macs_layer']):.2%} of the layer-based MACs)")
    else:
        lines.append("  patch schedule: none needed (fits layer by layer)")
    compiled = figures.get("compiled")
    if compiled and "does_not_fit" in compiled:
        lines.append(f"  C: {compiled['does_not_fit']}")
    elif compiled:
        lines.append(f"  C ({'patch-based' if figures.get('patch') else 'layer-based'}): arena "
                     f"{_kb(compiled['arena_bytes'])}, measured SRAM {_kb(compiled['measured_sram_bytes'])} "
                     f"(stack {compiled['stack_high_water_bytes']:,} B), Flash {compiled['flash_bytes']:,} B")
    if figures.get("mcu"):
        mcu = figures["mcu"]
        lines.append(f"  MCU (QEMU, boxes decoded by the C's mf_detect): {mcu['identical']}/{mcu['images']} images "
                     f"with boxes identical to the reference runtime's; mAP@0.5 on them: MCU {mcu['map50']:.3f}, "
                     f"int8 reference {mcu['reference_map50']:.3f}")
    lines.append(f"  ({figures['seconds']:.0f} s)")
    return lines


def main() -> None:
    """Measure the runs given and print the comparison (the claims need both)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--high", type=Path, help="run folder of the high-resolution detector")
    parser.add_argument("--low", type=Path, help="run folder of the layer-based-fitting one")
    parser.add_argument("--board", default="stm32f412", choices=sorted(BOARDS))
    parser.add_argument("--out", type=Path, default=Path("detect-patches"))
    parser.add_argument("--no-compile", action="store_true", help="skip the C build and QEMU measurement")
    parser.add_argument("--mcu-images", type=int, default=32, help="validation images run under QEMU")
    parser.add_argument("--mcu-images-high", type=int, help="the same for the high resolution "
                        "(default: --mcu-images; a patch-based inference is several times longer)")
    args = parser.parse_args()
    if args.high is None and args.low is None:
        parser.error("give --high, --low or both")
    args.out.mkdir(parents=True, exist_ok=True)
    sram = BOARDS[args.board].sram_bytes
    print(f"Detection on raccoon (val: 32 images), {args.board} ({sram // 1024} kB SRAM); bytes, 1 kB = 1024 B",
          flush=True)
    low = high = None
    if args.low is not None:
        low = measure(args.low, args.board, args.out, not args.no_compile, args.mcu_images)
        print("\n".join(report("largest layer-based-fitting resolution", low)), flush=True)
    if args.high is not None:
        count = args.mcu_images if args.mcu_images_high is None else args.mcu_images_high
        high = measure(args.high, args.board, args.out, not args.no_compile, count)
        print("\n".join(report("high resolution", high)), flush=True)
    if low is not None and high is not None:
        patch = high.get("patch", {})
        print(f"claims: r{high['resolution']} layer-based peak (input streamed) {high['layer']['peak_streamed']:,} B "
              f"> {sram:,} B: {high['layer']['peak_streamed'] > sram}; with patches "
              f"{patch.get('peak_streamed', 0):,} B <= {sram:,} B: {patch.get('peak_streamed', sram + 1) <= sram}; "
              f"r{low['resolution']} planned arena {low['layer']['arena']:,} B <= {sram:,} B: "
              f"{low['layer']['arena'] <= sram}")
        print(f"int8 mAP@0.5: r{high['resolution']} {high['int8'].map50_voc:.3f} vs r{low['resolution']} "
              f"{low['int8'].map50_voc:.3f}")


if __name__ == "__main__":
    main()
