"""Our generated C beside TensorFlow Lite Micro + CMSIS-NN on Cortex-M7: instructions, Flash, SRAM.

For every reference model (and every file ``--models`` names): ``mcuforge compile --core
cortex-m7`` with its defaults (instructions of one ``mcuforge_invoke`` counted in unicorn, per function, so per op
class; Flash from ``arm-none-eabi-size``; SRAM = arena + .data + .bss + stack high-water under QEMU;
code bytes per kernel from the ELF symbol table) and TFLite Micro + CMSIS-NN built by the kit in
``../shared/rivals/tflm_cmsis_nn`` for the same core (`rivals.tflm_kit`: instructions inside one
``MicroInterpreter::Invoke()``, counted the same way), both on the same input (uniform random int8,
numpy ``default_rng(0)``; a float-input model gets its dequantised values). The outputs must be
equal byte for byte (a float output is quantised back with its DEQUANTIZE's scale and zero point);
a model whose outputs differ is reported and makes the exit status 1.

``--rival published`` takes TFLite Micro's figures from reference/numbers.json
(``tflm_cmsis_nn_cortex_m7``, the same kit and method) instead of building it, and checks our output
against the tflite-micro pip interpreter (x86 reference kernels; the kit's README records its
outputs equal to the CMSIS-NN builds' on these models).

Op classes of our instructions: pointwise (1x1 conv), depthwise, other conv (im2col, transpose,
16x8 convs), FC, elementwise/other (add, pool, softmax, pad, the copies of ``mcuforge_invoke``,
memcpy/memset). Instructions are not cycles: a Cortex-M7 issues up to two per cycle, loads and
multiplies stall; the count is exact and repeatable for one input. MACs as numbers.json counts them.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/speed_vs_tflm.py [--models kws_ref_model.tflite,...]
[--json out.json] [--rival kit|published]`` (7 min on a shared 2-core machine once the kit's library
is built; its first build takes 30 min or more there).

Measured 2026-12-06 (``benchmarks/speed_vs_tflm.py``, commit 8c1d825, kit build; every output
bit-exact with TFLite Micro + CMSIS-NN's), Cortex-M7 instructions of one inference, ours before the
kernels of issue #17 (81a1f9e, `mcuforge compile` defaults) -> now, TFLite Micro + CMSIS-NN, ratio:

    ad01_int8                 571,142 ->     495,465      583,161   1.18x
    kws_ref_model           4,930,904 ->   3,757,761    7,642,009   2.03x  (Plumerai F746: 3.83 M cycles)
    pretrainedResnet_quant 20,660,334 ->  14,274,856   30,025,657   2.10x  (13.6 M)
    vww_96_int8            15,033,756 ->  11,883,332   24,025,128   2.02x  (7.36 M)
    person_detect          13,961,683 ->  11,103,988   22,715,447   2.05x
    vww (TinyEngine)       25,874,310 ->  20,864,008   47,794,999   2.29x
    mcunet-in3            165,418,232 -> 127,981,919  387,942,635   3.03x

MACs per instruction now: 0.53 / 0.71 / 0.88 / 0.63 / 0.64 / 0.56 / 0.64 (TFLM 0.21-0.45). By class
(kws): pointwise 0.89, depthwise 0.31, other conv 0.72; (mcunet-in3) 0.76 / 0.53 / 0.50. Flash
ours / TFLM: kws 38,325 / 106,828 B, ResNet-8 95,341 / 149,444 B, vww_96 270,405 / 386,180 B,
mcunet-in3 901,333 B (weights 843,512 B + 57,821 B) / 1,061,052 B. SRAM ours / TFLM: kws 9,138 /
24,264 B, ResNet-8 50,732 / 56,440 B, vww_96 46,632 / 102,152 B, mcunet-in3 217,900 / 504,740 B.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import hashlib

import numpy as np
from tqdm import tqdm

from mcuforge.codegen.edges import strip_edge_conversions
from mcuforge.codegen.project import compile_model, measurement_bytes
from mcuforge.errors import McuforgeError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.ir import DType, Graph
from mcuforge.planner.arena import PlanOptions
from mcuforge.reference import published_numbers, reference_dir
from mcuforge.rivals.tflm_kit import count_tflm_cmsis_nn, tflm_python_outputs

MODELS = [
    "mlperf_tiny/ad01_int8.tflite",
    "mlperf_tiny/kws_ref_model.tflite",
    "mlperf_tiny/pretrainedResnet_quant.tflite",
    "mlperf_tiny/vww_96_int8.tflite",
    "tflite_micro/person_detect.tflite",
    "tinyengine/vww.tflite",
    "mcunet/mcunet-320kb-1mb_imagenet.tflite",
]

# Our op classes (codegen.project._op_class: the kernel template) -> the benchmark's five.
CLASSES = ("pointwise", "depthwise", "other conv", "FC", "elementwise/other")
_CLASS_OF = {"pointwise_1x1": "pointwise", "depthwise": "depthwise", "depthwise_inplace": "depthwise",
             "depthwise_rowring": "depthwise", "depthwise_s16": "depthwise",
             "conv_im2col": "other conv", "conv_s16": "other conv", "transpose_conv": "other conv",
             "fully_connected": "FC", "fully_connected_s16": "FC"}

# Plumerai's MLPerf Tiny v1.1 STM32F746 cycles (issue #17): the bar for three models.
PLUMERAI_CYCLES = {"vww_96_int8.tflite": 7_360_000, "kws_ref_model.tflite": 3_830_000,
                   "pretrainedResnet_quant.tflite": 13_600_000}


@dataclass(frozen=True)
class Rival:
    """TFLite Micro + CMSIS-NN's figures for one model (None: not known) and the output check."""

    instructions: int | None
    flash_bytes: int | None
    model_bytes: int | None
    sram_bytes: int | None
    outputs_equal: bool
    source: str


