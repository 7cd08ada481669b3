"""The Graph: tensors by name, operators in execution order, graph inputs/outputs, and blocks.

A block is a named group of consecutive operators that form one network block (a stem, an
inverted-residual block, a head). Per-block figures are reported over blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Iterable, Mapping

from .ops import Op
from .tensor import Tensor

# A numbered block in either spelling: zoo/spec graphs' ``b4`` or .tflite graphs' ``block4``.
_NUMBERED_BLOCK = re.compile(r"(?:block|b)(\d+)")


@dataclass(frozen=True)
class Block:
    """A named group of ops (by op name), in execution order. ``kind`` is free text such as
    ``"stem"``, ``"mbconv"``, ``"head"``; ``residual`` marks blocks whose input is added at the end."""

    name: str
    ops: tuple[str, ...]
    kind: str = "block"
    residual: bool = False


@dataclass(frozen=True)
class Graph:
    """A dataflow graph. ``ops`` is in a valid execution (topological) order once validated."""

    name: str
    tensors: Mapping[str, Tensor]
    ops: tuple[Op, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    blocks: tuple[Block, ...] = ()
    metadata: Mapping[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tensors", MappingProxyType(dict(self.tensors)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def tensor(self, name: str) -> Tensor:
        """The tensor called ``name``."""
        return self.tensors[name]

    def op(self, name: str) -> Op:
        """The op called ``name``."""
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(name)

    def op_index(self) -> dict[str, int]:
        """Map from op name to its position in ``ops``."""
        return {op.name: i for i, op in enumerate(self.ops)}

    def producers(self) -> dict[str, Op]:
        """Map from tensor name to the op that writes it."""
        return {out: op for op in self.ops for out in op.outputs}

    def consumers(self) -> dict[str, list[Op]]:
        """Map from tensor name to the ops that read it, in execution order."""
        users: dict[str, list[Op]] = {name: [] for name in self.tensors}
        for op in self.ops:
            for name in op.inputs:
                users.setdefault(name, []).append(op)
        return users

    def is_activation(self, name: str) -> bool:
        """True for tensors that live in SRAM at run time (not constants/weights)."""
        return not self.tensors[name].constant

    def activation_inputs(self, op: Op) -> list[str]:
        """The non-constant inputs of ``op``."""
        return [n for n in op.inputs if self.is_activation(n)]

    def block_name(self, spelling: str) -> str:
        """The name of the block that ``spelling`` designates, as a user types it: the block's own
        name, or the other spelling of a numbered block. Zoo and spec graphs name their blocks
        ``b0, b1, ...`` (their op names carry the same prefix), graphs read from .tflite
        ``block0, block1, ...``; ``b4`` and ``block4`` mean the same block in either. Returns
        ``spelling`` unchanged when no block matches, so the caller's error names what was typed."""
        names = {block.name for block in self.blocks}
        if spelling in names:
            return spelling
        match = _NUMBERED_BLOCK.fullmatch(spelling.strip().lower())
        if match is not None:
            number = int(match[1])
            for candidate in (f"b{number}", f"block{number}"):
                if candidate in names:
                    return candidate
        return spelling

    def block_of_op(self) -> dict[str, str]:
        """Map from op name to the name of the block that holds it (ops outside blocks are absent)."""
        return {op_name: block.name for block in self.blocks for op_name in block.ops}

    def with_ops(self, ops: Iterable[Op], tensors: Mapping[str, Tensor] | None = None,
                 blocks: Iterable[Block] | None = None) -> "Graph":
        """A copy with other ops (and optionally tensors and blocks)."""
        return replace(self, ops=tuple(ops),
                       tensors=dict(self.tensors if tensors is None else tensors),
                       blocks=tuple(self.blocks if blocks is None else blocks))
