"""`mcuforge profile MODEL`: MACs, params, Flash, per-block and peak activation memory."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from ..analysis.conventions import DEFAULT_CONVENTIONS, MemoryConventions
from ..analysis.profile import ProfileReport, profile_graph
from ..errors import McuforgeError, UnsupportedOpError
from ..frontends.load import load_graph
from ..targets import get_board, parse_bytes
from .calibration import CalibrationRequest, calibration_options, int8_model, is_float_model
from .hardware import board_option, resolve_hardware, target_option
from .patch_options import max_macs_option


def _kb(value: int) -> str:
    return f"{value / 1024:,.1f}"


def print_profile(report: ProfileReport, board_name: str | None, console: Console) -> None:
    """The human table: one row per block, then the totals and the fit against the board."""
    table = Table(title=f"{report.model}" + (f" @ {report.resolution}px" if report.resolution else ""),
                  caption="memory in kB (1 kB = 1024 B), int8 activations, network input counted")
    for column in ("block", "kind", "output", "MACs (M)", "peak kB", "peak kB (no in-place)"):
        table.add_column(column, justify="left" if column in ("block", "kind", "output") else "right")
    for block in report.blocks:
        table.add_row(block.name, block.kind, "x".join(map(str, block.output_shape)),
                      f"{block.macs / 1e6:.2f}", _kb(block.peak_activation_bytes),
                      _kb(block.peak_activation_bytes_no_inplace))
    console.print(table)
    console.print(f"MACs               {report.macs:,}")
    console.print(f"params             {report.params:,}")
    console.print(f"Flash              {report.flash_bytes:,} B ({_kb(report.flash_bytes)} kB)")
    console.print(f"peak (in-place dw) {report.peak_activation_bytes:,} B ({_kb(report.peak_activation_bytes)} kB)"
                  f" at {report.peak_op}")
    console.print(f"peak (no in-place) {report.peak_activation_bytes_no_inplace:,} B")
    console.print(f"peak (input streamed, MCUNetV2 convention) {report.peak_activation_bytes_input_streamed:,} B")
    if board_name:
        board = get_board(board_name)
        fits_sram = report.peak_activation_bytes <= board.sram_bytes
        fits_flash = report.flash_bytes <= board.flash_bytes
        console.print(f"{board.description}: activations {'fit' if fits_sram else 'DO NOT fit'} "
                      f"({_kb(report.peak_activation_bytes)} of {_kb(board.sram_bytes)} kB), weights "
                      f"{'fit' if fits_flash else 'DO NOT fit'} ({_kb(report.flash_bytes)} of "
                      f"{_kb(board.flash_bytes)} kB Flash)")


@click.command("profile")
@click.argument("model")
@click.option("--resolution", type=int, default=None, help="Input resolution (zoo models, specs, configs).")
@click.option("--width", type=float, default=None, help="Width multiplier (scalable zoo families).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
@board_option("Check the fit against this MCU and draw its SRAM limit on --plot.")
@target_option()
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write per-block peak memory bars to this PNG.")
@click.option("--patch", default="none", show_default=True,
              help="Patch-based schedule: none, auto (fewest MACs under --sram/--board SRAM), "
                   "min-memory, or RxC@SPLIT (SPLIT = last block of the patch stage, e.g. 4x4@b4).")
@click.option("--halo", type=click.Choice(["none", "cols", "full", "any"]), default="none",
              show_default=True, help="Halo treatment: recompute (none) or cache; 'any' lets "
                                      "auto/min-memory pick.")
@click.option("--sram", default=None, help="SRAM budget for --patch auto (bytes, or with K/M).")
@max_macs_option()
@click.option("--overlap-pointwise/--no-overlap-pointwise",
              default=DEFAULT_CONVENTIONS.overlap_pointwise, show_default=True,
              help="--patch: let 1x1 convs write over their input (vMCU), as `compile` does.")
@click.option("--depthwise-row-buffer", is_flag=True,
              help="--patch: in-place depthwise convs keep a ring of output rows instead of a "
                   "whole channel plane.")
@click.option("--analytic-only", is_flag=True,
              help="A .tflite that mcuforge cannot compile (float32, int16, an op without a "
                   "kernel): print its analytic figures anyway instead of refusing it.")
@calibration_options
def command(model: str, resolution: int | None, width: float | None, as_json: bool,
            board: str | None, target: str | None, plot_path: str | None, patch: str, halo: str,
            sram: str | None, max_macs: float | None, overlap_pointwise: bool, depthwise_row_buffer: bool,
            analytic_only: bool, request: CalibrationRequest) -> None:
    """Profile MODEL (zoo name, spec string, JSON config, .tflite, .onnx or .pt2): MACs, params,
    Flash, memory. Zoo names, specs and configs are analytic descriptions; a .tflite must be one
    that mcuforge can compile (`ops.support`), unless --analytic-only. A float .pt2/.onnx is
    profiled as its float32 graph, or, with --calibration/--dataset, as the int8 graph that
    `compile` would build."""
    chosen_board = resolve_hardware(board, None, target, accepts_core=False).board
    if request.given and model.endswith((".pt2", ".onnx")):
        graph = int8_model(model, request, resolution, width).graph
    else:
        if request.given:
            raise McuforgeError("--calibration/--dataset apply to a float .pt2 or .onnx model (a "
                                "zoo model is profiled analytically; a .tflite is already int8)")
        graph = load_graph(model, resolution, width)
    if is_float_model(graph):
        click.echo(f"note: {model} is a float32 graph: its memory and Flash figures are float32 "
                   "bytes; give --calibration or --dataset for the int8 figures", err=True)
    if model.endswith(".tflite") and not analytic_only:
        from ..ops.support import refusal
        why = refusal(graph, c_code=True)
        if why is not None:
            raise UnsupportedOpError(f"{model}: cannot compile: {why} (--analytic-only prints the "
                                     "analytic figures anyway)")
    report = profile_graph(graph)
    options = MemoryConventions(overlap_pointwise=overlap_pointwise,
                                depthwise_row_buffer=depthwise_row_buffer)
    plan = None
    if patch != "none" or max_macs is not None:  # --max-macs without a search: refused there
        from dataclasses import replace

        from ..patch import resolve_schedule
        from ..patch.report import patch_summary
        budget = parse_bytes(sram) if sram else (chosen_board.sram_bytes if chosen_board else None)
        plan = resolve_schedule(graph, patch, options, budget, halo, max_mac_factor=max_macs)
        if plan is not None:
            report = replace(report, patch=patch_summary(graph, plan, options))
    if plot_path:
        from ..report.plots import plot_block_memory  # matplotlib only when a plot is asked for
        limit = chosen_board.sram_bytes if chosen_board else None
        series = {"layer-based (in-place dw)": [(b.name, b.peak_activation_bytes) for b in report.blocks]}
        if plan is not None:
            series[f"patch-based {plan.config.to_string()}"] = list(plan.per_block)
        plot_block_memory(series, plot_path, f"{report.model}: peak activation memory per block",
                          limit, f"{chosen_board.name} SRAM" if chosen_board else "SRAM")
    if as_json:
        payload = report.to_json()
        if chosen_board:
            payload["target"] = chosen_board.name
        click.echo(json.dumps(payload, indent=1))
    else:
        print_profile(report, chosen_board.name if chosen_board else None, Console())
        if plan is not None:
            from ..patch.report import print_patch
            print_patch(graph, plan, Console(), options)
        elif patch != "none":
            click.echo(f"--patch {patch}: layer-based execution is best (no patch schedule)")
        if plot_path:
            click.echo(f"wrote {plot_path}")
