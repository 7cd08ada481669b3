"""`mcuforge bench MODEL --against tflm`: our analytic activation peak next to the arena that
TFLite Micro (the `tflite-micro` pip interpreter) allocates for the same file, with ratios. MODEL is
an int8 .tflite or a model that `compile` quantises first (`commands/calibration.py`).

TFLite Micro's ``head`` is its planned non-persistent tensors (activations, float I/O tensors of a
float-I/O model included); ``tail`` is its persistent allocations (tensor structs, quantisation data,
per-op buffers); ``total`` = head + tail. Ours counts int8 activations only (docs/architecture.md).

Latency and energy per inference (``--latency`` for every board, ``--board NAME`` for one): the
instructions of our generated C are counted on the Cortex-M7 build in unicorn (arm-none-eabi-gcc
builds it) and turned into an estimate by `mcuforge.analysis.latency_energy` (latency =
instructions x CPI / clock with CPI = 1 assumed; energy = V x I_run x latency with the board's
datasheet current); ``--cycles N`` measured on the board replaces the estimate (nothing is counted
then). Without these options bench compares memory only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import click

from ..analysis.conventions import REFERENCE_CONVENTIONS
from ..analysis.latency_energy import (FORMULA, NOTES as ESTIMATE_NOTES, InferenceEstimate, board_estimates,
                                       estimates_json, parse_cycles)
from ..analysis.memory import memory_profile, state_bytes
from ..rivals.tflm import TflmArena, measure_tflm_arena
from ..errors import McuforgeError
from ..frontends.tflite import read_tflite
from ..ir import DType, Graph
from ..ops.support import require_executable
from ..planner.arena import plan_arena
from .calibration import CalibrationRequest, calibration_options, echo_quantised, int8_model
from .hardware import board_option, resolve_hardware

NOTES = (
    "TFLite Micro's head holds its planned tensors, float input/output tensors included; "
    "its tail holds persistent structs (tensor and node structs, quantisation data, per-op buffers).",
    "ours: analytic peak of int8 activation tensors alive at once (network input counted; "
    "float I/O tensors of QUANTIZE/DEQUANTIZE edges not counted); planned arena: the static "
    "layout of the arena planner with its default options (in-place depthwise, overlapped "
    "pointwise), kernel scratch not included. 1 kB = 1024 B.",
)


@dataclass(frozen=True)
class BenchResult:
    """Our figures and TFLite Micro's for one model."""

    model: str
    path: str
    peak_activation_bytes: int
    peak_activation_bytes_no_inplace: int
    arena_bytes: int
    float_io_bytes: int
    tflm: TflmArena
    state_bytes: int = 0  # our persistent state (an LSTM's), beside the arena; TFLM's is in its tail
    inference: tuple[InferenceEstimate, ...] = ()  # latency/energy per board (empty: not asked)

    @property
    def tflm_total_over_ours(self) -> float:
        """TFLite Micro's total arena divided by our in-place peak."""
        return self.tflm.total / max(self.peak_activation_bytes, 1)

    @property
    def tflm_head_over_ours(self) -> float:
        """TFLite Micro's planned tensors divided by our in-place peak."""
        return self.tflm.head / max(self.peak_activation_bytes, 1)

    @property
    def tflm_head_over_arena(self) -> float:
        """TFLite Micro's planned tensors divided by our planned arena (layout against layout)."""
        return self.tflm.head / max(self.arena_bytes, 1)

    def to_json(self) -> dict:
        """The JSON-ready dict printed by ``--json``."""
        return {
            "model": self.model,
            "path": self.path,
            "ours": {
                "peak_activation_bytes": self.peak_activation_bytes,
                "peak_activation_bytes_no_inplace": self.peak_activation_bytes_no_inplace,
                "arena_bytes": self.arena_bytes,
                "state_bytes": self.state_bytes,
            },
            "tflm": {"total": self.tflm.total, "head": self.tflm.head, "tail": self.tflm.tail,
                     "tail_breakdown": dict(self.tflm.breakdown)},
            "float_io_bytes": self.float_io_bytes,
            "ratios": {"tflm_total_over_ours": round(self.tflm_total_over_ours, 4),
                       "tflm_head_over_ours": round(self.tflm_head_over_ours, 4),
                       "tflm_head_over_arena": round(self.tflm_head_over_arena, 4)},
            "notes": list(NOTES),
            **({"inference": estimates_json(list(self.inference))} if self.inference else {}),
        }


def float_io_bytes(graph: Graph) -> int:
    """Bytes of the float32 graph inputs and outputs (TFLite Micro plans them, we do not)."""
    names = set(graph.inputs) | set(graph.outputs)
    return sum(graph.tensors[n].nbytes for n in names if graph.tensors[n].dtype is DType.FLOAT32)


