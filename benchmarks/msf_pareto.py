"""Multi-stage fusion: the Pareto front (peak bytes, MAC factor) of multi-stage schedules per
model, beside the single-split front and msf-CNN's published points, saying which dominate.

    .venv/bin/python benchmarks/msf_pareto.py [--models mbv2-w0.35-r144 mcunet-in3]
        [--max-grid 48] [--max-stage-blocks 12]

For each model and each input convention (the network input held in the arena,
``peak_activation_bytes``, or streamed from the caller's buffer, the MCUNetV2 paper's): the
layer-based point, the front of `patch.msf_search` (several fused stages, each with its own n x n
grid and halo mode, the last one optionally accumulating the global pool), the smallest
single-split peak (`patch.search`, for comparison) and, per msf-CNN point (reference/numbers.json,
TinyPART/msf-CNN result.json), the front point that dominates it (no more memory at no higher MAC
factor) or "not dominated" with our smallest peak at that MAC factor. Conventions: the papers'
(no pointwise overlap, `REFERENCE_CONVENTIONS`), as msf-CNN's figures count; msf-CNN's own
accounting of the input is not stated, so both of ours are printed. Bytes; 1 kB = 1024 B.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from mcuforge.analysis.conventions import REFERENCE_CONVENTIONS
from mcuforge.frontends.load import load_graph
from mcuforge.patch import search_patches
from mcuforge.patch.msf_search import MultiStagePoint, search_multistage
from mcuforge.reference import published_numbers

MSF_NAMES = {"mbv2-w0.35-r144": "MBV2-w0.35-r144", "mcunet-in3": "MCUNet-320KB-ImageNet-r176"}
DEFAULT_MODELS = ["mbv2-w0.35-r144", "mcunet-in3"]


def _dominating(front: tuple[MultiStagePoint, ...], layer_macs: int, peak: int, factor: float
                ) -> MultiStagePoint | None:
    """The front point with the fewest bytes among those with no more than ``peak`` bytes at no
    more than ``factor`` x the layer-based MACs (factors compared at msf-CNN's two decimals)."""
    fitting = [p for p in front if p.peak_bytes <= peak and round(p.macs / layer_macs, 2) <= factor]
    return min(fitting, key=lambda p: (p.peak_bytes, p.macs), default=None)


def _smallest_within(front: tuple[MultiStagePoint, ...], layer_macs: int, factor: float
                     ) -> MultiStagePoint | None:
    within = [p for p in front if round(p.macs / layer_macs, 2) <= factor]
    return min(within, key=lambda p: p.peak_bytes, default=None)


def report(model: str, max_grid: int, max_stage_blocks: int) -> list[str]:
    """The lines printed for one model."""
    graph = load_graph(model)
    msf = published_numbers()["msf_cnn_analytic"].get(MSF_NAMES.get(model, ""))
    lines = [model]
    for streamed in (False, True):
        conventions = replace(REFERENCE_CONVENTIONS, count_network_input=not streamed)
        search = search_multistage(graph, conventions, max_grid=max_grid,
                                   max_stage_blocks=max_stage_blocks, progress=True)
        single = search_patches(graph, REFERENCE_CONVENTIONS, halo_modes=("none", "cols", "full"),
                                max_grid=8, input_streamed=streamed)
        layer = search.layer_based
        label = "input streamed" if streamed else "input in arena"
        lines.append(f"  {label}: layer-based {layer.peak_bytes:,} B x1.000; multi-stage front of "
                     f"{search.stages_evaluated} fused stages evaluated in {search.seconds:.1f} s "
                     f"({search.cpu_seconds:.1f} s CPU); "
                     f"single split min {single.front[0].peak_bytes:,} B "
                     f"x{single.front[0].macs / layer.macs:.3f} ({single.front[0].label})")
        for point in search.front:
            lines.append(f"    {point.peak_bytes:>9,} B  x{point.macs / layer.macs:.3f}  "
                         f"{point.schedule.to_string()}")
        if not msf:
            continue
        for name, (peak, factor) in (("min peak", (msf["min_peak"], msf["mac_factor"])),
                                     ("mid", tuple(msf["mid"]))):
            ours = _dominating(search.front, layer.macs, peak, factor)
            if ours is not None:
                lines.append(f"    msf-CNN {name} {peak:,} B x{factor}: dominated by ours "
                             f"{ours.peak_bytes:,} B x{ours.macs / layer.macs:.3f}")
            else:
                best = _smallest_within(search.front, layer.macs, factor)
                at = "none" if best is None else f"{best.peak_bytes:,} B x{best.macs / layer.macs:.3f}"
                lines.append(f"    msf-CNN {name} {peak:,} B x{factor}: NOT dominated "
                             f"(our smallest within x{factor}: {at})")
    return lines


def main() -> None:
    """Print the fronts and the comparison with msf-CNN."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--max-grid", type=int, default=48)
    parser.add_argument("--max-stage-blocks", type=int, default=12)
    args = parser.parse_args()
    for model in args.models:
        for line in report(model, args.max_grid, args.max_stage_blocks):
            print(line)
        print()


if __name__ == "__main__":
    main()
