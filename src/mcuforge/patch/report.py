"""A resolved patch schedule (`resolve.py`) exported and printed.

`patch_summary` is the JSON entry (the plan's figures, plus the same grid and
split under every halo mode, so caching's bytes and MAC savings sit beside recomputation's);
`print_patch` is the human text. Bytes; 1 kB = 1024 B.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..analysis.conventions import DEFAULT_CONVENTIONS, MemoryConventions
from ..ir import Graph
from .evaluate import PatchEvaluator, PatchPlan
from .geometry import PatchConfig
from .halo_cache import HALO_MODES


def halo_comparison(graph: Graph, plan: PatchPlan,
                    options: MemoryConventions = DEFAULT_CONVENTIONS) -> list[PatchPlan]:
    """The plan's grid and split under every halo mode (recompute, column cache, full cache)."""
    evaluator = PatchEvaluator(graph, options)
    return [plan if mode == plan.config.halo else
            evaluator.evaluate(PatchConfig(plan.config.grid, plan.config.split_block, mode))
            for mode in HALO_MODES]


def patch_summary(graph: Graph, plan: PatchPlan, options: MemoryConventions = DEFAULT_CONVENTIONS) -> dict:
    """JSON entry of a plan, with the halo-mode comparison."""
    payload = plan.to_json()
    payload["halo_modes"] = [
        {"halo": p.config.halo, "halo_cache_bytes": p.cache.total_bytes,
         "peak_activation_bytes": p.peak_activation_bytes,
         "peak_activation_bytes_input_streamed": p.peak_activation_bytes_input_streamed,
         "mac_overhead": p.mac_overhead, "macs": p.total_macs}
        for p in halo_comparison(graph, plan, options)]
    payload["units"] = ("bytes, 1 kB = 1024 B; peak_activation_bytes holds the network input in the "
                        "arena, *_input_streamed reads it from the caller's buffer (MCUNetV2 paper)")
    return payload


def _kb(value: int) -> str:
    return f"{value:,} B ({value / 1024:,.1f} kB)"


def print_patch(graph: Graph, plan: PatchPlan, console: Console,
                options: MemoryConventions = DEFAULT_CONVENTIONS) -> None:
    """Human summary: schedule, windows, per-stage and total peaks in both conventions, MACs."""
    stage = plan.stage
    total = plan.total_macs_layer
    console.print(f"patch schedule     {plan.config.to_string()}: the first blocks up to "
                  f"{stage.split_block} run {plan.config.grid[0]}x{plan.config.grid[1]} patches of "
                  f"{stage.split} {'x'.join(map(str, plan.split_shape[1:]))}")
    console.print(f"input patch        {plan.input_patch[0]}x{plan.input_patch[1]} px (receptive field "
                  f"of one output pixel {plan.receptive_field[0]}x{plan.receptive_field[1]} px)")
    console.print(f"patch stage peak   {_kb(plan.patch_stage_peak_bytes)} input in arena, "
                  f"{_kb(plan.patch_stage_peak_bytes_input_streamed)} input streamed "
                  f"(worst patch {plan.peak_patch}, op {plan.peak_op}; split buffer "
                  f"{plan.split_buffer_bytes:,} B, halo cache {plan.cache.total_bytes:,} B)")
    console.print(f"layer-based rest   {_kb(plan.rest_peak_bytes)}")
    console.print(f"peak (patches)     {_kb(plan.peak_activation_bytes)} input in arena; "
                  f"{_kb(plan.peak_activation_bytes_input_streamed)} input streamed (MCUNetV2 convention)")
    console.print(f"peak (layer-based) {_kb(plan.layer_peak_activation_bytes)} input in arena; "
                  f"{_kb(plan.layer_peak_activation_bytes_input_streamed)} input streamed")
    console.print(f"MACs               {plan.total_macs:,} = {total:,} + {plan.mac_overhead:,} "
                  f"({100 * plan.mac_overhead / total:+.2f}%; patch stage {plan.stage_macs_patch:,} vs "
                  f"{plan.stage_macs_layer:,} layer-based)")
    table = Table(title="halo treatment of the same grid and split",
                  caption="recompute = MCUNetV2; col-cache keeps the left neighbour's columns, "
                          "full-cache also the rows above; bytes; MAC overhead relative to the "
                          "whole network's layer-based MACs")
    for column in ("halo", "cache B", "stage peak B (streamed)", "peak B (arena)", "peak B (streamed)",
                   "MAC overhead", "%"):
        table.add_column(column, justify="left" if column == "halo" else "right")
    for other in halo_comparison(graph, plan, options):
        name = {"none": "recompute", "cols": "col-cache", "full": "full-cache"}[other.config.halo]
        table.add_row(name, f"{other.cache.total_bytes:,}",
                      f"{other.patch_stage_peak_bytes_input_streamed:,}", f"{other.peak_activation_bytes:,}",
                      f"{other.peak_activation_bytes_input_streamed:,}", f"{other.mac_overhead:,}",
                      f"{100 * other.mac_overhead / total:+.2f}")
    console.print(table)
    if plan.config.halo == "none":
        naive = plan.stage_macs_naive - plan.stage_macs_layer
        console.print(f"naive recomputation (every patch as large as the largest, padding computed): "
                      f"+{naive:,} MACs ({100 * naive / total:+.2f}%)")
