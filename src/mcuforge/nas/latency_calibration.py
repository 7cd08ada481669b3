"""Calibrate the search's latency model on mcuforge's own generated code (the ``codegen-unicorn`` model).

A few networks of the search space (the smallest and largest subnets of spaces at a few widths and
resolutions, so that the op classes' MAC shares vary) are quantised with random weights, generated as
C, built for the target's core with ``arm-none-eabi-gcc`` and run once in unicorn, which counts the
executed instructions of ``mcuforge_invoke`` exactly. The counts are totals per network, so the MACs
per instruction of each op class come from a least-squares fit of

    instructions = pointwise MACs / r_pw + depthwise MACs / r_dw + other conv and FC MACs / r_other

over the networks (non-negative; a class whose coefficient cannot be determined keeps the TFLite Micro
figure and the model's description says so). The fitted model is cached as JSON in the run folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..analysis.cost import op_macs
from ..errors import McuforgeError
from ..models.spec_torch import build_torch
from ..ir import Graph
from ..atomic import write_json_atomic
from .fitness import recalibrate_bn
from .latency import LatencyModel, op_class_of, tflm_linear_model
from .space import SearchSpace

_CLASSES = ("pointwise", "depthwise", "other")


def class_macs(graph: Graph) -> dict[str, int]:
    """MACs of ``graph`` by calibration class (conv and FC together as "other")."""
    totals = dict.fromkeys(_CLASSES, 0)
    for op in graph.ops:
        op_class = op_class_of(graph, op)
        if op_class is not None:
            totals[op_class if op_class in ("pointwise", "depthwise") else "other"] += op_macs(graph, op)
    return totals


def count_network(graph: Graph, core: str) -> int:
    """Instructions of one ``mcuforge_invoke`` of the generated C of the int8 ``graph`` on ``core``."""
    from ..codegen.project import count_instructions

    return count_instructions(graph, core)


def calibration_graphs(space: SearchSpace) -> list[Graph]:
    """Int8 graphs (random weights, BN statistics from random inputs) of the smallest and largest
    subnets of ``space`` and of a narrower and a smaller-resolution variant of it."""
    from ..quant.ptq import quantize_spec_net

    spaces = {space, SearchSpace(max(0.1, space.width / 2), space.resolution, space.in_channels, space.num_classes),
              SearchSpace(space.width, max(32, space.resolution // 2 // 16 * 16), space.in_channels,
                          space.num_classes)}
    graphs = []
    torch.manual_seed(0)
    for each in sorted(spaces, key=lambda s: s.name):
        for arch in (each.smallest(), each.largest()):
            spec = each.spec(arch)
            model = build_torch(spec)
            batch = [torch.rand(16, spec.in_channels, spec.resolution, spec.resolution) * 2 - 1]
            recalibrate_bn(model, batch[0])  # sane activation ranges for untrained weights
            model.eval()
            graphs.append(quantize_spec_net(model, batch, name=f"calib-{each.name}"))
    return graphs


def fit_rates(samples: list[tuple[dict[str, int], int]]) -> dict[str, float | None]:
    """MACs per instruction per class from (class MACs, instructions) pairs; None where undetermined."""
    matrix = np.array([[macs[c] for c in _CLASSES] for macs, _ in samples], dtype=np.float64)
    counts = np.array([count for _, count in samples], dtype=np.float64)
    scale = matrix.max(axis=0)
    scale[scale == 0] = 1.0
    solution, *_ = np.linalg.lstsq(matrix / scale, counts, rcond=None)
    per_mac = solution / scale  # instructions per MAC
    rates: dict[str, float | None] = {}
    for name, value in zip(_CLASSES, per_mac):
        rates[name] = float(1.0 / value) if value > 0 else None
    return rates


def codegen_latency_model(space: SearchSpace, core: str, cache: str | Path | None = None) -> LatencyModel:
    """The ``codegen-unicorn`` latency model for ``core`` (module doc), read from ``cache`` when there."""
    if cache is not None and Path(cache).exists():
        saved = json.loads(Path(cache).read_text())
        return LatencyModel(saved["macs_per_instruction"], saved["source"], saved["description"])
    samples = []
    for graph in calibration_graphs(space):
        samples.append((class_macs(graph), count_network(graph, core)))
    rates = fit_rates(samples)
    fallback = tflm_linear_model().macs_per_instruction
    kept = [name for name, rate in rates.items() if rate is None]
    coefficients = {"pointwise": rates["pointwise"] or fallback["pointwise"],
                    "depthwise": rates["depthwise"] or fallback["depthwise"],
                    "conv": rates["other"] or fallback["conv"], "fc": rates["other"] or fallback["fc"]}
    if any(v <= 0 for v in coefficients.values()):
        raise McuforgeError("latency calibration gave a non-positive rate")
    description = (f"least-squares fit of unicorn instruction counts of mcuforge's generated {core} C over "
                   f"{len(samples)} networks of the space; 1 instruction per cycle"
                   + (f"; {', '.join(kept)} kept TFLite Micro's figure (undetermined)" if kept else ""))
    model = LatencyModel(coefficients, "codegen-unicorn", description)
    if cache is not None:
        write_json_atomic(cache, model.to_dict() | {"samples": [[m, c] for m, c in samples]})
    return model
