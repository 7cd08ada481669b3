"""The plain value types of a C lowering: what one layer of the generated C is.

A `LayerCall` is a call of one specialised kernel (`KernelSpec`: a jinja2 template of
``codegen/templates/kernels`` and the constants it bakes in) with constant arguments: arena buffers
(`Buffer`, symbolic until the arena plan gives offsets), const arrays emitted into model.c
(`ConstArray`), an op's persistent state (`StateArray`, static arrays of model.c outside the arena)
and integers. The op modules build them; `mcuforge.codegen` plans the arena, resolves
the buffers and renders the templates. These types import nothing above the IR, so the op modules
(below codegen) can use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Union

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.ops import Op
from ..ir.tensor import DType

if TYPE_CHECKING:  # only for annotations
    from ..ir.graph import Graph


class LoweringTarget(Protocol):
    """What a lowering may ask of the build target (`codegen.targets.Target`)."""

    name: str
    dsp: bool
    optimise: str  # "balanced", "speed" or "size" (`codegen.targets.OPTIMISATIONS`)


@dataclass(frozen=True)
class KernelSpec:
    """One specialised kernel function. ``params`` is the C parameter list (without parentheses);
    ``constants`` are the values the template bakes in."""

    name: str
    template: str
    params: str
    constants: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def prototype(self) -> str:
        """The C function header."""
        return f"void {self.name}({self.params})"


# Parameter lists shared by the kernel families (the argument order of the lowerings follows them).
REQUANT_PARAMS = ("const int8_t *w, const int32_t *bias, const int32_t *mult, const int32_t *shift, "
                  "const int32_t *round, int32_t out_zp, int32_t act_min, int32_t act_max")


@dataclass(frozen=True)
class ConstArray:
    """A ``static const`` array of model.c (weights, folded biases, multipliers, shifts)."""

    name: str
    ctype: str
    values: np.ndarray = field(compare=False, repr=False)


@dataclass(frozen=True)
class StateArray:
    """A static, writable array of model.c that keeps an op's state from one ``mcuforge_invoke``
    to the next (TFLite's variable tensors): outside the reusable arena (in ``.data`` / ``.bss``),
    set to ``reset_value`` at start-up and by ``mcuforge_reset_state``."""

    name: str
    ctype: str
    length: int
    reset_value: int = 0

    @property
    def nbytes(self) -> int:
        """Bytes of the array."""
        return self.length * {"int8_t": 1, "int16_t": 2, "int32_t": 4}[self.ctype]


@dataclass(frozen=True)
class Buffer:
    """A pointer into the arena: a tensor (``kind`` "tensor", ``key`` its name), the op's kernel
    scratch ("scratch", key the op name) or the temp buffer of the op's overlap ("overlap")."""

    kind: str
    key: str
    ctype: str = "int8_t"


Arg = Union[Buffer, ConstArray, StateArray, int]


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
    # A strided copy: ``copy`` done for ``rows`` rows, source and destination ``pitch`` bytes apart.
    copy_rows: tuple[int, int, int] | None = None  # (rows, source pitch, destination pitch)

    @property
    def arrays(self) -> tuple[ConstArray, ...]:
        """The const arrays this layer passes."""
        return tuple(a for a in self.args if isinstance(a, ConstArray))

    @property
    def states(self) -> tuple[StateArray, ...]:
        """The persistent state arrays this layer passes."""
        return tuple(a for a in self.args if isinstance(a, StateArray))


def unsupported(graph: "Graph", index: int, op: Op, why: str) -> UnsupportedOpError:
    """A one-line error naming the op, its index and its output tensor."""
    return UnsupportedOpError(f"cannot generate C for {op.kind.value} at operator #{index} "
                              f"(tensor {op.outputs[0]}): {why}")


def require_int8(graph: "Graph", index: int, op: Op, names) -> None:
    """Raise unless every named tensor is int8 with per-tensor quantisation, and every constant
    input of the op has values."""
    require_activations(graph, index, op, names, DType.INT8)


def require_activations(graph: "Graph", index: int, op: Op, names, dtype: DType) -> None:
    """Raise unless every named tensor is ``dtype`` (int8, or int16 for 16x8) with per-tensor
    quantisation, and every constant input of the op has values."""
    for name in op.inputs:
        tensor = graph.tensors[name]
        if tensor.constant and tensor.data is None:
            raise unsupported(graph, index, op, f"weight {name} has no values (an analytic graph, "
                              "such as a zoo model, cannot be compiled; give a quantised .tflite)")
    for name in names:
        tensor = graph.tensors[name]
        if tensor.dtype is not dtype:
            why = (f"tensor {name} is {tensor.dtype.value}; the generated C handles "
                   f"{dtype.value} tensors")
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


def io_buffers(op: Op) -> tuple[Buffer, Buffer]:
    """The arena buffers of the op's first input and its output."""
    return Buffer("tensor", op.inputs[0]), Buffer("tensor", op.outputs[0])


def four_d(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` padded with leading 1s to rank 4."""
    return (1,) * (4 - len(shape)) + tuple(shape)
