"""What one layer of the generated C is: a kernel call with constant arguments.

`LayerCall` holds the specialised kernel it calls, its arguments (arena buffers, const arrays emitted
into model.c, integer constants), the scratch bytes the kernel needs and the MACs it does. Buffers are
symbolic (`Buffer`) until the arena plan gives them offsets. The lowering of every op kind lives in
`lower_conv` (convolutions, fully connected) and `lower_misc` (everything else).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import DType, Graph, Op
from .kernels import KernelSpec


@dataclass(frozen=True)
class ConstArray:
    """A ``static const`` array of model.c (weights, folded biases, multipliers, shifts)."""

    name: str
    ctype: str
    values: np.ndarray = field(compare=False, repr=False)


@dataclass(frozen=True)
class Buffer:
    """A pointer into the arena: a tensor (``kind`` "tensor", ``key`` its name), the op's kernel
    scratch ("scratch", key the op name) or the temp buffer of the op's overlap ("overlap")."""

    kind: str
    key: str
    ctype: str = "int8_t"


Arg = Union[Buffer, ConstArray, int]


@dataclass(frozen=True)
class LayerCall:
    """One layer: ``kernel(args...)``, or a byte copy (RESHAPE) when ``kernel`` is None."""

    op_name: str
    kind: str
    kernel: KernelSpec | None
    args: tuple[Arg, ...]
    scratch_bytes: int = 0
    macs: int = 0
    copy: tuple[Buffer, Buffer, int] | None = None
    note: str = ""

    @property
    def arrays(self) -> tuple[ConstArray, ...]:
        """The const arrays this layer passes."""
        return tuple(a for a in self.args if isinstance(a, ConstArray))


def unsupported(graph: Graph, index: int, op: Op, why: str) -> UnsupportedOpError:
    """A one-line error naming the op, its index and its output tensor."""
    return UnsupportedOpError(f"cannot generate C for {op.kind.value} at operator #{index} "
                              f"(tensor {op.outputs[0]}): {why}")


def require_int8(graph: Graph, index: int, op: Op, names) -> None:
    """Raise unless every named tensor is int8 with per-tensor quantisation, and every constant
    input of the op has values."""
    for name in op.inputs:
        tensor = graph.tensors[name]
        if tensor.constant and tensor.data is None:
            raise unsupported(graph, index, op, f"weight {name} has no values (an analytic graph, "
                              "such as a zoo model, cannot be compiled; give a quantised .tflite)")
    for name in names:
        tensor = graph.tensors[name]
        if tensor.dtype is not DType.INT8:
            why = f"tensor {name} is {tensor.dtype.value}; the generated C handles int8 tensors"
        elif tensor.quant is None:
            why = f"tensor {name} has no quantisation parameters"
        elif tensor.quant.per_axis:
            why = f"tensor {name} is quantised per axis; activations must be per-tensor"
        else:
            continue
        raise unsupported(graph, index, op, why)


def c_ident(index: int, what: str) -> str:
    """The C identifier of a per-layer constant: ``L<index>_<what>``."""
    return f"L{index}_{what}"
