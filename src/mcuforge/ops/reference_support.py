"""Helpers the op modules' reference kernels share: reading operands from the interpreter's
environment, checking dtypes, and adapters from a kernel function to `OpDef.run`.

The environment maps tensor names to numpy arrays; constants fall back to the graph's data.
Activations are int8 with per-tensor quantisation; anything else raises `UnsupportedOpError`
naming the op (`op_location`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from ..errors import McuforgeError, UnsupportedOpError
from ..ir.ops import Op
from ..ir.tensor import DType, QuantParams

if TYPE_CHECKING:  # only for annotations
    from ..ir.graph import Graph

RunFunction = Callable[["Graph", Op, Mapping[str, np.ndarray]], np.ndarray]


def op_location(graph: "Graph", op: Op) -> str:
    """``operator #<index> <name> (<KIND>)``, for error messages."""
    index = next((i for i, o in enumerate(graph.ops) if o.name == op.name), -1)
    return f"operator #{index} {op.name} ({op.kind.value})"


def value_of(graph: "Graph", env: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """The value of tensor ``name``: from ``env``, else the graph's constant data."""
    if name in env:
        return env[name]
    data = graph.tensor(name).data
    if data is None:
        raise McuforgeError(f"tensor {name!r} has no value (not computed yet, or a weight without "
                            "data in an analytic graph)")
    return data


def quant_of(graph: "Graph", op: Op, name: str) -> QuantParams:
    """The quantisation of tensor ``name``; raises `UnsupportedOpError` for an unquantised one."""
    q = graph.tensor(name).quant
    if q is None:
        raise UnsupportedOpError(f"{op_location(graph, op)}: tensor {name!r} is not quantised; the "
                                 "reference runtime runs int8 graphs only")
    return q


def check_int8(graph: "Graph", op: Op, names: Sequence[str]) -> None:
    """Raise `UnsupportedOpError` unless every named tensor is int8."""
    for name in names:
        dtype = graph.tensor(name).dtype
        if dtype is not DType.INT8:
            raise UnsupportedOpError(f"unsupported op {op.kind.value} at {op_location(graph, op)} "
                                     f"(tensor {name}): {dtype.value} tensors are not supported by "
                                     "the int8 reference runtime")


def check_int8_or_int16(graph: "Graph", op: Op, names: Sequence[str]) -> None:
    """Raise `UnsupportedOpError` unless the named tensors are all int8 or all int16 (16x8)."""
    dtypes = [graph.tensor(name).dtype for name in names]
    if DType.INT16 not in dtypes:
        check_int8(graph, op, names)
        return
    for name, dtype in zip(names, dtypes):
        if dtype is not DType.INT16:
            raise UnsupportedOpError(f"unsupported dtype at {op_location(graph, op)}: tensor {name} "
                                     f"is {dtype.value}; an int16 {op.kind.value} takes int16 "
                                     "tensors only")


def unary_int8(kernel: Callable[..., np.ndarray]) -> RunFunction:
    """`OpDef.run` of ``kernel(x, x_q, y_q)`` on an int8 input and output."""
    def run(graph: "Graph", op: Op, env: Mapping[str, np.ndarray]) -> np.ndarray:
        x_name, y_name = op.inputs[0], op.outputs[0]
        check_int8(graph, op, [x_name, y_name])
        return kernel(value_of(graph, env, x_name), quant_of(graph, op, x_name),
                      quant_of(graph, op, y_name))
    return run


def unary_int8_with_attrs(kernel: Callable[..., np.ndarray],
                          check_dtypes: Callable[["Graph", Op, Sequence[str]], None] = check_int8
                          ) -> RunFunction:
    """`OpDef.run` of ``kernel(x, attrs, x_q, y_q)`` on an input and output that ``check_dtypes``
    accepts (int8 by default; `check_int8_or_int16` for the 16x8 ops, whose kernel gives the
    input's dtype)."""
    def run(graph: "Graph", op: Op, env: Mapping[str, np.ndarray]) -> np.ndarray:
        x_name, y_name = op.inputs[0], op.outputs[0]
        check_dtypes(graph, op, [x_name, y_name])
        return kernel(value_of(graph, env, x_name), op.attrs, quant_of(graph, op, x_name),
                      quant_of(graph, op, y_name))
    return run


def binary_int8(kernel: Callable[..., np.ndarray]) -> RunFunction:
    """`OpDef.run` of ``kernel(a, b, clamp, a_q, b_q, y_q)`` on int8 operands and output."""
    def run(graph: "Graph", op: Op, env: Mapping[str, np.ndarray]) -> np.ndarray:
        a, b = op.inputs[0], op.inputs[1]
        check_int8(graph, op, [a, b, op.outputs[0]])
        return kernel(value_of(graph, env, a), value_of(graph, env, b), op.attrs.clamp,
                      quant_of(graph, op, a), quant_of(graph, op, b),
                      quant_of(graph, op, op.outputs[0]))
    return run
