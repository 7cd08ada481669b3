"""Helpers of the detection tests: small YOLO-style int8 graphs with random weights (one output per
stride, YOLOv3-like with strides 8/16/32), their heads, and the boxes of the generated C."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from codegen_support import Int8Builder, q
from mcuforge.codegen.build import build, run_host_console
from mcuforge.codegen.emit import generate, write_project
from mcuforge.codegen.postprocess import with_postprocess
from mcuforge.codegen.qemu import run_qemu
from mcuforge.codegen.targets import TARGETS
from mcuforge.detect.c_module import detect_module, parse_box_lines
from mcuforge.detect.fixed import DetectConfig
from mcuforge.detect.head import YoloHead, YoloOutput
from mcuforge.ir import RELU, ConvAttrs, DType, Graph, NO_CLAMP, NoAttrs, OpKind, Pads, QuantParams

YOLO_ANCHORS = (((10.0, 13.0), (16.0, 30.0), (33.0, 23.0)),
                ((30.0, 61.0), (62.0, 45.0), (59.0, 119.0)),
                ((116.0, 90.0), (156.0, 198.0), (373.0, 326.0)))


def yolo_head(input_size=(64, 64), strides=(8, 16, 32), classes: int = 2,
              anchors_per_output: int = 3, input_range=(0.0, 1.0)) -> YoloHead:
    """The head of `yolo_graph` with the same arguments (YOLOv3's anchors, scaled to the input)."""
    factor = input_size[0] / 416
    outputs = []
    for index, stride in enumerate(strides):
        anchors = tuple((round(w * factor * 4, 2), round(h * factor * 4, 2))
                        for w, h in YOLO_ANCHORS[index % 3][:anchors_per_output])
        outputs.append(YoloOutput(stride, anchors, classes))
    return YoloHead(tuple(outputs), tuple(input_size), tuple(input_range))


def yolo_graph(input_size=(64, 64), strides=(8, 16, 32), classes: int = 2,
               anchors_per_output: int = 3, seed: int = 0, float_io: bool = False,
               head_scale: float = 0.06, head_zero_point: int = -10,
               weight_scale: float = 0.001) -> Graph:
    """A YOLOv3-shaped int8 detector: 3x3 stride-2 convs down to each stride, a 1x1 head conv of
    A*(5+C) channels at each (outputs in stride order) whose small weights (``weight_scale``) keep
    the logits inside the tables' interesting range; ``float_io`` adds QUANTIZE/DEQUANTIZE edges
    as converters write them."""
    b = Int8Builder("yolo", seed)
    channels = anchors_per_output * (5 + classes)
    if float_io:
        x = b.input("image", (1, *input_size, 3), DType.FLOAT32)
        x = b.op(OpKind.QUANTIZE, [x], NoAttrs(), dtype=DType.INT8, quant=q(1 / 255, -128))
    else:
        x = b.x((1, *input_size, 3), scale=1 / 255, zero_point=-128)
    outputs, stride, width = [], 1, 8
    for target in strides:
        while stride < target:
            h, w = b.shape(x)[1:3]
            weight = b.weights((width, 3, 3, b.shape(x)[3]), 0, width)
            b.begin_block()
            x = b.op(OpKind.CONV_2D, [x, weight, b.bias(width)],
                     ConvAttrs((2, 2), Pads.same(h, w, (3, 3), (2, 2)), (1, 1), RELU),
                     dtype=DType.INT8, quant=q(0.04, -128))
            stride *= 2
            b.end_block(f"down{stride}", "conv")
        scales = tuple(float(v) for v in b.rng.uniform(0.5, 2.0, size=channels) * weight_scale)
        weight = b.constant("w", (channels, 1, 1, width), DType.INT8,
                            b.rng.integers(-127, 128, size=(channels, 1, 1, width), dtype=np.int8),
                            QuantParams(scales, (0,) * channels, 0))
        y = b.op(OpKind.CONV_2D, [x, weight, b.bias(channels, 30000)],
                 ConvAttrs((1, 1), Pads(), (1, 1), NO_CLAMP), dtype=DType.INT8,
                 quant=q(head_scale, head_zero_point))
        if float_io:
            y = b.op(OpKind.DEQUANTIZE, [y], NoAttrs(), dtype=DType.FLOAT32)
        outputs.append(y)
    return b.finish(outputs)


def c_boxes(graph: Graph, head: YoloHead, inputs: Sequence[np.ndarray], workdir: Path,
            config: DetectConfig = DetectConfig(), qemu_target: str | None = None
            ) -> list[np.ndarray]:
    """The boxes the generated C prints for each int8 input: the sanitised host build, or the
    ``qemu_target`` Cortex-M build under QEMU."""
    target = TARGETS[qemu_target or "host"]
    model = with_postprocess(generate(graph, target), detect_module(graph, head, config))
    project = workdir / "project"
    write_project(model, project)
    packed = b"".join(np.asarray(x, dtype=np.int8).tobytes() for x in inputs)
    out_bytes = sum(model.graph.tensors[n].nbytes for n in model.graph.outputs)
    if qemu_target is None:
        console = run_host_console(build(project, "host-asan"), packed, out_bytes, len(inputs))[1]
    else:
        console = run_qemu(build(project, qemu_target), target, packed, out_bytes, len(inputs)).console
    return parse_box_lines(console)
