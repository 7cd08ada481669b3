"""Arena planner figures for every reference .tflite model (and, with --zoo, every zoo model):
analytic peak, arena and gap, with the pointwise overlap off and on, beside TFLite Micro's planned
head (reference/numbers.json, measured with the tflite-micro interpreter) where there is one.

    .venv/bin/python benchmarks/planner_table.py [--zoo] [--alignment 4]

Conventions (docs/architecture.md): int8 activations, network input counted, in-place depthwise on, edge float
tensors of QUANTIZE/DEQUANTIZE not counted (TFLite Micro counts them), 1 kB = 1024 B.
"""

from __future__ import annotations

import argparse
import time

from mcuforge.planner.arena import PlanOptions, plan_arena, verify_plan
from mcuforge.reference import published_numbers, reference_dir

REFERENCE_MODELS = [
    "tflite_micro/hello_world_int8.tflite", "tflite_micro/micro_speech_quantized.tflite",
    "tflite_micro/person_detect.tflite", "mlperf_tiny/vww_96_int8.tflite",
    "mlperf_tiny/kws_ref_model.tflite", "mlperf_tiny/pretrainedResnet_quant.tflite",
    "mlperf_tiny/ad01_int8.tflite", "mcunet/mcunet-320kb-1mb_imagenet.tflite", "tinyengine/vww.tflite",
]


def _row(name: str, graph, alignment: int, tflm_head: int | None) -> str:
    cells = [f"{name:34s}"]
    seconds = 0.0
    for overlap_pointwise in (False, True):
        start = time.perf_counter()
        plan = plan_arena(graph, PlanOptions(alignment=alignment).with_conventions(
            overlap_pointwise=overlap_pointwise))
        verify_plan(graph, plan)
        seconds += time.perf_counter() - start
        cells.append(f"{plan.peak_activation_bytes:>10,} {plan.arena_bytes:>10,} {plan.gap_bytes:>6,}")
    cells.append(f"{tflm_head:>10,}" if tflm_head is not None else f"{'-':>10}")
    cells.append(f"{seconds:6.2f}")
    return " | ".join(cells)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", action="store_true", help="also plan every zoo model (analytic graphs)")
    parser.add_argument("--alignment", type=int, default=4)
    args = parser.parse_args()
    header = (f"{'model':34s} | {'peak':>10} {'arena':>10} {'gap':>6} | {'peak':>10} {'arena':>10} "
              f"{'gap':>6} | {'TFLM head':>10} | {'s':>6}")
    print(f"{'':34s} | {'pointwise overlap off (B)':^29s} | {'pointwise overlap on (B)':^29s} |")
    print(header)
    print("-" * len(header))
    from mcuforge.frontends.tflite import read_tflite
    tflm = published_numbers().get("tflm_arena_measured", {})
    for relative in REFERENCE_MODELS:
        path = reference_dir() / "models" / relative
        if not path.exists():
            print(f"{relative:34s} | (not found under {reference_dir()})")
            continue
        name = path.name
        head = tflm.get(name, {}).get("head")
        print(_row(name, read_tflite(path), args.alignment, head))
    if args.zoo:
        from mcuforge.frontends.load import load_graph
        from mcuforge.models.zoo import list_models
        for name in list_models():
            print(_row(f"zoo:{name}", load_graph(name), args.alignment, None))


if __name__ == "__main__":
    main()
