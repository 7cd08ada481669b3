"""`mcuforge compile MODEL -o DIR [--board NAME | --core host|cortex-m4|cortex-m7] [--sram BYTES]`.

Generates the self-contained C project (model.h, model.c, kernels/, runner/, Makefile), builds it,
and writes DIR/report.json with the planned and measured figures (for Cortex-M targets: Flash and
SRAM of the ELF, stack high-water under QEMU, instruction count of one inference in unicorn).
With ``--head head.json`` (a YOLO-style detector's anchors, strides and classes) the project also
holds ``postprocess/mf_detect.{h,c}`` (decode through lookup tables, threshold, NMS; boxes equal to
`mcuforge.detect`'s) and its runners print the boxes of every inference.
A model that does not fit ``--sram`` fails with needed vs available bytes (exit code 2) and leaves
no output folder. ``--board`` implies the board's core and, unless ``--sram`` is given, its SRAM
as the limit; without a board or core the C is built for cortex-m7.

MODEL is an int8 .tflite or QDQ .onnx, or a model that is quantised first (`commands/calibration.py`,
the step `mcuforge import` takes): a float .pt2 / .onnx with ``--calibration data.npy`` or
``--dataset NAME``, or a zoo name, spec string or JSON config (pretrained weights where the zoo has
them, else seeded random weights; calibrated on ``--dataset``/``--calibration``, else on synthetic
images, which the output says). ``--resolution``/``--width`` pick a zoo model's variant.

report.json's ``inference`` entry holds the latency and energy per inference on the board (every
board without ``--board``), estimated from the counted instructions
(`mcuforge.analysis.latency_energy`: CPI = 1 assumed, datasheet Run-mode current); ``--cycles N``,
a cycle count measured on the board, replaces the estimate and the entry says "measured".
"""

from __future__ import annotations

from pathlib import Path

import click

from ..analysis.latency_energy import board_estimates, parse_cycles
from ..codegen.project import compile_model
from ..errors import McuforgeError
from ..ops.support import require_executable
from ..targets import parse_bytes
from ..planner.arena import PlanOptions
from .calibration import CalibrationRequest, calibration_options, echo_quantised, int8_model
from .hardware import board_option, core_option, resolve_hardware, target_option
from .patch_options import max_macs_option

DEFAULT_CORE = "cortex-m7"
QUANTISED_FILE = "model.tflite"  # a model quantised by compile: its int8 .tflite, read by verify
_AVOID_SCRATCH = {"auto": None, "avoid": True, "allow": False}  # --kernel-scratch -> compile_model


def detection_module(graph, head_path: Path, score: float | None, iou: float | None):
    """The ``mf_detect`` post-processing module of ``graph`` with the head JSON at ``head_path``."""
    from ..detect.c_module import detect_module
    from ..detect.fixed import DetectConfig
    from ..detect.head import load_head_json

    defaults = DetectConfig()
    config = DetectConfig(score_threshold=defaults.score_threshold if score is None else score,
                          iou_threshold=defaults.iou_threshold if iou is None else iou)
    return detect_module(graph, load_head_json(head_path), config)


@click.command("compile")
@click.argument("model")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder of the generated project (replaced if it is an earlier project).")
@board_option("MCU: its core builds the C and its SRAM is the limit (unless --sram).")
@core_option("Build target of the C (default: the board's core, else cortex-m7).")
@target_option()
@click.option("--sram", default=None, help="Available SRAM (bytes, or with K/M, 1K = 1024 B).")
@click.option("--patch", default="none", show_default=True,
              help="Patch-based schedule: none, auto (fewest MACs under --sram), min-memory, or "
                   "RxC@SPLIT (an R x C grid of the tensor after block SPLIT, halos recomputed; "
                   "row strips Nx1@SPLIT may add +halo-full to cache them instead).")
@max_macs_option()
@click.option("--head", "head_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Detection head JSON (mcuforge.detect.head): the project gets the mf_detect "
                   "post-processing (decode, threshold, NMS) and its runners print the boxes.")
@click.option("--score", "score", type=float, default=None,
              help="With --head: score threshold (default 0.25).")
