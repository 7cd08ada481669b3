"""A small helper to build graphs op by op with shapes inferred (used by the zoo, tests and frontends)."""

from __future__ import annotations

import numpy as np

from .graph import Block, Graph
from .ops import Attrs, NoAttrs, Op, OpKind
from .shapes import infer_output_shape
from .tensor import DType, QuantParams, Tensor
from .validate import validate


class GraphBuilder:
    """Accumulates tensors, ops and blocks; `finish` returns a validated `Graph`."""

    def __init__(self, name: str):
        self.name = name
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.blocks: list[Block] = []
        self.inputs: list[str] = []
        self._open_block: list[str] | None = None
        self._counter = 0

    def unique(self, base: str) -> str:
        """A tensor or op name not used yet, derived from ``base``."""
        if base not in self.tensors and all(op.name != base for op in self.ops):
            return base
        self._counter += 1
        while f"{base}_{self._counter}" in self.tensors:
            self._counter += 1
        return f"{base}_{self._counter}"

    def input(self, name: str, shape: tuple[int, ...], dtype: DType = DType.FLOAT32,
              quant: QuantParams | None = None) -> str:
        """Declare a graph input."""
        self.tensors[name] = Tensor(name, tuple(shape), dtype, quant)
        self.inputs.append(name)
        return name

    def constant(self, name: str, shape: tuple[int, ...], dtype: DType = DType.FLOAT32,
                 data: np.ndarray | None = None, quant: QuantParams | None = None) -> str:
        """Declare a constant (weights, biases); ``data`` may be None for analytic graphs."""
        name = self.unique(name)
        self.tensors[name] = Tensor(name, tuple(shape), dtype, quant, True, data)
        return name

    def op(self, kind: OpKind, inputs: list[str], attrs: Attrs | None = None, name: str | None = None,
           dtype: DType | None = None, quant: QuantParams | None = None) -> str:
        """Append an op; its single output's shape is inferred; returns the output's name."""
        attrs = NoAttrs() if attrs is None else attrs
        op_name = self.unique(name or kind.value.lower())
        probe = Op(op_name, kind, tuple(inputs), ("?",), attrs)
        shape = infer_output_shape(probe, [self.tensors[i].shape for i in inputs])
        out_dtype = dtype if dtype is not None else self.tensors[inputs[0]].dtype
        out = self.unique(f"{op_name}:out")
        self.tensors[out] = Tensor(out, shape, out_dtype, quant)
        self.ops.append(Op(op_name, kind, tuple(inputs), (out,), attrs))
        if self._open_block is not None:
            self._open_block.append(op_name)
        return out

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of a tensor added so far."""
        return self.tensors[name].shape

    def begin_block(self) -> None:
        """Start collecting ops into a block."""
        self._open_block = []

    def end_block(self, name: str, kind: str = "block", residual: bool = False) -> None:
        """Close the current block under ``name``."""
        if self._open_block:
            self.blocks.append(Block(name, tuple(self._open_block), kind, residual))
        self._open_block = None

    def finish(self, outputs: list[str], metadata: dict | None = None) -> Graph:
        """The validated graph."""
        graph = Graph(self.name, self.tensors, tuple(self.ops), tuple(self.inputs), tuple(outputs),
                      tuple(self.blocks), metadata or {})
        return validate(graph)
