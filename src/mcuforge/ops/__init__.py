"""Per-op homes: one module per op kind (or per small family sharing one implementation).

Each op module defines an `OpDef` subclass (attributes type, shape rule, MACs, receptive window,
overlap rule, ``prepare``d quantisation parameters, the int8 reference kernel, the C lowering, the
.tflite options) and lists its instances in ``OP_DEFS``; `registry.discover` finds them with pkgutil,
so adding an op is one new module (plus its test and, for C, its kernel template); see
docs/adding-an-op.md. Shared code: `conv_common` (weighted ops' requantisation, `ConvolutionOp`),
`lut` (unary ops as 256-entry tables, `UnaryTableOp`), `binary_common` (ADD / MUL,
`BinaryElementwiseOp`), `windows` (sliding windows), `row_ring` (in-place depthwise ring),
`reference_support`, `lowering_types`, `tflite_common`.

May import: errors, arith, ir (and numpy, tflite, threadpoolctl). Imported by: analysis, runtime,
codegen, frontends and everything above them.
"""

from .registry import (OpDef, OverlapRule, definitions, discover, find_op_def, implemented_kinds,
                       kinds_where, op_def)

discover()

__all__ = ["OpDef", "OverlapRule", "definitions", "discover", "find_op_def", "implemented_kinds",
           "kinds_where", "op_def"]
