"""PAD with the output zero point (real 0), as TFLite Micro.

- Shape: every dimension grows by its (before, after) padding. Window: kernel 1, stride 1, the
  leading padding of the spatial axis (patchable; a patch inside the map gets pad 0). No overlap.
- Reference kernel: ``np.pad`` with the zero point (0 for unquantised tensors).
- C: ``pad`` (rank <= 4). .tflite: an empty PadOptions table; the paddings input is kept as an
  attribute.
"""

from __future__ import annotations

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import ModelFileError
from ..ir.ops import OpKind, PadAttrs
from ..ir.tensor import QuantParams
from . import reference_support as ref
from .lowering_types import KernelSpec, LayerCall, four_d, io_buffers, require_int8, unsupported
from .registry import OpDef
from .tflite_common import empty_table


def pad_int8(x: np.ndarray, attrs: PadAttrs, x_q: QuantParams | None,
             y_q: QuantParams | None) -> np.ndarray:
    """PAD with the output zero point (0 for unquantised tensors)."""
    value = y_q.zero_point[0] if y_q is not None else 0
    if any(lo < 0 or hi < 0 for lo, hi in attrs.paddings):
        raise ValueError(f"negative paddings {attrs.paddings}")
    return np.pad(x, attrs.paddings, mode="constant", constant_values=value)


class Pad(OpDef):
    """PAD (see the module docstring)."""

    kinds = (OpKind.PAD,)
    attrs_type = PadAttrs
    tflite_options = BuiltinOptions.PadOptions
    folds_constant_input = True

    def output_shape(self, op, input_shapes):
        """Each dimension plus its padding."""
        a = op.attrs
        x = input_shapes[0]
        if len(a.paddings) != len(x):
            raise ValueError(f"paddings for {len(a.paddings)} dims, input has {len(x)}")
        return tuple(d + lo + hi for d, (lo, hi) in zip(x, a.paddings))

    def window(self, graph, op, axis):
        """Kernel 1, stride 1, the leading padding of ``axis``."""
        return 1, 1, op.attrs.paddings[axis][0]

    def run(self, graph, op, env):
        """`pad_int8` (any dtype)."""
        x = ref.value_of(graph, env, op.inputs[0])
        return pad_int8(x, op.attrs, graph.tensor(op.inputs[0]).quant,
                        graph.tensor(op.outputs[0]).quant)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """PAD of a rank <= 4 tensor with the output zero point."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        require_int8(graph, index, op, (x_t.name, y_t.name))
        attrs = op.attrs
        assert isinstance(attrs, PadAttrs)
        if len(x_t.shape) > 4:
            raise unsupported(graph, index, op, "PAD of a tensor of rank > 4")
        paddings = [(0, 0)] * (4 - len(x_t.shape)) + [tuple(p) for p in attrs.paddings]
        spec = KernelSpec(
            "mf_pad_s8", "pad",
            "const int8_t *in, int8_t *out, int32_t D0, int32_t D1, int32_t D2, int32_t D3, "
            "int32_t p0a, int32_t p0b, int32_t p1a, int32_t p1b, int32_t p2a, int32_t p2b, "
            "int32_t p3a, int32_t p3b, int8_t zp")
        flat_pads = [v for pair in paddings for v in pair]
        args = (*io_buffers(op), *four_d(x_t.shape), *flat_pads, y_t.quant.zero_point[0])
        return LayerCall(op.name, op.kind.value, spec, args)

    def decode_attrs(self, kind, reader, rop, where):
        """The paddings (a constant [rank, 2] input)."""
        paddings = reader.constant(rop, 1, "paddings", where)
        if paddings.ndim != 2 or paddings.shape[1] != 2:
            raise ModelFileError(f"{reader.source}: {where}: paddings have shape "
                                 f"{list(paddings.shape)}, expected [rank, 2]")
        return PadAttrs(tuple((int(lo), int(hi)) for lo, hi in paddings))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """An empty PadOptions table."""
        return empty_table(builder, tflite.PadOptionsStart, tflite.PadOptionsEnd)

    def folded_constants(self, attrs):
        """The paddings."""
        return (("paddings", np.array(attrs.paddings)),)


OP_DEFS = (Pad(),)
