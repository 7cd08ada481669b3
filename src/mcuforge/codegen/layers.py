"""What one layer of the generated C is: a kernel call with constant arguments.

`LayerCall` holds the specialised kernel it calls, its arguments (arena buffers, const arrays emitted
into model.c, integer constants), the scratch bytes the kernel needs and the MACs it does. Buffers are
symbolic (`Buffer`) until the arena plan gives them offsets. The lowering of every op kind lives in
`lower_conv` (convolutions, fully connected) and `lower_misc` (everything else).

`with_row_pitches` re-specialises a layer whose feature maps are windows of larger NHWC buffers (the
patch windows of `patch_emit`): the bytes between two rows become template constants of its kernel
(``in_pitch`` / ``out_pitch``, ``in1_pitch`` / ``in2_pitch`` for ADD; absent = the dense ``W * C``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Union

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


# Kernel templates that take row pitches, and the constant naming the pitch of each activation input.
_PITCHED_INPUTS = {"conv_im2col": ("in_pitch",), "conv_1x1": ("in_pitch",),
                   "depthwise": ("in_pitch",), "pool": ("in_pitch",), "pad": ("in_pitch",),
                   "add": ("in1_pitch", "in2_pitch")}


def with_row_pitches(layer: LayerCall, graph: Graph, op: Op, pitches: Mapping[str, int]) -> LayerCall:
    """``layer`` (the lowering of ``op`` on ``graph``, whose feature maps are NHWC windows) with its
    kernel specialised for row pitches: ``pitches`` maps some of the op's activation inputs and its
    output to the bytes between the starts of two rows in the arena; tensors not named are dense
    (``W * C``). Raises `UnsupportedOpError` for a kernel without pitches (in-place depthwise)."""
    out = op.outputs[0]
    tensors = [name for name in op.inputs if graph.is_activation(name)]
    def dense(name: str) -> int:
        tensor = graph.tensors[name]
        return tensor.nbytes // tensor.shape[1] if tensor.nbytes else pitches[name]

    wanted = {name: pitch for name, pitch in pitches.items() if pitch != dense(name)}
    if not wanted:
        return layer
    spec = layer.kernel
    if spec is None or spec.template not in _PITCHED_INPUTS:
        raise UnsupportedOpError(f"{op.kind.value} {op.name}: its kernel "
                                 f"({spec.template if spec else 'byte copy'}) cannot read or write "
                                 "a window of a larger buffer (row pitch)")
    constants = dict(spec.constants)
    for constant, name in zip(_PITCHED_INPUTS[spec.template], tensors):
        constants[constant] = wanted.get(name, 0)
    constants["out_pitch"] = wanted.get(out, 0)
    out_shape = graph.tensors[out].shape
    if spec.template == "conv_1x1":
        constants["row_pixels"] = out_shape[2]
    if spec.template == "add":
        constants["row_elems"] = out_shape[2] * out_shape[3]
    suffix = "_rp" + "_".join(str(constants[c]) for c in (*_PITCHED_INPUTS[spec.template], "out_pitch"))
    if "row_pixels" in constants or "row_elems" in constants:
        suffix += f"_w{out_shape[2]}"
    return replace(layer, kernel=replace(spec, name=spec.name + suffix, constants=constants))
