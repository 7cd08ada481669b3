"""Our measured SRAM and instruction counts beside TensorFlow Lite Micro's, for every reference model.

For each model: `mcuforge compile` for Cortex-M7 (arena from the planner; .data/.bss from
arm-none-eabi-size; painted-stack high-water under QEMU; instructions of one inference in unicorn),
TFLite Micro's arena measured in the same run with the tflite-micro pip interpreter
(`rivals.tflm.measure_tflm_arena`: head = planned tensors, tail = persistent allocations), and the
figures of reference/numbers.json: TinyEngine's planner on the MCUNet models
(``tinyengine_planner_measured``) and TFLite Micro + CMSIS-NN on Cortex-M7 (``tflm_cmsis_nn_cortex_m7``:
instructions counted the same way, SRAM = arena + bss + data + stack). 1 kB = 1024 B.

Conventions, compared like with like where possible: our SRAM is arena + .data + .bss + stack and
counts the int8 network input; TFLite Micro's arena also holds the float I/O tensors of float models
(vww.tflite) and its persistent tail. Run: ``.venv/bin/python benchmarks/memory_vs_tflm.py``
(``--models kws_ref_model.tflite,...`` for a subset, ``--json out.json`` to keep the figures).

Each model is compiled twice: layer by layer, and with the patch schedule ``--patch min-memory``
picks for the generated C (`codegen.patch_emit.resolve_c_patch`: the smallest peak among the
schedules the C runs, row strips and square grids, halos recomputed or cached; with ``--max-macs F``
within F x the layer-based MACs; models without a convolutional first stage stay layer-based).
``--avoid-scratch`` builds both with kernels without scratch where scratch would grow the arena.
The ratio to TFLite Micro is taken on the smaller of the two measured SRAM figures, and the schedule
and its MAC overhead are printed beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from mcuforge.rivals.tflm import measure_tflm_arena
from mcuforge.codegen.patch_emit import resolve_c_patch
from mcuforge.codegen.project import compile_model
from mcuforge.errors import McuforgeError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.reference import published_numbers, reference_dir

MODELS = [
    "tflite_micro/hello_world_int8.tflite",
    "tflite_micro/micro_speech_quantized.tflite",
    "mlperf_tiny/ad01_int8.tflite",
    "mlperf_tiny/kws_ref_model.tflite",
    "mlperf_tiny/pretrainedResnet_quant.tflite",
    "tflite_micro/person_detect.tflite",
    "mlperf_tiny/vww_96_int8.tflite",
    "tinyengine/vww.tflite",
    "mcunet/mcunet-320kb-1mb_imagenet.tflite",
]

_TINYENGINE = {
    "vww.tflite": "vww.tflite (mcunet-vww1, 80x80)",
    "mcunet-320kb-1mb_imagenet.tflite": "mcunet-320kb-1mb_imagenet.tflite (mcunet-in3)",
}


def tinyengine_sram(name: str) -> int | None:
    """TinyEngine's planner figure (in-place layer schedule + im2col + kernel buffers), if listed."""
    entry = published_numbers()["tinyengine_planner_measured"].get(_TINYENGINE.get(name, ""))
    if entry is None:
        return None
    return entry["layer_inplace"] + entry["im2col"] + entry["kernel"]


def measure(relative: str, workdir: Path, max_macs: float | None = None,
            avoid_scratch: bool = False) -> dict:
    """All figures of one model (``max_macs``: the MAC limit of the patch schedule, ``--max-macs``;
    ``avoid_scratch``: kernels without scratch where scratch would grow the arena)."""
    path = reference_dir() / "models" / relative
    name = path.name
    graph = read_tflite(path)
    report = compile_model(graph, workdir / name.replace(".tflite", ""), "cortex-m7",
                           source=str(path), avoid_scratch=avoid_scratch)
    patched = _patched(graph, path, workdir, max_macs, avoid_scratch)
    tflm = measure_tflm_arena(path)
    cmsis = published_numbers()["tflm_cmsis_nn_cortex_m7"]["models"].get(name, {})
    return {
        "model": name,
        "peak_activation_bytes": report["peak_activation_bytes"],
        "arena_bytes": report["arena_bytes"],
        "measured_sram_bytes": report["measured_sram_bytes"],
        "flash_bytes": report["flash_bytes"],
        "patch_schedule": patched["schedule"] if patched else None,
        "patch_measured_sram_bytes": patched["measured_sram_bytes"] if patched else None,
        "patch_arena_bytes": patched["arena_bytes"] if patched else None,
        "patch_extra_macs": patched["macs"] - report["macs"] if patched else None,
        "tflm_arena_total": tflm.total,
        "tflm_arena_head": tflm.head,
        "tflm_cmsis_sram_total": cmsis.get("sram_total"),
        "tinyengine_sram": tinyengine_sram(name),
        "macs": report["macs"],
        "instructions": report["instructions"],
        "macs_per_instruction": report["macs_per_instruction"],
        "tflm_cmsis_instructions": cmsis.get("instructions"),
        "tflm_cmsis_macs_per_instruction": cmsis.get("macs_per_instr"),
    }


