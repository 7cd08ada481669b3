"""A per-target latency model for the search: instructions = sum over layers of MACs / (MACs per
instruction of the layer's op class), latency = instructions / clock.

Two calibrations, and every report says which one it used (`LatencyModel.source`):

* ``codegen-unicorn``: MACs per instruction by op class measured on mcuforge's own generated kernels
  (instruction counts of a Cortex-M build run in unicorn), via `calibrate_from_codegen` once the code
  generator can count instructions for a graph.
* ``tflm-cmsis-nn-linear``: a linear model whose coefficients are the TFLite Micro + CMSIS-NN Cortex-M7
  figures in the reference ``numbers.json`` (``tflm_cmsis_nn_cortex_m7``): the four measured kernels
  at 20x20 (1x1 expansion, 1x1 projection, 3x3 and 7x7 depthwise) give MACs per instruction for
  pointwise and depthwise convs; the other convs and the classifier take the whole-model average. It
  is an estimate of TFLite Micro's speed, an upper bound on ours.

Instructions are turned into milliseconds with one instruction per clock cycle (Cortex-M4/M7 with
zero-wait-state Flash; the M7's dual issue makes it pessimistic). The model ranks candidates and
rejects clearly-too-slow ones; it is not a cycle-accurate simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.cost import op_macs
from ..analysis.latency_energy import estimate_inference
from ..errors import McuforgeError
from ..ir import Graph, OpKind
from ..targets import Board

OP_CLASSES = ("pointwise", "depthwise", "conv", "fc")


@dataclass(frozen=True)
class LatencyModel:
    """MACs per instruction for each op class, and where those figures come from."""

    macs_per_instruction: dict[str, float]
    source: str
    description: str

    def instructions(self, graph: Graph) -> int:
        """Estimated executed instructions of one inference of ``graph``."""
        total = 0.0
        for op in graph.ops:
            op_class = op_class_of(graph, op)
            if op_class is not None:
                total += op_macs(graph, op) / self.macs_per_instruction[op_class]
        return int(round(total))

    def latency_ms(self, graph: Graph, target: Board) -> float:
        """Estimated milliseconds per inference on ``target`` (one instruction per cycle,
        `mcuforge.analysis.latency_energy`)."""
        instructions = self.instructions(graph)
        if instructions == 0:
            return 0.0
        return 1000.0 * estimate_inference(target, instructions).latency_s

    def to_dict(self) -> dict:
        """JSON-ready form (for reports)."""
        return {"source": self.source, "description": self.description,
                "macs_per_instruction": dict(self.macs_per_instruction)}


def op_class_of(graph: Graph, op) -> str | None:
    """"pointwise", "depthwise", "conv" or "fc" for MAC-carrying ops, else None."""
    if op.kind is OpKind.DEPTHWISE_CONV_2D:
        return "depthwise"
    if op.kind is OpKind.FULLY_CONNECTED:
        return "fc"
    if op.kind is OpKind.CONV_2D:
        _, kh, kw, _ = graph.tensors[op.inputs[1]].shape
        return "pointwise" if kh == kw == 1 else "conv"
    return None


def tflm_linear_model() -> LatencyModel:
    """The ``tflm-cmsis-nn-linear`` model from the reference numbers.json (see module doc); raises a
    `McuforgeError` when the reference figures are not available."""
    from ..reference import published_numbers

    try:
        figures = published_numbers()["tflm_cmsis_nn_cortex_m7"]
    except McuforgeError as exc:
        raise McuforgeError(f"latency model: {exc}; search without a latency limit") from None
    kernels = figures["kernels_20x20"]

    def ratio(predicate) -> float:
        rows = [row for name, row in kernels.items() if predicate(name)]
        return sum(row["macs"] for row in rows) / sum(row["instructions"] for row in rows)

    models = figures["models"].values()
    overall = sum(m["macs"] for m in models) / sum(m["instructions"] for m in models)
    coefficients = {"pointwise": ratio(lambda n: "1x1" in n), "depthwise": ratio(lambda n: "depthwise" in n),
                    "conv": overall, "fc": overall}
    return LatencyModel(coefficients, "tflm-cmsis-nn-linear",
                        "linear model, MACs/instruction of TFLite Micro + CMSIS-NN on Cortex-M7 "
                        "(reference numbers.json tflm_cmsis_nn_cortex_m7); 1 instruction per cycle")


def calibrate_from_codegen(samples: list[tuple[Graph, dict[str, int]]], target_core: str) -> LatencyModel:
    """The ``codegen-unicorn`` model from measured instruction counts: ``samples`` pairs a graph with
    its generated code's instructions per op (op name -> instructions, from unicorn). MACs per
    instruction of a class is its total MACs over its total instructions across the samples."""
    macs = dict.fromkeys(OP_CLASSES, 0)
    instructions = dict.fromkeys(OP_CLASSES, 0)
    for graph, counts in samples:
        for op in graph.ops:
            op_class = op_class_of(graph, op)
            if op_class is not None and op.name in counts:
                macs[op_class] += op_macs(graph, op)
                instructions[op_class] += counts[op.name]
    missing = [c for c in OP_CLASSES if instructions[c] == 0]
    if missing:
        raise McuforgeError(f"latency calibration: no measured {', '.join(missing)} layers")
    return LatencyModel({c: macs[c] / instructions[c] for c in OP_CLASSES}, "codegen-unicorn",
                        f"MACs/instruction of mcuforge's generated {target_core} kernels, counted in unicorn")
