"""Builtin options tables of the ops the .tflite writer emits: each op module encodes its own
(`OpDef.encode_options`, with the `tflite` package's generated functions such as
``Conv2DOptionsStart``). Clamp bounds become the fused activation; PAD, QUANTIZE, DEQUANTIZE,
HARD_SWISH and TRANSPOSE get an empty table as TFLite's converter writes them; LOGISTIC, RELU and
RELU6 have none."""

from __future__ import annotations

import flatbuffers

from ..ir import OpKind
from ..ir.ops import Attrs
from ..ops import op_def


def build_options(builder: flatbuffers.Builder, kind: OpKind, a: Attrs, padding: int,
                  output_name: str) -> int | None:
    """The builtin options table of an op of ``kind`` with attributes ``a`` (None for kinds without
    one); ``padding`` is the TFLite padding chosen for its pads, ``output_name`` is for errors."""
    return op_def(kind).encode_options(kind, builder, a, padding, output_name)