def _patched(graph, path: Path, workdir: Path, max_macs: float | None,
             avoid_scratch: bool) -> dict | None:
    """The report of the ``--patch min-memory [--max-macs F]`` build, or None when the C keeps the
    model layer-based (no convolutional first stage, or no schedule below the layer-based peak)."""
    try:
        config = resolve_c_patch(graph, "min-memory", max_mac_factor=max_macs)
    except McuforgeError as error:  # no patch stage at all (e.g. a fully connected model)
        print(f"  {path.name}: layer-based only ({error})", file=sys.stderr)
        return None
    if config is None:
        return None
    return compile_model(graph, workdir / (path.stem + "-patch"), "cortex-m7", source=str(path),
                         patch=config, avoid_scratch=avoid_scratch)


def ours(row: dict) -> int:
    """Our measured SRAM: the smaller of the layer-based and the patch-based build."""
    return min(v for v in (row["measured_sram_bytes"], row["patch_measured_sram_bytes"]) if v)


def _ratio(theirs: int | None, ours: int) -> str:
    return f"{theirs / ours:5.2f}x" if theirs else "    -"


def _num(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def print_table(rows: list[dict]) -> None:
    """The comparison table (bytes; ratios are theirs / ours: > 1 means we need less)."""
    header = (f"{'model':34} {'peak':>8} {'arena':>8} {'our SRAM':>9} {'patch schedule':>16} "
              f"{'extra MACs':>10} {'SRAM':>8} {'TFLM arena':>10} {'ratio':>6} "
              f"{'TFLM+CMSIS SRAM':>15} {'TinyEngine':>10} {'ratio':>6} {'our instr':>12} "
              f"{'MAC/instr':>9} {'TFLM+CMSIS instr':>16} {'MAC/instr':>9} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        best = ours(r)
        extra = (f"{100 * r['patch_extra_macs'] / r['macs']:+.1f}%"
                 if r["patch_extra_macs"] is not None else "-")
        print(f"{r['model']:34} {_num(r['peak_activation_bytes']):>8} {_num(r['arena_bytes']):>8} "
              f"{_num(r['measured_sram_bytes']):>9} {r['patch_schedule'] or '-':>16} {extra:>10} "
              f"{_num(r['patch_measured_sram_bytes']):>8} "
              f"{_num(r['tflm_arena_total']):>10} {_ratio(r['tflm_arena_total'], best):>6} "
              f"{_num(r['tflm_cmsis_sram_total']):>15} {_num(r['tinyengine_sram']):>10} "
              f"{_ratio(r['tinyengine_sram'], best):>6} {_num(r['instructions']):>12} "
              f"{r['macs_per_instruction']:>9.3f} {_num(r['tflm_cmsis_instructions']):>16} "
              f"{(r['tflm_cmsis_macs_per_instruction'] or 0):>9.3f} "
              f"{_ratio(r['tflm_cmsis_instructions'], r['instructions']):>6}")
    print("bytes, 1 kB = 1024 B; our SRAM = arena + .data + .bss + stack high-water (Cortex-M7, QEMU), "
          "layer-based, then with the --patch min-memory schedule (SRAM; extra MACs of its halo "
          "recomputation); ratios on the smaller; instructions are the layer-based build's; "
          "TFLM arena = tflite-micro pip print_allocations total (head + tail; float I/O tensors of "
          "vww.tflite included); TinyEngine = numbers.json layer_inplace + im2col + kernel; "
          "instructions of one inference, unicorn, same counting as numbers.json.")


def main(argv: list[str] | None = None) -> int:
    """Measure and print; optionally write the rows as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated file names (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--max-macs", type=float, default=None,
                        help="MAC limit of the patch schedule (as `compile --max-macs`)")
    parser.add_argument("--avoid-scratch", action="store_true",
                        help="kernels without scratch where it would grow the arena (as "
                             "`compile --kernel-scratch avoid`)")
    args = parser.parse_args(argv)
    wanted = {m.strip() for m in args.models.split(",") if m.strip()}
    models = [m for m in MODELS if not wanted or Path(m).name in wanted]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mcuforge-bench-") as tmp:
        for relative in models:
            print(f"measuring {relative} ...", file=sys.stderr, flush=True)
            rows.append(measure(relative, Path(tmp), args.max_macs, args.avoid_scratch))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
