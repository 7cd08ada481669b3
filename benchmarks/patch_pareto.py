"""Patch-based inference: the Pareto front of (peak bytes, MAC factor) per model, beside msf-CNN.

    .venv/bin/python benchmarks/patch_pareto.py [--models mbv2-w0.35-r144 mcunet-in3 ...]
        [--max-grid 8]

For each model: the layer-based point, then the front of every schedule the search tries (splits,
n x n grids up to --max-grid, halo modes none/cols/full), in both input conventions: the network
input held in the arena (docs/architecture.md, ``peak_activation_bytes``) and streamed from the caller's
buffer (the MCUNetV2 paper's, ``peak_activation_bytes_input_streamed``). MAC factor = MACs of the
schedule / layer-based MACs. msf-CNN's analytic figures (reference/numbers.json, TinyPART/msf-CNN
result.json) follow: msf-CNN fuses across the whole network (also the layer-based rest), so its
minimum peak is below what a single patch stage can reach; its convention is its own. The
receptive-field redistributed variants (``*-rd``) are listed beside their base models. The
last column says whether the generated C runs the schedule (`codegen.patch_emit.check_c_patch_support`:
any grid, halos recomputed or cached) or why not.
Bytes; 1 kB = 1024 B.
"""

from __future__ import annotations

import argparse
import time

from mcuforge.analysis.conventions import REFERENCE_CONVENTIONS
from mcuforge.codegen.patch_emit import check_c_patch_support
from mcuforge.errors import UnsupportedOpError
from mcuforge.frontends.load import load_graph
from mcuforge.patch import patch_geometry, search_patches
from mcuforge.reference import published_numbers

MSF_NAMES = {"mbv2-w0.35-r144": "MBV2-w0.35-r144", "mcunet-in3": "MCUNet-320KB-ImageNet-r176"}
DEFAULT_MODELS = ["mbv2-w0.35-r144", "mbv2-w0.35-r144-rd", "mcunet-in3", "mcunet-in3-rd"]


def _front_rows(model: str, max_grid: int) -> list[str]:
    graph = load_graph(model)
    rows = []
    for streamed in (False, True):
        for halo_modes in (("none",), ("none", "cols", "full")):
            started = time.perf_counter()
            # The papers' convention (no pointwise overlap), as msf-CNN's figures count.
            search = search_patches(graph, REFERENCE_CONVENTIONS, halo_modes=halo_modes,
                                    max_grid=max_grid, input_streamed=streamed)
            seconds = time.perf_counter() - started
            label = ("input streamed" if streamed else "input in arena") + (
                ", recompute only (MCUNetV2)" if halo_modes == ("none",) else ", with halo caching")
            layer = search.layer_based
            rows.append(f"  {label}: layer-based {layer.peak_bytes:,} B x1.000 "
                        f"({len(search.candidates)} schedules in {seconds:.1f} s)")
            for point in search.front:
                if point.plan is None:
                    continue
                plan = point.plan
                rows.append(f"    {point.label:24s} {point.peak_bytes:>9,} B  "
                            f"x{point.macs / layer.macs:.3f}   input patch "
                            f"{plan.input_patch[0]}x{plan.input_patch[1]}   halo cache "
                            f"{plan.cache.total_bytes:,} B   C: {_c_support(graph, plan.config)}")
    return rows


def _c_support(graph, config) -> str:
    """``yes`` when the generated C runs ``config``, else the reason it refuses it."""
    try:
        check_c_patch_support(graph, patch_geometry(graph, config))
    except UnsupportedOpError as refusal:
        return "no: " + str(refusal).split(": ", 1)[-1][:70]
    return "yes"


def main() -> None:
    """Print the fronts and msf-CNN's figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--max-grid", type=int, default=8)
    args = parser.parse_args()
    msf = published_numbers()["msf_cnn_analytic"]
    for model in args.models:
        print(f"{model}")
        for row in _front_rows(model, args.max_grid):
            print(row)
        figures = msf.get(MSF_NAMES.get(model, ""))
        if figures:
            print(f"  msf-CNN ({MSF_NAMES[model]}): no fusion {figures['no_fusion']:,} B; "
                  f"min peak {figures['min_peak']:,} B x{figures['mac_factor']}; "
                  f"mid {figures['mid'][0]:,} B x{figures['mid'][1]}")
        print()


if __name__ == "__main__":
    main()