def bench_against_tflm(path: Path, estimates: bool = False, board=None,
                       cycles: int | None = None) -> BenchResult:
    """Our analytic peaks and TFLite Micro's measured arena for the .tflite file ``path`` (refused
    in one line, `ops.support`, when we cannot compile it: no figures for a model we cannot run).
    With ``estimates`` (or measured ``cycles``) also the latency and energy per inference on
    ``board`` (every board when None): from ``cycles`` when given, else from the instructions of
    our generated C counted on the Cortex-M7 build in unicorn."""
    graph = require_executable(read_tflite(path), str(path), c_code=True)
    inference: tuple[InferenceEstimate, ...] = ()
    if cycles is not None:
        inference = tuple(board_estimates(None, board, cycles))
    elif estimates:
        from ..codegen.project import count_instructions

        inference = tuple(board_estimates(count_instructions(graph, "cortex-m7"), board))
    # The analytic peaks under docs/architecture.md's (reference) conventions, the arena under the planner's.
    inplace = memory_profile(graph, REFERENCE_CONVENTIONS).peak_activation_bytes
    plain = memory_profile(graph, replace(REFERENCE_CONVENTIONS, inplace_depthwise=False)
                           ).peak_activation_bytes
    arena = plan_arena(graph).arena_bytes
    return BenchResult(graph.name, str(path), inplace, plain, arena, float_io_bytes(graph),
                       measure_tflm_arena(path), state_bytes(graph), inference)


def _kb(value: int) -> str:
    return f"{value / 1024:,.1f} kB"


def print_bench(result: BenchResult) -> None:
    """The human-readable comparison."""
    rows = [
        ("mcuforge peak, in-place depthwise", result.peak_activation_bytes),
        ("mcuforge peak, no in-place", result.peak_activation_bytes_no_inplace),
        ("mcuforge planned arena (default plan)", result.arena_bytes),
        ("TFLite Micro arena total", result.tflm.total),
        ("TFLite Micro head (planned tensors)", result.tflm.head),
        ("TFLite Micro tail (persistent)", result.tflm.tail),
    ]
    click.echo(f"{result.model} ({result.path})")
    for label, value in rows:
        click.echo(f"  {label:<38} {value:>12,} B  {_kb(value):>12}")
    if result.state_bytes:
        click.echo(f"  {'mcuforge persistent state (LSTM)':<38} {result.state_bytes:>12,} B  "
                   f"{_kb(result.state_bytes):>12}")
    if result.float_io_bytes:
        click.echo(f"  {'float I/O tensors (in TFLM head)':<38} {result.float_io_bytes:>12,} B  "
                   f"{_kb(result.float_io_bytes):>12}")
    click.echo(f"  TFLM total / ours = {result.tflm_total_over_ours:.2f}x, "
               f"TFLM head / ours = {result.tflm_head_over_ours:.2f}x, "
               f"TFLM head / our arena = {result.tflm_head_over_arena:.2f}x")
    for note in NOTES:
        click.echo(f"  note: {note}")
    print_inference(result.inference)


def print_inference(estimates: tuple[InferenceEstimate, ...]) -> None:
    """The latency/energy table: one line per board, then the formula and its assumptions."""
    if not estimates:
        return
    click.echo("latency and energy per inference (mcuforge's generated C):")
    for estimate in estimates:
        click.echo(f"  {estimate.describe()}")
    click.echo(f"  formula: {FORMULA}")
    for note in ESTIMATE_NOTES:
        click.echo(f"  note: {note}")


@click.command("bench")
@click.argument("model")
@click.option("--against", type=click.Choice(["tflm"]), default="tflm", show_default=True,
              help="The runtime to compare with (TFLite Micro, measured with the tflite-micro package).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
@click.option("--latency", "latency", is_flag=True,
              help="Also estimate latency and energy per inference on every board (counts our "
                   "instructions on the Cortex-M7 build in unicorn).")
@board_option("Latency and energy on this board (implies --latency for it alone).")
@click.option("--cycles", "cycles_text", default=None, metavar="N",
              help="Cycles of one inference measured on the --board: replace the latency estimate "
                   "(nothing is counted then).")
@calibration_options
def command(model: str, against: str, as_json: bool, latency: bool, board: str | None,
            cycles_text: str | None, request: CalibrationRequest) -> None:
    """Compare our activation peak for MODEL with TFLite Micro's arena, and estimate latency and
    energy per inference per board. MODEL is an int8 .tflite, or any model `mcuforge compile` takes
    (a QDQ .onnx, a float .pt2/.onnx with --calibration or --dataset, a zoo name, spec or JSON
    config): it is quantised as compile does and both sides measure the same int8 .tflite."""
    chosen = resolve_hardware(board, None, None, accepts_core=False).board
    cycles = parse_cycles(cycles_text) if cycles_text is not None else None
    if cycles is not None and chosen is None:
        raise McuforgeError("--cycles is a count measured on one board: give --board too")
    estimate = dict(estimates=latency or chosen is not None, board=chosen, cycles=cycles)
    path = Path(model)
    if path.suffix == ".tflite":
        if request.given:
            click.echo("note: --calibration/--dataset not used (the model is already int8)", err=True)
        result = bench_against_tflm(path, **estimate)
    else:
        result = _bench_quantised(model, request, as_json, estimate)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        print_bench(result)


def _bench_quantised(model: str, request: CalibrationRequest, quiet: bool,
                     estimate: dict) -> BenchResult:
    """Quantise MODEL (`commands/calibration.py`) into a temporary .tflite and bench that
    (``estimate``: the latency/energy arguments of `bench_against_tflm`)."""
    import tempfile

    from ..frontends.tflite_writer import write_tflite

    quantised = int8_model(model, request)
    if not quiet:
        echo_quantised(quantised)
    with tempfile.TemporaryDirectory(prefix="mcuforge-bench-") as tmp:
        path = Path(tmp) / "model.tflite"
        write_tflite(quantised.graph, path)
        return replace(bench_against_tflm(path, **estimate), model=quantised.graph.name,
                       path=f"{model} (quantised)")
