"""The int8 reference interpreter: runs an IR graph op by op with the numpy kernels.

Bit-exact with the TensorFlow Lite Micro reference kernels (each op's kernel lives in its op module,
`mcuforge.ops`, and is found through the registry), so it is the oracle that generated C and
patch-based schedules are checked against. It is a plain interpreter: an environment maps tensor
names to numpy arrays; constants come from the graph; each op reads its inputs from the environment
and writes its output there (`run_op`). `Interpreter.invoke` validates the inputs and returns the
graph outputs.

Activations are int8 with per-tensor quantisation; weights may be per-channel, and int8 or
int4 (int4 values sit unpacked in an int8 array, so the kernels are the same). Float tensors appear
only at QUANTIZE inputs and DEQUANTIZE outputs (float-I/O models). Anything else raises
`UnsupportedOpError` naming the op, when the interpreter is made (`ops.support`).

State: an op with state (UNIDIRECTIONAL_SEQUENCE_LSTM's hidden and cell state, TFLite's variable
tensors) keeps it from one `Interpreter.invoke` to the next, as TensorFlow Lite Micro does (its
variable tensors are reset only by ``AllocateTensors`` and ``reset()``); `Interpreter.reset_state`
is that reset. `run_op` without a ``state`` mapping runs such an op from its initial state.
"""

from __future__ import annotations

from typing import MutableMapping, Sequence

import numpy as np

from ..errors import McuforgeError, UnsupportedOpError
from ..ir import Graph, Op
from ..ops import find_op_def
from ..ops.reference_support import op_location
from ..ops.support import require_executable


class RuntimeInputError(McuforgeError):
    """Inputs that do not match the graph: wrong count, shape or dtype."""


def run_op(graph: Graph, op: Op, env: dict[str, np.ndarray],
           state: MutableMapping[str, tuple[np.ndarray, ...]] | None = None) -> None:
    """Run one op: read its inputs from ``env`` (constants fall back to the graph's data) and store
    its output in ``env`` with the output tensor's shape and dtype. ``state`` (by op name) holds the
    state of ops that have one: read before the run, replaced after it; None: initial state."""
    definition = find_op_def(op.kind)
    if definition is None or not definition.has_reference:
        raise UnsupportedOpError(f"unsupported op {op.kind.value} at {op_location(graph, op)} "
                                 f"(tensor {op.outputs[0]})")
    try:
        if state is None:
            result = definition.run(graph, op, env)
        else:
            result, after = definition.run_stateful(graph, op, env, state.get(op.name))
            if after is not None:
                state[op.name] = after
    except ValueError as exc:
        raise McuforgeError(f"{op_location(graph, op)}: {exc}") from None
    y_tensor = graph.tensor(op.outputs[0])
    if result.size != y_tensor.num_elements:
        raise McuforgeError(f"{op_location(graph, op)}: computed {result.shape}, graph declares "
                            f"{y_tensor.shape} for {y_tensor.name!r}")
    # np.asarray, not np.ascontiguousarray: that one turns a rank-0 output (a full reduction
    # without keep_dims) into shape (1,).
    env[op.outputs[0]] = np.asarray(result.reshape(y_tensor.shape), dtype=y_tensor.dtype.numpy,
                                    order="C")


class Interpreter:
    """Runs an int8 IR graph. ``Interpreter(graph).invoke([x])`` returns the list of outputs; the
    state of stateful ops carries from one invoke to the next until `reset_state`."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._constants = {name: t.data for name, t in graph.tensors.items() if t.data is not None}
        self._state: dict[str, tuple[np.ndarray, ...]] = {}
        # The one check of what can run (`ops.support`): kernels, dtypes, weights with values.
        require_executable(graph, c_code=False)

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
            run_op(self.graph, op, env, self._state)
        return env

    def reset_state(self) -> None:
        """Put every stateful op back to its initial state (TFLite Micro's ``reset()``)."""
        self._state.clear()

    def invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the graph on ``inputs`` (one array per graph input) and return its outputs."""
        env = self.invoke_all(inputs)
        return [env[name].copy() for name in self.graph.outputs]