def model_inputs(graph: Graph) -> list[np.ndarray]:
    """The measured input of `codegen.project` for each graph input, as the .tflite takes it:
    int8 as is, float as the values the int8 input dequantises to."""
    edges = strip_edge_conversions(graph)
    raw = np.frombuffer(measurement_bytes(edges.graph), dtype=np.int8)
    arrays, offset = [], 0
    for name, int8_name in zip(graph.inputs, edges.graph.inputs):
        tensor, q = graph.tensors[name], edges.graph.tensors[int8_name]
        values = raw[offset:offset + q.nbytes].reshape(q.shape)
        offset += q.nbytes
        if tensor.dtype is DType.FLOAT32:
            values = ((values.astype(np.float32) - q.quant.zero_point[0])
                      * np.float32(q.quant.scale[0])).astype(np.float32)
        arrays.append(values)
    return arrays


def output_digest(graph: Graph, outputs: tuple[np.ndarray, ...]) -> str:
    """SHA-256 of the int8 outputs (float outputs quantised back), as our report gives it."""
    edges = strip_edge_conversions(graph)
    parts = []
    for array, name in zip(outputs, edges.graph.outputs):
        if array.dtype == np.float32:
            quant = edges.graph.tensors[name].quant
            array = np.clip(np.round(array / np.float32(quant.scale[0])) + quant.zero_point[0],
                            -128, 127)
        parts.append(np.asarray(array).astype(np.int8).tobytes())
    return hashlib.sha256(b"".join(parts)).hexdigest()


def measure_rival(path: Path, graph: Graph, inputs: list[np.ndarray], digest: str, mode: str,
                  workdir: Path) -> Rival:
    """TFLite Micro + CMSIS-NN built and counted by the kit, or numbers.json's figures."""
    if mode == "kit":
        counted = count_tflm_cmsis_nn(path, workdir, inputs, "cortex-m7")
        return Rival(counted.instructions, counted.flash_bytes, counted.model_bytes, counted.sram_bytes,
                     output_digest(graph, counted.outputs) == digest, "kit build, unicorn")
    entry = published_numbers()["tflm_cmsis_nn_cortex_m7"]["models"].get(path.name, {})
    equal = output_digest(graph, tflm_python_outputs(path, inputs, len(graph.outputs))) == digest
    return Rival(entry.get("instructions"), entry.get("flash_int8_regs"), entry.get("model_bytes"),
                 entry.get("sram_total"), equal, "numbers.json; outputs: tflite-micro pip")


