"""Can this graph be run and compiled? The one check that `run`, `compile`, `verify`, `profile` and
`bench` (and the reference `Interpreter`) ask before they touch a model.

The answer comes from the op registry: an op kind is runnable when its module defines a reference
kernel (`OpDef.has_reference`), compilable when it also defines a C lowering (`OpDef.has_lowering`; the QUANTIZE/DEQUANTIZE at
the edges of a float-I/O model need none: the generated C leaves them to its caller,
`is_edge_conversion`, which `codegen.edges` uses too),
and every non-constant input and the output of the op must have one of the dtypes its kernels take
(`OpDef.input_dtypes`, `OpDef.output_dtypes`: int8 by default; QUANTIZE also takes a float32 input
and DEQUANTIZE gives a float32 output, the edges of a float-I/O model). A constant input without
values (a weight of an analytic zoo/spec graph) cannot be run either.

`refusal` returns the first problem as one line naming the op kind, operator index and tensor, and
what is supported, e.g. ``CONV_2D at operator #0 (tensor y): input x is float32, CONV_2D takes int8 (mcuforge
runs int8 models, float32 only as a QUANTIZE input or DEQUANTIZE output); quantise the model to
int8 first (int8 post-training quantisation)``; `require_executable` raises it as `UnsupportedOpError` (exit code 2 in the CLI).
Operators no op module knows at all (WHILE, IF, CALL_ONCE, GATHER_ND ...) and dynamic shapes are
refused earlier, by the .tflite reader, in the same one-line form.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ..errors import UnsupportedOpError
from ..ir.graph import Graph
from ..ir.ops import Op, OpKind
from ..ir.tensor import DType
from .registry import find_op_def, implemented_kinds

_MODEL_DTYPES = ("mcuforge runs int8 models (int16 activations in the 16x8 ops), float32 only as a "
                 "QUANTIZE input or DEQUANTIZE output")
_ADVICE = {
    DType.FLOAT32: "quantise the model to int8 first (int8 post-training quantisation)",
}


def _names(dtypes: frozenset[DType]) -> str:
    return "/".join(sorted(d.value for d in dtypes))


def _int16_advice() -> str:
    """Which op kinds take int16 (16x8) activations, from the registry."""
    wide = sorted(kind.value for kind in implemented_kinds()
                  if DType.INT16 in find_op_def(kind).input_dtypes)
    return f"int16 (16x8) activations run in {', '.join(wide)}; quantise the others to int8"


def _dtype_refusal(kind: str, index: int, out: str, role: str, name: str, dtype: DType,
                   allowed: frozenset[DType]) -> str:
    if dtype is DType.INT16:
        advice = _int16_advice()
    else:
        advice = _ADVICE.get(dtype, "quantise the model to int8")
    return (f"{kind} at operator #{index} (tensor {out}): {role} {name} is {dtype.value}, {kind} "
            f"takes {_names(allowed)} ({_MODEL_DTYPES}); {advice}")


def refusal(graph: Graph, c_code: bool = True) -> str | None:
    """Why ``graph`` cannot be run by the reference runtime (or, with ``c_code``, also compiled to
    C), in one line naming the op kind, operator index and tensor; None when it can."""
    for index, op in enumerate(graph.ops):
        kind, out = op.kind.value, op.outputs[0]
        definition = find_op_def(op.kind)
        if definition is None or not definition.has_reference:
            runnable = ", ".join(k.value for k in implemented_kinds()
                                 if find_op_def(k).has_reference)
            return (f"unsupported op {kind} at operator #{index} (tensor {out}): no int8 kernel; "
                    f"supported ops: {runnable}")
        for position, name in enumerate(op.inputs):
            tensor = graph.tensors[name]
            if tensor.constant:
                if tensor.data is None:
                    return (f"{kind} at operator #{index} (tensor {out}): weight {name} has no "
                            "values (an analytic graph, such as a zoo model, cannot be run or "
                            "compiled; give a quantised .tflite)")
                continue
            if tensor.dtype not in definition.input_dtypes:
                role = "input" if position == 0 else f"input {position}"
                return _dtype_refusal(kind, index, out, role, name, tensor.dtype,
                                      definition.input_dtypes)
        dtype = graph.tensors[out].dtype
        if dtype not in definition.output_dtypes:
            return _dtype_refusal(kind, index, out, "output", out, dtype, definition.output_dtypes)
    return _c_refusal(graph) if c_code else None


def is_edge_conversion(graph: Graph, op: Op, consumers: Mapping[str, Sequence[Op]]) -> bool:
    """Whether ``op`` is an edge conversion of a float-I/O model, which the generated C leaves to
    its caller (`codegen.edges`): a QUANTIZE that is the only reader of a float32 graph input, or a
    DEQUANTIZE that writes a float32 graph output. ``consumers``: `Graph.consumers()`."""
    if op.kind is OpKind.QUANTIZE and op.inputs:
        src = graph.tensors[op.inputs[0]]
        return (src.name in graph.inputs and src.dtype is DType.FLOAT32
                and len(consumers.get(src.name, [])) == 1)
    return (op.kind is OpKind.DEQUANTIZE and op.outputs[0] in graph.outputs
            and graph.tensors[op.outputs[0]].dtype is DType.FLOAT32)


def _c_refusal(graph: Graph) -> str | None:
    """Why the generated C cannot run ``graph`` (already runnable): an op kind without a C
    lowering, the float-I/O edge conversions the C leaves to its caller set aside."""
    consumers = graph.consumers()
    for index, op in enumerate(graph.ops):
        if not find_op_def(op.kind).has_lowering and not is_edge_conversion(graph, op, consumers):
            compilable = ", ".join(k.value for k in implemented_kinds()
                                   if find_op_def(k).has_lowering)
            return (f"unsupported op {op.kind.value} at operator #{index} (tensor "
                    f"{op.outputs[0]}): no C kernel; ops with C kernels: {compilable}")
    return None


def require_executable(graph: Graph, source: str | None = None, c_code: bool = True) -> Graph:
    """Return ``graph`` unchanged, or raise `UnsupportedOpError` with `refusal`'s line, prefixed by
    ``source: cannot run:`` (or ``cannot compile:`` with ``c_code``)."""
    why = refusal(graph, c_code)
    if why is None:
        return graph
    prefix = f"{source}: " if source else ""
    raise UnsupportedOpError(f"{prefix}cannot {'compile' if c_code else 'run'}: {why}")
