"""The broadcast loop of the generated C that ADD (with broadcasting, and int16), SUB, MUL, MAXIMUM,
MINIMUM and PRELU share.

The output ``[D0, ..., D5]`` is written in order; ``A*`` and ``B*`` are the two operands' element
strides along those dimensions (0 where an operand is broadcast). Adjacent dimensions contiguous for
both operands are merged first (`merge_broadcast_dims`), so a same-shape op is one flat loop and
the squeeze-excite gate ``[1,H,W,C] * [1,1,1,C]`` is H*W rows of C; up to `MAX_BROADCAST_DIMS`
(TFLite's 6) remain, padded with leading 1s. Each output element is written after its operands
are read, so the output may alias an operand with the output's shape (the ELEMENTWISE overlap),
never a broadcast one. The loop itself is the jinja macro ``broadcast_loop`` of
``kernels/broadcast_loop.inc.j2``; each kernel supplies the statement that turns ``x1`` and ``x2``
(the two operands as int32, int8 or int16 ones: the macro's ``ctype``) into ``*o``. MUL takes only
the macro's outer loops (``outer_loops``) and walks the innermost run with pointers.
"""

from __future__ import annotations

import numpy as np

from ..ir.ops import Op
from .lowering_types import Buffer, ConstArray, c_ident, unsupported

MAX_BROADCAST_DIMS = 6  # TFLite's broadcast kernels go up to 6-D; kernels/broadcast_loop.inc.j2 too


def broadcast_params(ctype: str = "int8_t") -> str:
    """The C parameters of a broadcast kernel over ``ctype`` tensors before its own ones (the
    argument order of `loop_args`)."""
    sizes_and_strides = ", ".join(f"int32_t {letter}{axis}" for letter in "DAB"
                                  for axis in range(MAX_BROADCAST_DIMS))
    return f"const {ctype} *in1, const {ctype} *in2, {ctype} *out, {sizes_and_strides}"


BROADCAST_PARAMS = broadcast_params()  # int8 tensors


def broadcast_strides(shape: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    """Element strides of a (right-aligned, broadcast) operand along the output's dimensions."""
    shape = (1,) * (len(out) - len(shape)) + tuple(shape)
    strides, step = [0] * len(out), 1
    for axis in reversed(range(len(out))):
        strides[axis] = step if shape[axis] != 1 else 0
        step *= shape[axis]
    return strides


def merge_broadcast_dims(out: tuple[int, ...], strides: list[list[int]]
                         ) -> tuple[list[int], list[list[int]]]:
    """Merge adjacent output dimensions that are contiguous for every operand (stride of the outer
    one = stride of the inner one x its size, which holds for two zero strides too); size-1
    dimensions are dropped. Returns the merged sizes and strides, at least one dimension."""
    dims: list[int] = []
    merged: list[list[int]] = [[] for _ in strides]
    for axis, size in enumerate(out):
        if size == 1:
            continue
        if dims and all(m[-1] == s[axis] * size for m, s in zip(merged, strides)):
            dims[-1] *= size
            for m, s in zip(merged, strides):
                m[-1] = s[axis]
            continue
        dims.append(size)
        for m, s in zip(merged, strides):
            m.append(s[axis])
    if not dims:
        return [1], [[1] for _ in strides]
    return dims, merged


def operand_arg(graph, index: int, name: str, position: int,
                ctype: str = "int8_t") -> Buffer | ConstArray:
    """An operand of a kernel call: an arena tensor, or a constant as a const array of model.c."""
    tensor = graph.tensors[name]
    if tensor.constant:
        return ConstArray(c_ident(index, f"in{position + 1}"), ctype,
                          np.asarray(tensor.data).astype(tensor.dtype.numpy).reshape(-1))
    return Buffer("tensor", name, ctype)


def loop_args(graph, index: int, op: Op, overlapped: bool,
              ctype: str = "int8_t") -> tuple[tuple, str]:
    """The leading arguments of a broadcast kernel call (operands, output, D*, A*, B*) for the op's
    two inputs of C type ``ctype``, and the layer's note; `UnsupportedOpError` when more than
    `MAX_BROADCAST_DIMS` dimensions remain after merging."""
    a_t, b_t, y_t = (graph.tensors[n] for n in (*op.inputs[:2], op.outputs[0]))
    dims, (sa, sb) = merge_broadcast_dims(
        tuple(y_t.shape), [broadcast_strides(a_t.shape, y_t.shape),
                           broadcast_strides(b_t.shape, y_t.shape)])
    if len(dims) > MAX_BROADCAST_DIMS:
        raise unsupported(graph, index, op, f"{op.kind.value} of shapes {list(a_t.shape)} and "
                          f"{list(b_t.shape)}: more than {MAX_BROADCAST_DIMS} dimensions after "
                          "merging the contiguous ones")
    pad = MAX_BROADCAST_DIMS - len(dims)
    dims, sa, sb = [1] * pad + dims, [0] * pad + sa, [0] * pad + sb
    args = (operand_arg(graph, index, a_t.name, 0, ctype),
            operand_arg(graph, index, b_t.name, 1, ctype), Buffer("tensor", y_t.name, ctype),
            *dims, *sa, *sb)
    note = ", ".join(filter(None, ("broadcast" if a_t.shape != b_t.shape else "",
                                   "in place" if overlapped else "")))
    return args, note
