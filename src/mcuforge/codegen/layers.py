"""What one layer of the generated C is: a kernel call with constant arguments.

`LayerCall` holds the specialised kernel it calls, its arguments (arena buffers, const arrays emitted
into model.c, integer constants), the scratch bytes the kernel needs and the MACs it does. Buffers are
symbolic (`Buffer`) until the arena plan gives them offsets. These plain types live in
`mcuforge.ops.lowering_types` (the op modules, below codegen, build them; each op kind's lowering is
its op module's `OpDef.lower`) and are re-exported here.

`with_row_pitches` re-specialises a layer whose feature maps are windows of larger NHWC buffers (the
patch windows of `patch_emit`): the bytes between two rows become template constants of its kernel
(``in_pitch`` / ``out_pitch``, ``in1_pitch`` / ``in2_pitch`` for ADD; absent = the dense ``W * C``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from ..errors import UnsupportedOpError
from ..ir import Graph, Op
from ..ops.lowering_types import (Arg, Buffer, ConstArray, LayerCall, StateArray, c_ident,
                                  require_int8, unsupported)

__all__ = ["Arg", "Buffer", "ConstArray", "LayerCall", "StateArray", "c_ident", "require_int8",
           "unsupported", "with_row_pitches"]


# Kernel templates that take row pitches, and the constant naming the pitch of each activation input.
_PITCHED_INPUTS = {"conv_im2col": ("in_pitch",), "conv_direct": ("in_pitch",),
                   "conv_1x1": ("in_pitch",),
                   "depthwise": ("in_pitch",), "depthwise_direct": ("in_pitch",),
                   "pool": ("in_pitch",), "pad": ("in_pitch",),
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
