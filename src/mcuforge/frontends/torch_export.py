"""PyTorch in: a `torch.export` ExportedProgram (or a ``.pt2`` file of `torch.export.save`) -> a
float32 IR graph in TFLite's layout.

The exported program's FX graph of aten ops is walked node by node (no tracer of our own):

- layout: 4-D activations are NCHW in torch and NHWC in the IR (as TFLite's); every other rank
  keeps torch's order. A ``flatten``/``view`` of a 4-D tensor whose C and H*W are both > 1 goes
  through a TRANSPOSE back to NCHW first, so the flattened order is torch's;
- ``conv2d`` -> CONV_2D (OHWI weights) or DEPTHWISE_CONV_2D (groups = input channels, weights
  [1, kh, kw, C*m]); ``batch_norm`` right after a conv is folded into its weights and bias (anywhere
  else it is a 1x1 depthwise conv); ``linear`` -> FULLY_CONNECTED;
- ``relu``/``relu6``/``hardtanh(0, 6)`` fuse into the clamp of the op before them when it has one
  and nothing else reads its output, else they are RELU / RELU6 ops; ``hardswish`` -> HARD_SWISH;
  ``hardsigmoid`` -> ADD 3 (fused RELU6) and MUL 1/6, as TFLite writes it; ``sigmoid`` -> LOGISTIC,
  ``tanh`` -> TANH, ``softmax`` over the last axis -> SOFTMAX;
- ``add``/``sub``/``mul`` of two tensors of one rank or with a scalar (a one-element constant) -> ADD / SUB / MUL,
  ``cat`` -> CONCATENATION, ``mean`` -> MEAN, ``adaptive_avg_pool2d`` to a divisor of the input and
  ``avg_pool2d``/``max_pool2d`` without padding -> AVERAGE_POOL_2D / MAX_POOL_2D,
  ``upsample_nearest2d`` -> RESIZE_NEAREST_NEIGHBOR, constant zero ``pad`` -> PAD, ``permute`` ->
  TRANSPOSE; ``dropout``, ``clone``, ``contiguous`` and friends are the identity;
- in-place variants (``relu_``, ``hardswish_``, ``dropout_``, ... as ``inplace=True`` modules
  export) are their functional op: the exported graph's later readers read the in-place result.

Anything else is refused with `UnsupportedOpError` in one line naming the aten op and the line of
the user's module that called it (from the node's ``stack_trace`` / ``nn_module_stack``).
Batch must be 1. The float graph is quantised by `mcuforge.quant.graph_ptq.quantize_float_graph`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import McuforgeError, ModelFileError, UnsupportedOpError
from ..ir import DType, Graph, OpKind
from ..ir.builder import GraphBuilder
from .tflite_blocks import infer_blocks
from .torch_aten import NCHW_TO_NHWC, AtenOps, aten_name

_IDENTITY = {"dropout", "clone", "contiguous", "alias", "detach", "lift_fresh_copy"}


def source_line(node: Any) -> str:
    """Where in the user's code ``node`` came from: ``file:line (code)`` of the innermost frame of
    its stack trace, else the module path of its ``nn_module_stack``, else its name."""
    trace = node.meta.get("stack_trace") or ""
    frames = re.findall(r'File "([^"]+)", line (\d+), in \S+\n\s*(.*)', trace)
    if frames:
        path, line, code = frames[-1]
        return f"{Path(path).name}:{line} ({code.strip()})"
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path, cls = list(stack.values())[-1]
        return f"module {path or '<root>'} ({cls})"
    return f"node {node.name}"


class _Converter(AtenOps):
    """Walks the FX graph of one ExportedProgram and builds the float IR graph."""

    def __init__(self, program: Any, name: str):
        self.program = program
        self.b = GraphBuilder(name)
        self.values: dict[str, Any] = {}     # FX node name -> IR tensor name, or a python value
        self.params: dict[str, np.ndarray] = {}
        signature = program.graph_signature
        state = program.state_dict
        constants = getattr(program, "constants", {})
        for spec in signature.input_specs:
            target = spec.target
            if target is None:
                continue
            source = state if target in state else constants
            if target in source:
                self.params[spec.arg.name] = source[target].detach().cpu().double().numpy()
        self.users: dict[str, int] = {}     # IR tensor -> FX nodes that read it

    # --- helpers -------------------------------------------------------------------------------
    def shape(self, name: str) -> tuple[int, ...]:
        """The IR shape of tensor ``name``."""
        return self.b.shape(name)

    def constant(self, label: str, data: np.ndarray) -> str:
        """A float32 constant tensor."""
        data = np.asarray(data, dtype=np.float32)
        return self.b.constant(label, data.shape, DType.FLOAT32, data)

    def param(self, node: Any) -> np.ndarray:
        """The value of a parameter/buffer/constant placeholder node."""
        if node is None:
            return None
        if node.name not in self.params:
            raise McuforgeError(f"{node.name} is not a constant (weights must be parameters)")
        return self.params[node.name]

    def tensor(self, arg: Any) -> str:
        """The IR tensor of an FX argument (a node)."""
        value = self.values.get(arg.name) if hasattr(arg, "name") else None
        if isinstance(value, str):
            return value
        if hasattr(arg, "name") and arg.name in self.params:  # a buffer used as an operand
            data = self.params[arg.name]
            data = data.transpose(NCHW_TO_NHWC) if data.ndim == 4 else data.reshape(data.shape or (1,))
            return self.constant(arg.name, data)
        raise McuforgeError(f"argument {arg} is not a tensor")

    def op(self, kind: OpKind, inputs: list[str], attrs: Any = None, label: str = "") -> str:
        """Append a float op."""
        return self.b.op(kind, inputs, attrs, name=label or None, dtype=DType.FLOAT32)

    # --- the walk ------------------------------------------------------------------------------
    def run(self) -> Graph:
        """Convert every node; the float graph."""
        import operator
        handlers = self.handlers()
        user_inputs = {spec.arg.name for spec in self.program.graph_signature.input_specs
                       if spec.kind.name == "USER_INPUT"}
        outputs: list[str] = []
        for node in self.program.graph.nodes:
            if node.op == "placeholder":
                if node.name in user_inputs:
                    shape = tuple(int(v) for v in node.meta["val"].shape)
                    if shape and shape[0] != 1:
                        raise UnsupportedOpError(f"input {node.name} has batch {shape[0]} "
                                                 "(export with a batch of 1)")
                    ir_shape = tuple(shape[d] for d in NCHW_TO_NHWC) if len(shape) == 4 else shape
                    self._bind(node, self.b.input(node.name, ir_shape, DType.FLOAT32))
                continue
            if node.op == "output":
                outputs = [self.tensor(arg) for arg in node.args[0]]
                continue
            if node.op != "call_function":
                raise UnsupportedOpError(f"FX node {node.op} {node.target} at {source_line(node)}")
            if node.target is operator.getitem:
                source, index = node.args
                if index != 0:
                    raise UnsupportedOpError(f"output {index} of {source.name} at "
                                             f"{source_line(node)}")
                self._bind(node, self.values[source.name])
                continue
            name = self._functional_name(aten_name(node.target), handlers)
            if name in _IDENTITY:
                self._bind(node, self.tensor(node.args[0]))
                continue
            handler = handlers.get(name)
            if handler is None:
                raise UnsupportedOpError(f"unsupported aten op {node.target} at {source_line(node)}")
            try:
                result = handler(node, *node.args, **node.kwargs)
            except (McuforgeError, TypeError, ValueError, IndexError) as exc:
                raise UnsupportedOpError(f"unsupported {node.target}: {exc} at "
                                         f"{source_line(node)}") from None
            self._bind(node, result)
        return self.b.finish(outputs, {"source": "torch.export", "layout": "NHWC"})

    @staticmethod
    def _functional_name(name: str, handlers: dict) -> str:
        """The functional op of an in-place aten op (``hardswish_`` -> ``hardswish``, as
        ``nn.Hardswish(inplace=True)`` exports): torch.export already makes every later reader of
        the overwritten value read the in-place op's result, so a new tensor computes the same."""
        if name.endswith("_") and not name.startswith("_") and \
                (name[:-1] in handlers or name[:-1] in _IDENTITY):
            return name[:-1]
        return name

    def _bind(self, node: Any, tensor: str) -> None:
        """Node ``node``'s value is IR tensor ``tensor``; count its readers: the node's users, in
        place of the one read the node itself was when it passes an existing tensor through."""
        self.values[node.name] = tensor
        readers = len(node.users)
        if tensor in self.users and node.op != "placeholder":
            self.users[tensor] += readers - 1
        else:
            self.users[tensor] = readers


def convert_exported_program(program: Any, name: str = "torch_model") -> Graph:
    """The float32 IR graph of an ExportedProgram (see the module doc)."""
    graph = _Converter(program, name).run()
    return graph.with_ops(graph.ops, blocks=infer_blocks(graph))


def export_module(module: Any, example_input: Any) -> Any:
    """`torch.export.export` of ``module`` in eval mode on ``example_input`` (a tensor or a tuple)."""
    import torch
    module = module.eval()
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    try:
        return torch.export.export(module, tuple(torch.as_tensor(a).float() for a in args))
    except Exception as exc:  # torch raises many kinds; the user gets one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise McuforgeError(f"torch.export failed: {first}") from None


def load_pt2(path: str | Path) -> Graph:
    """The float IR graph of a ``torch.export.save`` file."""
    import torch
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    import logging
    logger = logging.getLogger("torch.export")
    level, logger.level = logger.level, logging.ERROR  # torch logs a traceback before raising
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path}: not a torch.export file ({type(exc).__name__})") from None
    finally:
        logger.setLevel(level)
    return convert_exported_program(program, path.stem)


__all__ = ["convert_exported_program", "export_module", "load_pt2", "source_line"]
