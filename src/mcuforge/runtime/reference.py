"""The int8 reference interpreter: runs an IR graph op by op with the numpy kernels.

Bit-exact with the TensorFlow Lite Micro reference kernels (see `kernels_conv`, `kernels_pool`,
`kernels_elementwise`, `kernels_misc`), so it is the oracle that generated C and patch-based
schedules are checked against. It is a plain interpreter: an environment maps tensor names to numpy
arrays; constants come from the graph; each op reads its inputs from the environment and writes its
output there (`run_op`). `Interpreter.invoke` validates the inputs and returns the graph outputs.

Activations are int8 with per-tensor quantisation; weights may be per-channel, and int8 or
int4 (int4 values sit unpacked in an int8 array, so the kernels are the same). Float tensors appear
only at QUANTIZE inputs and DEQUANTIZE outputs (float-I/O models). Anything else raises
`UnsupportedOpError` naming the op.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import McuforgeError, UnsupportedOpError
from ..ir import DType, Graph, Op, OpKind, QuantParams
from . import kernels_conv, kernels_elementwise, kernels_misc, kernels_pool


class RuntimeInputError(McuforgeError):
    """Inputs that do not match the graph: wrong count, shape or dtype."""


# Ops that move values without arithmetic (any dtype; CONCATENATION requantises int8 inputs whose
# quantisation differs from the output's).
_DATA_MOVEMENT = {OpKind.RESHAPE, OpKind.TRANSPOSE, OpKind.PAD, OpKind.CONCATENATION,
                  OpKind.RESIZE_NEAREST_NEIGHBOR}


def _where(graph: Graph, op: Op) -> str:
    index = next((i for i, o in enumerate(graph.ops) if o.name == op.name), -1)
    return f"operator #{index} {op.name} ({op.kind.value})"


def _array(graph: Graph, env: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    if name in env:
        return env[name]
    data = graph.tensor(name).data
    if data is None:
        raise McuforgeError(f"tensor {name!r} has no value (not computed yet, or a weight without "
                            "data in an analytic graph)")
    return data


def _quant(graph: Graph, op: Op, name: str) -> QuantParams:
    q = graph.tensor(name).quant
    if q is None:
        raise UnsupportedOpError(f"{_where(graph, op)}: tensor {name!r} is not quantised; the "
                                 "reference runtime runs int8 graphs only")
    return q


def _check_int8(graph: Graph, op: Op, names: Sequence[str]) -> None:
    for name in names:
        dtype = graph.tensor(name).dtype
        if dtype is not DType.INT8:
            raise UnsupportedOpError(f"unsupported op {op.kind.value} at {_where(graph, op)} "
                                     f"(tensor {name}): {dtype.value} tensors are not supported by "
                                     "the int8 reference runtime")


def _conv_like(graph: Graph, op: Op, env: Mapping[str, np.ndarray]) -> np.ndarray:
    x_name, w_name = op.inputs[0], op.inputs[1]
    _check_int8(graph, op, [x_name, op.outputs[0]])
    if graph.tensor(w_name).dtype is not DType.INT4:  # int4 weights arrive unpacked (int8 values)
        _check_int8(graph, op, [w_name])
    bias = _array(graph, env, op.inputs[2]) if len(op.inputs) > 2 else None
    args = (_array(graph, env, x_name), _array(graph, env, w_name), bias, op.attrs,
            _quant(graph, op, x_name), _quant(graph, op, w_name), _quant(graph, op, op.outputs[0]))
    if op.kind is OpKind.CONV_2D:
        return kernels_conv.conv2d_int8(*args)
    if op.kind is OpKind.DEPTHWISE_CONV_2D:
        return kernels_conv.depthwise_conv2d_int8(*args)
    return kernels_conv.fully_connected_int8(*args)


def _unary_int8(kernel: Callable) -> Callable:
    def run(graph: Graph, op: Op, env: Mapping[str, np.ndarray]) -> np.ndarray:
        x_name, y_name = op.inputs[0], op.outputs[0]
        _check_int8(graph, op, [x_name, y_name])
        return kernel(_array(graph, env, x_name), _quant(graph, op, x_name),
                      _quant(graph, op, y_name))
    return run


def _unary_int8_with_attrs(kernel: Callable) -> Callable:
    def run(graph: Graph, op: Op, env: Mapping[str, np.ndarray]) -> np.ndarray:
        x_name, y_name = op.inputs[0], op.outputs[0]
        _check_int8(graph, op, [x_name, y_name])
        return kernel(_array(graph, env, x_name), op.attrs, _quant(graph, op, x_name),
                      _quant(graph, op, y_name))
    return run


def _binary(kernel: Callable) -> Callable:
    def run(graph: Graph, op: Op, env: Mapping[str, np.ndarray]) -> np.ndarray:
        a, b = op.inputs[0], op.inputs[1]
        _check_int8(graph, op, [a, b, op.outputs[0]])
        return kernel(_array(graph, env, a), _array(graph, env, b), op.attrs.clamp,
                      _quant(graph, op, a), _quant(graph, op, b), _quant(graph, op, op.outputs[0]))
    return run


def _quantize(graph: Graph, op: Op, env: Mapping[str, np.ndarray]) -> np.ndarray:
    x_name, y_name = op.inputs[0], op.outputs[0]
    x_tensor, y_tensor = graph.tensor(x_name), graph.tensor(y_name)
    if y_tensor.dtype not in (DType.INT8, DType.INT16):
        raise UnsupportedOpError(f"{_where(graph, op)}: QUANTIZE to {y_tensor.dtype.value}")
    x_q = None if x_tensor.dtype is DType.FLOAT32 else _quant(graph, op, x_name)
    return kernels_elementwise.quantize(_array(graph, env, x_name), x_q, _quant(graph, op, y_name),
                                        y_tensor.dtype.numpy)


def _dequantize(graph: Graph, op: Op, env: Mapping[str, np.ndarray]) -> np.ndarray:
    x_name = op.inputs[0]
    if graph.tensor(op.outputs[0]).dtype is not DType.FLOAT32:
        raise UnsupportedOpError(f"{_where(graph, op)}: DEQUANTIZE must produce float32")
    return kernels_elementwise.dequantize(_array(graph, env, x_name), _quant(graph, op, x_name))


def _movement(graph: Graph, op: Op, env: Mapping[str, np.ndarray]) -> np.ndarray:
    x = _array(graph, env, op.inputs[0])
    y_tensor = graph.tensor(op.outputs[0])
    if op.kind is OpKind.RESHAPE:
        return x.reshape(y_tensor.shape)
    if op.kind is OpKind.TRANSPOSE:
        return kernels_misc.transpose(x, op.attrs)
    if op.kind is OpKind.PAD:
        return kernels_misc.pad_int8(x, op.attrs, graph.tensor(op.inputs[0]).quant, y_tensor.quant)
    if op.kind is OpKind.RESIZE_NEAREST_NEIGHBOR:
        return kernels_misc.resize_nearest_neighbor(x, op.attrs)
    xs = [_array(graph, env, name) for name in op.inputs]
    x_qs = [graph.tensor(name).quant for name in op.inputs]
    return kernels_misc.concatenation_int8(xs, op.attrs, x_qs, y_tensor.quant)


_HANDLERS: dict[OpKind, Callable[[Graph, Op, Mapping[str, np.ndarray]], np.ndarray]] = {
    OpKind.CONV_2D: _conv_like,
    OpKind.DEPTHWISE_CONV_2D: _conv_like,
    OpKind.FULLY_CONNECTED: _conv_like,
    OpKind.ADD: _binary(kernels_elementwise.add_int8),
    OpKind.MUL: _binary(kernels_elementwise.mul_int8),
    OpKind.AVERAGE_POOL_2D: _unary_int8_with_attrs(kernels_pool.average_pool2d_int8),
    OpKind.MAX_POOL_2D: _unary_int8_with_attrs(kernels_pool.max_pool2d_int8),
    OpKind.MEAN: _unary_int8_with_attrs(kernels_pool.mean_int8),
    OpKind.SOFTMAX: _unary_int8_with_attrs(kernels_misc.softmax_int8),
    OpKind.QUANTIZE: _quantize,
    OpKind.DEQUANTIZE: _dequantize,
    OpKind.HARD_SWISH: _unary_int8(kernels_elementwise.hard_swish_int8),
    OpKind.LOGISTIC: _unary_int8(kernels_elementwise.logistic_int8),
    OpKind.RELU: _unary_int8(kernels_elementwise.relu_int8),
    OpKind.RELU6: _unary_int8(kernels_elementwise.relu6_int8),
    **{kind: _movement for kind in _DATA_MOVEMENT},
}


def run_op(graph: Graph, op: Op, env: dict[str, np.ndarray]) -> None:
    """Run one op: read its inputs from ``env`` (constants fall back to the graph's data) and store
    its output in ``env`` with the output tensor's shape and dtype."""
    handler = _HANDLERS.get(op.kind)
    if handler is None:
        raise UnsupportedOpError(f"unsupported op {op.kind.value} at {_where(graph, op)} "
                                 f"(tensor {op.outputs[0]})")
    try:
        result = handler(graph, op, env)
    except ValueError as exc:
        raise McuforgeError(f"{_where(graph, op)}: {exc}") from None
    y_tensor = graph.tensor(op.outputs[0])
    if result.size != y_tensor.num_elements:
        raise McuforgeError(f"{_where(graph, op)}: computed {result.shape}, graph declares "
                            f"{y_tensor.shape} for {y_tensor.name!r}")
    env[op.outputs[0]] = np.ascontiguousarray(result.reshape(y_tensor.shape),
                                              dtype=y_tensor.dtype.numpy)


class Interpreter:
    """Runs an int8 IR graph. ``Interpreter(graph).invoke([x])`` returns the list of outputs."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._constants = {name: t.data for name, t in graph.tensors.items() if t.data is not None}
        for index, op in enumerate(graph.ops):
            if op.kind not in _HANDLERS:
                raise UnsupportedOpError(f"unsupported op {op.kind.value} at operator #{index} "
                                         f"(tensor {op.outputs[0]})")
            for name in op.inputs:
                tensor = graph.tensor(name)
                if tensor.constant and tensor.data is None:
                    raise McuforgeError(f"operator #{index} {op.name}: weight {name!r} has no "
                                        "values (an analytic graph cannot be run)")

    def input_specs(self) -> list[tuple[str, tuple[int, ...], np.dtype]]:
        """(name, shape, numpy dtype) of every graph input, in order."""
        return [(name, tuple(self.graph.tensor(name).shape), self.graph.tensor(name).dtype.numpy)
                for name in self.graph.inputs]

    def check_inputs(self, inputs: Sequence[np.ndarray]) -> None:
        """Raise `RuntimeInputError` unless ``inputs`` match the graph inputs in count, shape and
        dtype."""
        specs = self.input_specs()
        if len(inputs) != len(specs):
            raise RuntimeInputError(f"graph {self.graph.name} takes {len(specs)} input(s), "
                                    f"got {len(inputs)}")
        for index, (array, (name, shape, dtype)) in enumerate(zip(inputs, specs)):
            array = np.asarray(array)
            if tuple(array.shape) != shape or array.dtype != dtype:
                raise RuntimeInputError(
                    f"input {index} ({name!r}) needs dtype {dtype} and shape {list(shape)}, "
                    f"got dtype {array.dtype} and shape {list(array.shape)}")

    def invoke_all(self, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph and return every tensor's value (constants included) by name."""
        self.check_inputs(inputs)
        env: dict[str, np.ndarray] = dict(self._constants)
        for name, array in zip(self.graph.inputs, inputs):
            env[name] = np.asarray(array)
        for op in self.graph.ops:
            run_op(self.graph, op, env)
        return env

    def invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the graph on ``inputs`` (one array per graph input) and return its outputs."""
        env = self.invoke_all(inputs)
        return [env[name].copy() for name in self.graph.outputs]