@click.option("--iou", "iou", type=float, default=None, help="With --head: NMS IoU threshold (default 0.45).")
@click.option("--no-measure", is_flag=True, help="Generate and build only; skip QEMU and unicorn.")
@click.option("--cycles", "cycles_text", default=None, metavar="N",
              help="Cycles of one inference measured on the --board (e.g. with the DWT cycle "
                   "counter): replace the latency estimate from counted instructions.")
@click.option("--speed", "optimise", flag_value="speed",
              help="Fewest instructions: -O3 (more Flash).")
@click.option("--size", "optimise", flag_value="size",
              help="Least Flash: -Os and 1x1 conv kernels that take their shape as arguments.")
@click.option("--balanced", "optimise", flag_value="balanced", default=True,
              help="The default: -O2, kernels specialised per shape.")
@click.option("--kernel-scratch", type=click.Choice(["auto", "avoid", "allow"]), default="auto",
              show_default=True,
              help="avoid: kernels without scratch where the fast kernels' scratch would grow the "
                   "arena (arena = analytic peak; slower convolutions there); allow: the fast "
                   "kernels everywhere (scratch may grow the arena); auto: allow, unless that "
                   "arena exceeds --sram.")
@click.option("--depthwise-row-buffer/--depthwise-plane", default=None,
              help="In-place depthwise convs keep a ring of output rows (default for layer-based "
                   "schedules) or a whole channel plane (docs/architecture.md's convention; patch schedules).")
@click.option("--frontend", default=None, type=click.Choice(["micro-speech", "mfcc"]),
              help="Include this audio front end: the project also takes raw int16 PCM "
                   "(frontend/, mcuforge_listen, make listen-host / listen-<core>).")
@click.option("--labels", default=None,
              help="Comma-separated names of the model's scores, for the listen runners "
                   "(default 0, 1, ...); e.g. silence,unknown,yes,no for micro_speech.")
