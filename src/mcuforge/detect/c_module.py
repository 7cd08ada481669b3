"""The detection post-processing as C: ``postprocess/mf_detect.{h,c}`` of a generated project
(templates ``codegen/templates/detect/``), the lookup tables and anchors of `fixed` as const arrays
(Flash), and the reading of the boxes its runners print.

``detect_module(graph, head, config)`` gives the `codegen.postprocess.PostProcessModule` that
``compile_model(..., postprocess=...)`` (and ``mcuforge compile MODEL --head head.json``) puts in
the project; the runners then print, after every inference, ``mcuforge: boxes=N`` and N lines
``mcuforge: box X0 Y0 X1 Y1 SCORE CLASS`` (Q8 corners, Q15 score), which `parse_box_lines` reads
back as the int64 [N, 6] arrays `fixed.detect_fixed` returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..codegen.edges import strip_edge_conversions
from ..codegen.kernels import render_template
from ..codegen.postprocess import PostProcessModule
from ..errors import McuforgeError
from ..ir import DType, Graph
from .fixed import SIDE_MAX_Q8, DetectConfig, anchors_q8, check_input_size, output_tables
from .head import HeadError, YoloHead
from .postprocess import match_outputs

HEADER = "postprocess/mf_detect.h"
SOURCE = "postprocess/mf_detect.c"
BOX_BYTES = 24  # sizeof(mf_box_t): six int32


@dataclass(frozen=True)
class HeadBinding:
    """A head bound to an int8 graph: per head output, the graph output's name, (scale, zero
    point) and its byte offset in the packed output buffer."""

    head: YoloHead
    tensors: tuple[str, ...]
    quant: tuple[tuple[float, int], ...]
    packed_offsets: tuple[int, ...]


def bind_head(graph: Graph, head: YoloHead) -> HeadBinding:
    """Match ``head`` to the outputs of ``graph``'s int8 form (float edge conversions stripped, as
    the C runs it); `HeadError` names the output tensor and the channel count expected."""
    check_input_size(head)
    int8 = strip_edge_conversions(graph).graph
    names = list(int8.outputs)
    tensors = [int8.tensors[n] for n in names]
    shown = [n if n == original else f"{original} (int8 {n})"  # a float output's int8 side
             for n, original in zip(names, graph.outputs)]
    order = match_outputs(shown, [t.shape for t in tensors], head)
    offsets, position = {}, 0
    for name, tensor in zip(names, tensors):
        offsets[name] = position
        position += tensor.nbytes
    chosen = [names[j] for j in order]
    for name in chosen:
        tensor = int8.tensors[name]
        if tensor.dtype is not DType.INT8 or tensor.quant is None or tensor.quant.per_axis:
            raise HeadError(f"output tensor {name} is not per-tensor int8; the detection decoder "
                            "takes int8 outputs with one scale")
    input_shape = int8.tensors[int8.inputs[0]].shape
    if len(input_shape) != 4 or tuple(input_shape[1:3]) != head.input_size:
        raise HeadError(f"head input_size {list(head.input_size)} is not the model input's "
                        f"[height, width] (input {int8.inputs[0]} {list(input_shape)})")
    return HeadBinding(head, tuple(chosen),
                       tuple((float(int8.tensors[n].quant.scale[0]), int(int8.tensors[n].quant.zero_point[0]))
                             for n in chosen),
                       tuple(offsets[n] for n in chosen))


def _body(values, per_line: int = 16) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    return ",\n".join("    " + ", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line))


def detect_module(graph: Graph, head: YoloHead, config: DetectConfig = DetectConfig()) -> PostProcessModule:
    """The ``mf_detect`` post-processing module of ``graph`` with ``head`` and ``config``."""
    return render_module(bind_head(graph, head), config, graph.name)


def render_module(binding: HeadBinding, config: DetectConfig, model_name: str) -> PostProcessModule:
    """The ``mf_detect`` module of a head bound to outputs (names, quantisation, packed offsets)."""
    head = binding.head
    outputs = []
    for index, (spec, tensor, (scale, zero_point), anchors) in enumerate(
            zip(head.outputs, binding.tensors, binding.quant, anchors_q8(head))):
        tables = output_tables(scale, zero_point)
        grid_h, grid_w = head.grid(index)
        outputs.append({"index": index, "tensor": tensor.replace("*/", "* /")[:60],
                        "grid_h": grid_h, "grid_w": grid_w, "channels": spec.channels,
                        "stride": spec.stride, "anchor_count": len(spec.anchors),
                        "sigmoid_body": _body(tables.sigmoid_q15), "exp_body": _body(tables.exp_q16),
                        "anchors_body": ", ".join(str(int(v)) for v in anchors.reshape(-1))})
    context = {"model_name": model_name, "outputs": outputs, "num_classes": head.num_classes,
               "input_h": head.input_size[0], "input_w": head.input_size[1],
               "score_q15": config.score_threshold_q15, "iou_q15": config.iou_threshold_q15,
               "class_agnostic": config.class_agnostic, "max_boxes": config.max_boxes,
               "max_candidates": config.max_candidates, "side_max_q8": SIDE_MAX_Q8,
               "packed_offsets": list(binding.packed_offsets)}
    files = {HEADER: render_template("detect/mf_detect.h.j2", **context),
             SOURCE: render_template("detect/mf_detect.c.j2", **context)}
    report = {"outputs": list(binding.tensors), "score_threshold": config.score_threshold,
              "iou_threshold": config.iou_threshold, "max_boxes": config.max_boxes,
              "max_candidates": config.max_candidates, "class_agnostic": config.class_agnostic,
              "table_bytes": sum(256 * (2 + 4) + 8 * len(s.anchors) for s in head.outputs),
              "candidate_bytes": BOX_BYTES * (config.max_candidates + config.max_boxes)}
    return PostProcessModule("detect", files, HEADER, report)


_BOXES = re.compile(r"^mcuforge: boxes=(\d+)$")
_BOX = re.compile(r"^mcuforge: box (-?\d+) (-?\d+) (-?\d+) (-?\d+) (-?\d+) (-?\d+)$")


def parse_box_lines(console: str) -> list[np.ndarray]:
    """The boxes a runner printed, one int64 [N, 6] array per inference, in order."""
    results: list[list[list[int]]] = []
    expected = 0
    for line in console.splitlines():
        line = line.strip()
        if match := _BOXES.match(line):
            if results and len(results[-1]) != expected:
                raise McuforgeError(f"runner printed {len(results[-1])} of {expected} boxes")
            expected = int(match.group(1))
            results.append([])
        elif match := _BOX.match(line):
            if not results:
                raise McuforgeError("runner printed a box before its boxes= line")
            results[-1].append([int(v) for v in match.groups()])
    if results and len(results[-1]) != expected:
        raise McuforgeError(f"runner printed {len(results[-1])} of {expected} boxes")
    return [np.asarray(r, dtype=np.int64).reshape(-1, 6) for r in results]
