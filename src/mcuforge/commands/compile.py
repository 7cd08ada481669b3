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
"""

from __future__ import annotations

from pathlib import Path

import click

from ..codegen.project import compile_model
from ..errors import McuforgeError
from ..frontends.load import load_graph
from ..ops.support import require_executable
from ..targets import parse_bytes
from ..planner.arena import PlanOptions
from .hardware import board_option, core_option, resolve_hardware, target_option
from .patch_options import max_macs_option

DEFAULT_CORE = "cortex-m7"
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
@click.option("--kernel-scratch", type=click.Choice(["auto", "avoid", "allow"]), default="auto",
              show_default=True,
              help="avoid: kernels without scratch where the fast kernels' scratch would grow the "
                   "arena (arena = analytic peak; slower convolutions there); allow: the fast "
                   "kernels everywhere (scratch may grow the arena); auto: allow, unless that "
                   "arena exceeds --sram.")
@click.option("--depthwise-row-buffer/--depthwise-plane", default=None,
              help="In-place depthwise convs keep a ring of output rows (default for layer-based "
                   "schedules) or a whole channel plane (docs/architecture.md's convention; patch schedules).")
def command(model: str, out_dir: Path, board: str | None, core: str | None, target: str | None,
            sram: str | None, patch: str, max_macs: float | None, head_path: Path | None, score: float | None,
            iou: float | None, no_measure: bool, kernel_scratch: str,
            depthwise_row_buffer: bool | None) -> None:
    """Generate the C project of MODEL (an int8 .tflite) in DIR and measure it."""
    hardware = resolve_hardware(board, core, target)
    core_name = hardware.core or DEFAULT_CORE
    if sram is not None:
        sram_bytes = parse_bytes(sram)
    else:
        sram_bytes = hardware.board.sram_bytes if hardware.board is not None else None
    source = str(Path(model).resolve()) if Path(model).exists() else model
    graph = load_graph(model)
    if graph.metadata.get("source") == "torch.export" or \
            graph.metadata.get("quantisation") == "float":  # a float .onnx
        raise McuforgeError(f"{model} is a float model: quantise it first with `mcuforge import "
                            f"{model} -o model.tflite --calibration data.npy`, then compile the .tflite")
    graph = require_executable(graph, model, c_code=True)
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
    report = compile_model(graph, out_dir, core_name, sram_bytes, source=source, measure=not no_measure,
                           patch=schedule,
                           plan_options=PlanOptions().with_conventions(
                               depthwise_row_buffer=depthwise_row_buffer),
                           postprocess=postprocess, avoid_scratch=_AVOID_SCRATCH[kernel_scratch])
    if schedule is not None:
        click.echo(f"patch schedule {report['schedule']}: peak {report['peak_activation_bytes']:,} B "
                   f"(input streamed {report['peak_activation_bytes_input_streamed']:,} B; layer-based "
                   f"{report['layer_peak_activation_bytes']:,} B), {report['patch']['mac_overhead']:,} "
                   "extra MACs")
    click.echo(f"wrote {out_dir}/ ({report['layers']} layers, {len(report['kernels'])} kernels, "
               f"target {report['target']})")
    if "postprocess" in report:
        post = report["postprocess"]
        click.echo(f"detection post-processing: mf_detect on {', '.join(post['outputs'])} "
                   f"(lookup tables and anchors {post['table_bytes']:,} B of Flash, "
                   f"{post['candidate_bytes']:,} B of candidates and boxes in .bss; score >= "
                   f"{post['score_threshold']}, IoU > {post['iou_threshold']} suppressed)")
    click.echo(f"arena {report['arena_bytes']:,} B (analytic peak {report['peak_activation_bytes']:,} B,"
               f" scratch growth {report['scratch_bytes']:,} B)")
    if "measured_sram_bytes" in report:
        click.echo(f"Flash {report['flash_bytes']:,} B (.text {report['text_bytes']:,}, .rodata "
                   f"{report['rodata_bytes']:,}, .data {report['data_bytes']:,}); measured SRAM "
                   f"{report['measured_sram_bytes']:,} B (stack high-water "
                   f"{report['stack_high_water_bytes']:,} B)")
        click.echo(f"{report['instructions']:,} instructions on {report['instructions_target']} for "
                   f"{report['macs']:,} MACs: {report['macs_per_instruction']} MACs/instruction")