def measure(path: Path, workdir: Path, mode: str) -> dict:
    """All figures of one model."""
    graph = read_tflite(path)
    # As `mcuforge compile` builds a layer-based model by default (in-place depthwise with a ring of
    # output rows).
    report = compile_model(graph, workdir / path.stem, "cortex-m7", source=str(path),
                           plan_options=PlanOptions().with_conventions(depthwise_row_buffer=True))
    inputs = model_inputs(graph)
    rival = measure_rival(path, graph, inputs, report["measured_output_sha256"], mode,
                          workdir / f"{path.stem}-tflm")
    classes = {c: {"instructions": 0, "macs": 0, "code_bytes": 0} for c in CLASSES}
    for name, entry in report["by_op_class"].items():
        target = classes[_CLASS_OF.get(name, "elementwise/other")]
        for key in target:
            target[key] += entry.get(key) or 0
    for entry in classes.values():
        entry["macs_per_instruction"] = (round(entry["macs"] / entry["instructions"], 4)
                                         if entry["instructions"] and entry["macs"] else None)
    ours = report["instructions"]
    return {
        "model": path.name, "macs": report["macs"],
        "ours": {"instructions": ours, "macs_per_instruction": report["macs_per_instruction"],
                 "flash_bytes": report["flash_bytes"], "weight_bytes": report["weight_bytes"],
                 "flash_code_bytes": report["flash_bytes"] - report["weight_bytes"],
                 "sram_bytes": report["measured_sram_bytes"], "by_class": classes,
                 "code_bytes_per_kernel": report["code_bytes_per_kernel"]},
        "tflm_cmsis_nn": {
            "instructions": rival.instructions,
            "macs_per_instruction": (round(report["macs"] / rival.instructions, 4)
                                     if rival.instructions else None),
            "flash_bytes": rival.flash_bytes, "model_bytes": rival.model_bytes,
            "flash_code_bytes": (rival.flash_bytes - rival.model_bytes
                                 if rival.flash_bytes and rival.model_bytes else None),
            "sram_bytes": rival.sram_bytes, "source": rival.source},
        "instructions_ratio": round(rival.instructions / ours, 3) if rival.instructions else None,
        "outputs_equal": rival.outputs_equal,
        "plumerai_stm32f746_cycles": PLUMERAI_CYCLES.get(path.name),
    }


def _num(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def print_rows(rows: list[dict]) -> None:
    """One block per model: the comparison line, then where our instructions go."""
    for r in rows:
        o, t = r["ours"], r["tflm_cmsis_nn"]
        ratio = f"{r['instructions_ratio']:.2f}x fewer" if r["instructions_ratio"] else "-"
        print(f"{r['model']}  ({_num(r['macs'])} MACs; outputs "
              f"{'bit-exact' if r['outputs_equal'] else 'DIFFER'}; TFLM: {t['source']})")
        print(f"  instructions  ours {_num(o['instructions']):>12}  TFLM+CMSIS-NN "
              f"{_num(t['instructions']):>12}  {ratio}   MAC/instr ours {o['macs_per_instruction']:.3f}"
              f" TFLM {t['macs_per_instruction'] or 0:.3f}")
        if r["plumerai_stm32f746_cycles"]:
            bar = r["plumerai_stm32f746_cycles"]
            print(f"  Plumerai STM32F746: {bar:,} cycles (ours are instructions, not cycles): "
                  f"{'within' if o['instructions'] <= bar else 'above'} by "
                  f"{abs(o['instructions'] - bar):,}")
        print(f"  Flash  ours {_num(o['flash_bytes'])} B (weights {_num(o['weight_bytes'])} + code/other "
              f"{_num(o['flash_code_bytes'])})  TFLM {_num(t['flash_bytes'])} B (model "
              f"{_num(t['model_bytes'])} + code/other {_num(t['flash_code_bytes'])})")
        print(f"  SRAM   ours {_num(o['sram_bytes'])} B  TFLM {_num(t['sram_bytes'])} B")
        for name, c in o["by_class"].items():
            if c["instructions"]:
                mpi = f"{c['macs_per_instruction']:.3f}" if c["macs_per_instruction"] else "    -"
                share = 100 * c["instructions"] / o["instructions"]
                print(f"    {name:<18} {c['instructions']:>12,} instr ({share:5.1f} %)  {mpi} MAC/instr"
                      f"  code {c['code_bytes']:,} B")
    print("Cortex-M7, unicorn, one inference on default_rng(0) int8; instructions are not cycles. "
          "Flash: ours .text+.rodata+.data (weights = the constant arrays of the layers); TFLM "
          ".text+.ARM.exidx+.data (model = the flatbuffer). SRAM: arena + .data + .bss + stack "
          "high-water. 1 kB = 1024 B.")


def main(argv: list[str] | None = None) -> int:
    """Measure and print; optionally write the rows as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="",
                        help="comma-separated reference file names or .tflite paths (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--rival", choices=("kit", "published"), default="kit",
                        help="build TFLite Micro + CMSIS-NN with the kit, or take numbers.json")
    args = parser.parse_args(argv)
    paths = []
    for item in (m.strip() for m in args.models.split(",") if m.strip()):
        known = [m for m in MODELS if Path(m).name == item]
        paths.append(reference_dir() / "models" / known[0] if known else Path(item))
    paths = paths or [reference_dir() / "models" / m for m in MODELS]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mcuforge-speed-") as tmp:
        for path in tqdm(paths, desc="models", unit="model", file=sys.stderr):
            try:
                rows.append(measure(path, Path(tmp), args.rival))
            except McuforgeError as error:
                print(f"{path.name}: {error}", file=sys.stderr)
                return 2
    print_rows(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["outputs_equal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
