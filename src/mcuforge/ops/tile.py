"""TILE: the input repeated ``multiples[d]`` times along each dimension d (bytes move, values do
not change), as TFLite's ``kernels/tile.cc`` (TFLite Micro has no TILE kernel).

- Shape: ``input[d] * multiples[d]``; one multiple per input dimension, each >= 1 (a multiple of 0,
  an empty output, is refused at import). Any quantisation: the values are copied, never
  requantised (TFLite's kernel does not compare the two quantisations either).
- The multiples are a constant int32 or int64 input, kept as the attribute ``multiples``; a TILE
  whose multiples are computed at run time is refused at import.
- Reference kernel: ``np.tile``. Not patchable, no overlap, no MACs.
- C (``tile``): TFLite's ``TileOneDimension`` order: the innermost dimension's row is copied
  ``multiples`` times, and each outer dimension copies its first tiled block over the next ones
  (``memcpy``). The dimensions are first simplified (`tile_layout`): dimensions of size 1 that are
  not repeated are dropped, a dimension that is not repeated joins the one outside it, and the
  element size (int8 or int16) joins the innermost, so the C walks bytes and rarely more than
  three dimensions. .tflite: an empty TileOptions table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import InvalidValueError
from ..ir.ops import OpKind
from ..ir.tensor import DType
from . import reference_support as ref
from .lowering_types import KernelSpec, LayerCall, io_buffers, unsupported
from .registry import OpDef
from .tflite_common import empty_table

_DTYPES = frozenset({DType.INT8, DType.INT16})


@dataclass(frozen=True)
class TileAttrs:
    """TILE: how many times each input dimension is repeated."""

    multiples: tuple[int, ...]


def check_multiples(shape: tuple[int, ...], multiples: tuple[int, ...]) -> None:
    """ValueError unless there is one multiple >= 1 per dimension of ``shape``."""
    if len(multiples) != len(shape):
        raise ValueError(f"{len(multiples)} multiples for a rank-{len(shape)} input")
    for axis, multiple in enumerate(multiples):
        if multiple < 1:
            raise ValueError(f"multiple {multiple} along axis {axis} (must be >= 1)")


def tile_layout(shape: tuple[int, ...], multiples: tuple[int, ...],
                element_bytes: int = 1) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(dimensions in bytes, multiples) of the same byte copy with fewer dimensions: a dimension
    of size 1 that is not repeated is dropped; a dimension that is not repeated is merged into the
    one outside it (tiling [a, b] by [m, 1] is tiling [a * b] by [m]); the innermost dimension
    counts bytes."""
    dims: list[int] = []
    mults: list[int] = []
    for size, multiple in zip(shape, multiples):
        if size == 1 and multiple == 1:
            continue
        if multiple == 1 and dims:
            dims[-1] *= size
        else:
            dims.append(size)
            mults.append(multiple)
    if not dims:
        dims, mults = [1], [1]
    dims[-1] *= element_bytes
    return tuple(dims), tuple(mults)


class Tile(OpDef):
    """TILE (see the module docstring)."""

    kinds = (OpKind.TILE,)
    attrs_type = TileAttrs
    tflite_options = BuiltinOptions.TileOptions
    folds_constant_input = True
    input_dtypes = _DTYPES
    output_dtypes = _DTYPES

    def output_shape(self, op, input_shapes):
        """Each dimension times its multiple."""
        x = tuple(input_shapes[0])
        check_multiples(x, op.attrs.multiples)
        return tuple(d * m for d, m in zip(x, op.attrs.multiples))

    def check_values(self, graph, op, where):
        """One multiple >= 1 per input dimension (the values are copied: no requantisation)."""
        try:
            check_multiples(graph.tensors[op.inputs[0]].shape, op.attrs.multiples)
        except ValueError as exc:
            raise InvalidValueError(f"{where}: {exc} (tensor {op.outputs[0]})") from None

    def run(self, graph, op, env):
        """``np.tile`` (any dtype)."""
        return np.tile(ref.value_of(graph, env, op.inputs[0]), op.attrs.multiples)

    def lower(self, graph, index, op, target, overlapped, row_ring=False):
        """`tile_layout`'s byte copy, its dimensions baked into ``mf_tile_*``."""
        x_t, y_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        for tensor in (x_t, y_t):
            if tensor.dtype not in _DTYPES or x_t.dtype is not y_t.dtype:
                raise unsupported(graph, index, op, f"tensor {tensor.name} is "
                                  f"{tensor.dtype.value}; the C tiles int8 or int16 tensors")
        dims, mults = tile_layout(x_t.shape, op.attrs.multiples, np.dtype(x_t.dtype.numpy).itemsize)
        in_inner = [int(np.prod(dims[k + 1:])) for k in range(len(dims))]
        out_inner = [int(np.prod([d * m for d, m in zip(dims[k + 1:], mults[k + 1:])]))
                     for k in range(len(dims))]
        name = f"mf_tile_{'x'.join(map(str, dims))}_m{'x'.join(map(str, mults))}"
        spec = KernelSpec(name, "tile", "const int8_t *in, int8_t *out",
                          {"dims": dims, "mults": mults, "in_inner": in_inner,
                           "out_inner": out_inner})
        return LayerCall(op.name, op.kind.value, spec, io_buffers(op))

    def decode_attrs(self, kind, reader, rop, where):
        """The multiples (a constant int32 or int64 input)."""
        values = reader.constant(rop, 1, "multiples", where)
        return TileAttrs(tuple(int(v) for v in values.reshape(-1)))

    def encode_options(self, kind, builder, attrs, padding, output_name):
        """An empty TileOptions table."""
        return empty_table(builder, tflite.TileOptionsStart, tflite.TileOptionsEnd)

    def folded_constants(self, attrs):
        """The multiples."""
        return (("multiples", np.array(attrs.multiples, dtype=np.int64)),)


OP_DEFS = (Tile(),)
