"""Our measured SRAM and instruction counts beside TensorFlow Lite Micro's, for every reference model.

For each model: `mcuforge compile` for Cortex-M7 (arena from the planner; .data/.bss from
arm-none-eabi-size; painted-stack high-water under QEMU; instructions of one inference in unicorn),
TFLite Micro's arena measured in the same run with the tflite-micro pip interpreter
(`analysis.tflm.measure_tflm_arena`: head = planned tensors, tail = persistent allocations), and the
figures of reference/numbers.json: TinyEngine's planner on the MCUNet models
(``tinyengine_planner_measured``) and TFLite Micro + CMSIS-NN on Cortex-M7 (``tflm_cmsis_nn_cortex_m7``:
instructions counted the same way, SRAM = arena + bss + data + stack). 1 kB = 1024 B.

Conventions, compared like with like where possible: our SRAM is arena + .data + .bss + stack and
counts the int8 network input; TFLite Micro's arena also holds the float I/O tensors of float models
(vww.tflite) and its persistent tail. Run: ``.venv/bin/python benchmarks/memory_vs_tflm.py``
(``--models kws_ref_model.tflite,...`` for a subset, ``--json out.json`` to keep the figures).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from mcuforge.analysis.tflm import measure_tflm_arena
from mcuforge.codegen.project import compile_model
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


def measure(relative: str, workdir: Path) -> dict:
    """All figures of one model."""
    path = reference_dir() / "models" / relative
    name = path.name
    report = compile_model(read_tflite(path), workdir / name.replace(".tflite", ""), "cortex-m7",
                           source=str(path))
    tflm = measure_tflm_arena(path)
    cmsis = published_numbers()["tflm_cmsis_nn_cortex_m7"]["models"].get(name, {})
    return {
        "model": name,
        "peak_activation_bytes": report["peak_activation_bytes"],
        "arena_bytes": report["arena_bytes"],
        "measured_sram_bytes": report["measured_sram_bytes"],
        "flash_bytes": report["flash_bytes"],
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


def _ratio(theirs: int | None, ours: int) -> str:
    return f"{theirs / ours:5.2f}x" if theirs else "    -"


def _num(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def print_table(rows: list[dict]) -> None:
    """The comparison table (bytes; ratios are theirs / ours: > 1 means we need less)."""
    header = (f"{'model':34} {'peak':>8} {'arena':>8} {'our SRAM':>9} {'TFLM arena':>10} {'ratio':>6} "
              f"{'TFLM+CMSIS SRAM':>15} {'TinyEngine':>10} {'ratio':>6} {'our instr':>12} "
              f"{'MAC/instr':>9} {'TFLM+CMSIS instr':>16} {'MAC/instr':>9} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        ours = r["measured_sram_bytes"]
        print(f"{r['model']:34} {_num(r['peak_activation_bytes']):>8} {_num(r['arena_bytes']):>8} "
              f"{_num(ours):>9} {_num(r['tflm_arena_total']):>10} {_ratio(r['tflm_arena_total'], ours):>6} "
              f"{_num(r['tflm_cmsis_sram_total']):>15} {_num(r['tinyengine_sram']):>10} "
              f"{_ratio(r['tinyengine_sram'], ours):>6} {_num(r['instructions']):>12} "
              f"{r['macs_per_instruction']:>9.3f} {_num(r['tflm_cmsis_instructions']):>16} "
              f"{(r['tflm_cmsis_macs_per_instruction'] or 0):>9.3f} "
              f"{_ratio(r['tflm_cmsis_instructions'], r['instructions']):>6}")
    print("bytes, 1 kB = 1024 B; our SRAM = arena + .data + .bss + stack high-water (Cortex-M7, QEMU); "
          "TFLM arena = tflite-micro pip print_allocations total (head + tail; float I/O tensors of "
          "vww.tflite included); TinyEngine = numbers.json layer_inplace + im2col + kernel; "
          "instructions of one inference, unicorn, same counting as numbers.json.")


def main(argv: list[str] | None = None) -> int:
    """Measure and print; optionally write the rows as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated file names (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    wanted = {m.strip() for m in args.models.split(",") if m.strip()}
    models = [m for m in MODELS if not wanted or Path(m).name in wanted]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mcuforge-bench-") as tmp:
        for relative in models:
            print(f"measuring {relative} ...", file=sys.stderr, flush=True)
            rows.append(measure(relative, Path(tmp)))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
