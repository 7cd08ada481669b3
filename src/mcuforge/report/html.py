"""The HTML report of a run: figures redrawn from the saved stage results, and the final table.

Sections appear for the stages that finished (see `results.py` for the files):
``search`` (FLOPs CDFs of stage 1, accuracy-memory points of the evolutionary search),
``compile`` (per-block memory layer- vs patch-based with the SRAM limit; the arena timeline),
and the final table from ``train``, ``quantize``, ``compile``, ``mcu`` and ``tflm``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ..analysis.latency_energy import FORMULA, estimate_inference, format_ms, format_uj
from ..atomic import write_text_atomic
from ..reference import published_numbers
from ..targets import get_board
from . import plots
from .results import load_all


@dataclass
class Table:
    """A table of the report."""

    id: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Section:
    """A titled section with images and tables."""

    id: str
    title: str
    text: str = ""
    images: list[dict] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def _kb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024:,.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _search_section(search: dict, figures: Path) -> Section:
    section = Section("search", "TinyNAS search",
                      f"Target {search.get('target', '?')}: SRAM {_kb(search.get('sram_bytes'))} kB, "
                      f"Flash {_kb(search.get('flash_bytes'))} kB. Chosen space: {search.get('chosen_space', '?')}. "
                      f"Best network: {search.get('best_spec', '?')}")
    if search.get("space_macs"):
        plots.plot_cdfs({k: [v / 1e6 for v in vs] for k, vs in search["space_macs"].items()},
                        figures / "flops_cdf.png", "Stage 1: MACs of sampled networks that fit",
                        "MACs (M)")
        section.images.append({"src": "flops_cdf.png", "alt": "FLOPs (MACs) CDFs of the search spaces"})
    if search.get("candidates"):
        points: dict[str, list[tuple[float, float]]] = {}
        for item in search["candidates"]:
            points.setdefault(item.get("kind", "evolution"), []).append(
                (item["sram_bytes"] / 1024, 100 * item["accuracy"]))
        plots.plot_points(points, figures / "search_points.png",
                          "Evolutionary search: accuracy vs peak SRAM", "peak SRAM (kB)",
                          "held-out accuracy (%)", limit_x=search.get("sram_bytes", 0) / 1024 or None)
        section.images.append({"src": "search_points.png", "alt": "accuracy-memory points of the search"})
    return section


def _memory_section(compiled: dict, figures: Path, target_sram: int | None) -> Section:
    section = Section("memory", "Activation memory",
                      f"Schedule: {compiled.get('schedule', 'layer')}. Arena {compiled.get('arena_bytes', 0):,} B, "
                      f"analytic peak {compiled.get('peak_activation_bytes', 0):,} B.")
    series = {}
    if compiled.get("blocks_layer"):
        series["layer-based"] = [tuple(row) for row in compiled["blocks_layer"]]
    if compiled.get("blocks_patch"):
        label = f"patch-based {compiled.get('patch_schedule_shown') or ''}".strip()
        series[label] = [tuple(row) for row in compiled["blocks_patch"]]
    if series:
        plots.plot_block_memory(series, figures / "block_memory.png", "Peak activation memory per block",
                                target_sram)
        section.images.append({"src": "block_memory.png", "alt": "per-block memory, layer vs patch"})
    if compiled.get("arena_placements"):
        plots.plot_arena_timeline([tuple(row) for row in compiled["arena_placements"]],
                                  compiled["arena_bytes"], figures / "arena_timeline.png",
                                  "Arena: tensor lifetimes and offsets")
        section.images.append({"src": "arena_timeline.png", "alt": "arena timeline"})
    return section


def _inference_rows(results: dict[str, dict]) -> list[list[str]]:
    """Latency and energy per inference on the run's board (`analysis.latency_energy`), from the
    counted instructions; no rows when the board or the count is missing."""
    compiled = results.get("compile", {})
    name = compiled.get("board") or results.get("search", {}).get("target")
    if not name or not compiled.get("instructions"):
        return []
    estimate = estimate_inference(get_board(name), compiled["instructions"])
    board = estimate.board
    energy = (format_uj(estimate.energy_j) if estimate.energy_j is not None
              else "no datasheet run current on record")
    return [[f"estimated latency on {board.name} at {board.clock_hz / 1e6:g} MHz "
             f"(instructions x CPI {estimate.cpi:g} / clock)", format_ms(estimate.latency_s)],
            [f"estimated energy per inference on {board.name} (V x I_run x latency)", energy]]


def _final_table(results: dict[str, dict]) -> Section:
    train = results.get("train", {})
    quant = results.get("quantize", {})
    compiled = results.get("compile", {})
    mcu = results.get("mcu", {})
    tflm = results.get("tflm", {})
    instructions = compiled.get("instructions")
    rows = [
        ["accuracy, host float", _pct(train.get("float_accuracy"))],
        ["accuracy, int8 reference runtime", _pct(quant.get("int8_accuracy"))],
        [f"accuracy, MCU (QEMU, {mcu.get('images', 0)} images)", _pct(mcu.get("accuracy"))],
        ["MACs", f"{compiled.get('macs', 0):,}"],
        ["Flash (text + rodata + data)", f"{compiled.get('flash_bytes', 0):,} B"],
        ["measured SRAM (arena + scratch + data + bss + stack)", f"{compiled.get('measured_sram_bytes', 0):,} B"],
        ["instructions per inference (Cortex-M7, unicorn)", f"{instructions:,}" if instructions else "-"],
        *_inference_rows(results),
        ["TFLite Micro arena, same model (total / head / tail)",
         f"{tflm['total']:,} / {tflm['head']:,} / {tflm['tail']:,} B" if tflm else "-"],
    ]
    section = Section("final", "Final figures")
    section.tables.append(Table("final", ["figure", "value"], rows,
                                "TFLite Micro counts float I/O tensors and persistent structs in its arena. "
                                f"Latency and energy are estimates: {FORMULA}."))
    try:
        published = published_numbers()["tinyengine_planner_measured"]
    except Exception:  # reference folder absent: the report still renders without the context rows
        published = {}
    if published:
        context = [[name, f"{v['layer_inplace']:,}", f"{v.get('patch_3x3_split5', v.get('sum_inplace_plus_scratch', 0)):,}"]
                   for name, v in published.items()]
        section.tables.append(Table("tinyengine", ["TinyEngine published model", "layer-based in-place (B)",
                                                   "patch / with scratch (B)"], context,
                                    "TinyEngine's published planner figures (reference/numbers.json), for context."))
    return section


def render_report(run_dir: str | Path) -> Path:
    """Redraw the figures and write ``DIR/report/index.html`` from the saved stage results."""
    run_dir = Path(run_dir)
    results = load_all(run_dir)
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    target_sram = None
    search = results.get("search")
    if search and search.get("target"):
        target_sram = search.get("sram_bytes") or get_board(search["target"]).sram_bytes
    sections = []
    if search:
        sections.append(_search_section(search, out))
    if results.get("compile"):
        sections.append(_memory_section(results["compile"], out, target_sram))
    sections.append(_final_table(results))
    environment = jinja2.Environment(loader=jinja2.PackageLoader("mcuforge.report", "templates"),
                                     autoescape=jinja2.select_autoescape(["html", "j2"]))
    html = environment.get_template("index.html.j2").render(
        title="mcuforge report", run_dir=str(run_dir), sections=sections,
        conventions="Activations int8; the network input is counted unless noted.")
    return write_text_atomic(out / "index.html", html)