@click.option("--resolution", type=int, default=None, help="Input resolution (zoo models, specs, configs).")
@click.option("--width", type=float, default=None, help="Width multiplier (scalable zoo families).")
@calibration_options
def command(model: str, out_dir: Path, board: str | None, core: str | None, target: str | None,
            sram: str | None, patch: str, max_macs: float | None, head_path: Path | None, score: float | None,
            iou: float | None, no_measure: bool, kernel_scratch: str, optimise: str, cycles_text: str | None,
            depthwise_row_buffer: bool | None, frontend: str | None, labels: str | None,
            resolution: int | None, width: float | None, request: CalibrationRequest) -> None:
    """Generate the C project of MODEL in DIR and measure it: an int8 .tflite or QDQ .onnx, a float
    .pt2/.onnx with --calibration or --dataset, or a zoo name, spec or JSON config (quantised
    first, see `mcuforge import`)."""
    hardware = resolve_hardware(board, core, target)
    cycles = parse_cycles(cycles_text) if cycles_text is not None else None
    if cycles is not None and hardware.board is None:
        raise McuforgeError("--cycles is a count measured on one board: give --board too")
    core_name = hardware.core or DEFAULT_CORE
    if sram is not None:
        sram_bytes = parse_bytes(sram)
    else:
        sram_bytes = hardware.board.sram_bytes if hardware.board is not None else None
    quantised = int8_model(model, request, resolution, width)
    echo_quantised(quantised, notes_only=True)
    graph = require_executable(quantised.graph, model, c_code=True)
    schedule = None
    if patch != "none" or max_macs is not None:  # --max-macs without a search: refused there
        from ..codegen.patch_emit import resolve_c_patch
        schedule = resolve_c_patch(graph, patch, sram_bytes, max_mac_factor=max_macs)
        if schedule is not None and depthwise_row_buffer:
            raise McuforgeError("--depthwise-row-buffer: the patch-based C keeps the channel-plane "
                                "in-place depthwise kernel; use it with layer-based schedules")
    if depthwise_row_buffer is None:
        depthwise_row_buffer = schedule is None
    postprocess = None
    if head_path is not None:
        postprocess = detection_module(graph, head_path, score, iou)
    elif score is not None or iou is not None:
        raise McuforgeError("--score and --iou set the detection post-processing: give --head too")
    if labels is not None and frontend is None:
        raise McuforgeError("--labels names the scores of the listen runners: give --frontend too")
    sources = None
    if frontend is not None:
        from ..audio.emit import frontend_sources
        from ..pipeline.kws_model import kws_info
        # the clip window the model was trained on (its mcuforge.kws metadata; 1 s when none)
        sources = frontend_sources(frontend, kws_info(graph, frontend, str(model)).window_samples)
    source = str(Path(model).resolve()) if Path(model).exists() else model
    extra_files, fields = {}, {}
    if quantised.agreement is not None:  # quantised here: the project keeps its int8 .tflite
        from ..frontends.tflite_writer import serialize_tflite
        extra_files[QUANTISED_FILE] = serialize_tflite(graph)
        fields = {"quantised_from": source, "quantisation": list(quantised.lines)}
        source = str((out_dir / QUANTISED_FILE).resolve())
    report = compile_model(graph, out_dir, core_name, sram_bytes, source=source, measure=not no_measure,
                           patch=schedule,
                           plan_options=PlanOptions().with_conventions(
                               depthwise_row_buffer=depthwise_row_buffer),
                           postprocess=postprocess, frontend=sources,
                           labels=tuple(labels.split(",")) if labels is not None else None,
                           extra_files=extra_files, report_fields=fields,
                           board=hardware.board, cycles=cycles,
                           optimise=optimise, avoid_scratch=_AVOID_SCRATCH[kernel_scratch])
    if schedule is not None:
        click.echo(f"patch schedule {report['schedule']}: peak {report['peak_activation_bytes']:,} B "
                   f"(input streamed {report['peak_activation_bytes_input_streamed']:,} B; layer-based "
                   f"{report['layer_peak_activation_bytes']:,} B), {report['patch']['mac_overhead']:,} "
                   "extra MACs")
    click.echo(f"wrote {out_dir}/ ({report['layers']} layers, {len(report['kernels'])} kernels, "
               f"target {report['target']}, {report['optimise']}"
               f"{', int8 model ' + QUANTISED_FILE if extra_files else ''})")
    if "postprocess" in report:
        post = report["postprocess"]
        click.echo(f"detection post-processing: mf_detect on {', '.join(post['outputs'])} "
                   f"(lookup tables and anchors {post['table_bytes']:,} B of Flash, "
                   f"{post['candidate_bytes']:,} B of candidates and boxes in .bss; score >= "
                   f"{post['score_threshold']}, IoU > {post['iou_threshold']} suppressed)")
    click.echo(f"arena {report['arena_bytes']:,} B (analytic peak {report['peak_activation_bytes']:,} B,"
               f" scratch growth {report['scratch_bytes']:,} B)")
    if report.get("state_bytes"):
        click.echo(f"persistent state {report['state_bytes']:,} B beside the arena (kept across "
                   "invocations; in .data/.bss)")
    if "measured_sram_bytes" in report:
        click.echo(f"Flash {report['flash_bytes']:,} B (.text {report['text_bytes']:,}, .rodata "
                   f"{report['rodata_bytes']:,}, .data {report['data_bytes']:,}); measured SRAM "
                   f"{report['measured_sram_bytes']:,} B (stack high-water "
                   f"{report['stack_high_water_bytes']:,} B)")
        click.echo(f"{report['instructions']:,} instructions on {report['instructions_target']} for "
                   f"{report['macs']:,} MACs: {report['macs_per_instruction']} MACs/instruction")
    if "inference" in report:
        echo_inference(report, hardware.board, cycles)
    if "frontend_flash_bytes" in report.get("frontend", {}):
        fe = report["frontend"]
        click.echo(f"front end {fe['name']}: Flash {fe['frontend_flash_bytes']:,} B, SRAM "
                   f"{fe['frontend_sram_bytes']:,} B; listen build measured SRAM "
                   f"{fe['listen_measured_sram_bytes']:,} B, Flash {fe['listen_flash_bytes']:,} B")


def echo_inference(report: dict, board, cycles: int | None) -> None:
    """The latency/energy lines of the report's ``inference`` entry (one per board)."""
    for estimate in board_estimates(report.get("instructions"), board, cycles):
        click.echo(estimate.describe())
    click.echo("latency/energy: an estimate (CPI = 1 assumed, datasheet Run-mode current) unless "
               "the cycles are measured; see report.json inference.formula")
