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
- ``add``/``mul`` of two tensors of one rank or with a scalar (a one-element constant) -> ADD / MUL,
  ``cat`` -> CONCATENATION, ``mean`` -> MEAN, ``adaptive_avg_pool2d`` to a divisor of the input and
  ``avg_pool2d``/``max_pool2d`` without padding -> AVERAGE_POOL_2D / MAX_POOL_2D,
  ``upsample_nearest2d`` -> RESIZE_NEAREST_NEIGHBOR, constant zero ``pad`` -> PAD, ``permute`` ->
  TRANSPOSE; ``dropout``, ``clone``, ``contiguous`` and friends are the identity.

Anything else is refused with `UnsupportedOpError` in one line naming the aten op and the line of
the user's module that called it (from the node's ``stack_trace`` / ``nn_module_stack``).
Batch must be 1. The float graph is quantised by `mcuforge.quant.graph_ptq.quantize_float_graph`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import McuforgeError, ModelFileError, UnsupportedOpError
from ..ir import (NO_CLAMP, RELU, RELU6, ConcatAttrs, ConvAttrs, DType, ElementwiseAttrs,
                  FullyConnectedAttrs, Graph, MeanAttrs, OpKind, PadAttrs, Pads, PoolAttrs,
                  ReshapeAttrs, ResizeAttrs, SoftmaxAttrs, TransposeAttrs)
from ..ir.builder import GraphBuilder

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)
_CLAMPED_KINDS = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED, OpKind.ADD,
                  OpKind.MUL)
_IDENTITY = {"dropout", "clone", "contiguous", "alias", "detach", "lift_fresh_copy", "_assert_tensor_metadata"}


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


def _aten_name(target: Any) -> str:
    """``conv2d`` for ``torch.ops.aten.conv2d.default`` (the overload packet's name)."""
    name = getattr(target, "__name__", str(target))
    return name.split(".")[0]


class _Converter:
    """Walks the FX graph of one ExportedProgram and builds the float IR graph."""

    def __init__(self, program: Any, name: str):
        import torch
        self.torch = torch
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
        self.users: dict[str, int] = {}

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
        if hasattr(arg, "name") and arg.name in self.params:
            return self.constant(arg.name, self.params[arg.name])
        raise McuforgeError(f"argument {arg} is not a tensor")

    def op(self, kind: OpKind, inputs: list[str], attrs: Any = None, label: str = "") -> str:
        """Append a float op."""
        return self.b.op(kind, inputs, attrs, name=label or None, dtype=DType.FLOAT32)

    def to_torch_order(self, x: str, label: str) -> str:
        """A 4-D NHWC tensor transposed back to NCHW (other ranks are already in torch order)."""
        if len(self.shape(x)) != 4:
            return x
        return self.op(OpKind.TRANSPOSE, [x], TransposeAttrs(NHWC_TO_NCHW), f"{label}.to_nchw")

    def reshape(self, x: str, torch_shape: tuple[int, ...], label: str) -> str:
        """RESHAPE of ``x`` to the torch shape ``torch_shape`` (4-D results come out NHWC)."""
        in_shape = self.shape(x)
        if len(in_shape) == 4 and len(torch_shape) == 4 and in_shape[1] * in_shape[2] == 1 \
                and torch_shape[2] * torch_shape[3] == 1:
            return self.op(OpKind.RESHAPE, [x], ReshapeAttrs((torch_shape[0], 1, 1, torch_shape[1])),
                           label)
        trivial = len(in_shape) == 4 and (in_shape[1] * in_shape[2] == 1 or in_shape[3] == 1)
        if not trivial:
            x = self.to_torch_order(x, label)
        if len(torch_shape) == 4:
            y = self.op(OpKind.RESHAPE, [x], ReshapeAttrs(tuple(torch_shape)), f"{label}.nchw")
            return self.op(OpKind.TRANSPOSE, [y], TransposeAttrs(NCHW_TO_NHWC), label)
        return self.op(OpKind.RESHAPE, [x], ReshapeAttrs(tuple(torch_shape)), label)

    def axis(self, x: str, dim: int) -> int:
        """The IR axis of torch dimension ``dim`` of ``x``."""
        rank = len(self.shape(x))
        dim = dim % rank
        return NCHW_TO_NHWC.index(dim) if rank == 4 else dim

    def fuse(self, x: str, clamp: tuple[float, float], label: str) -> str:
        """Apply a relu/relu6 clamp: fused into the producing op when possible, else an op."""
        for index in range(len(self.b.ops) - 1, -1, -1):
            producer = self.b.ops[index]
            if producer.outputs[0] != x:
                continue
            attrs = producer.attrs
            if producer.kind in _CLAMPED_KINDS and attrs.clamp == NO_CLAMP \
                    and self.users.get(x, 0) == 1 and x not in self.b.inputs:
                from dataclasses import replace
                self.b.ops[index] = replace(producer, attrs=replace(attrs, clamp=clamp))
                return x
            break
        return self.op(OpKind.RELU if clamp == RELU else OpKind.RELU6, [x], None, label)

    # --- aten ops ------------------------------------------------------------------------------
    def conv2d(self, node, x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        """CONV_2D or DEPTHWISE_CONV_2D."""
        x_name = self.tensor(x)
        weight = self.param(w)
        bias = self.param(b) if b is not None else np.zeros(weight.shape[0])
        return self._conv(node, x_name, weight, bias, stride, padding, dilation, groups)

    def _conv(self, node, x_name, weight, bias, stride, padding, dilation, groups):
        if isinstance(padding, str):
            raise UnsupportedOpError(f"conv2d padding={padding!r} (give explicit padding)")
        stride, padding, dilation = (tuple(v) * (2 if len(v) == 1 else 1)
                                     for v in (stride, padding, dilation))
        in_c = self.shape(x_name)[3]
        out_c = weight.shape[0]
        pads = Pads(padding[0], padding[0], padding[1], padding[1])
        if groups == 1:
            kind, w_ir, mult = OpKind.CONV_2D, weight.transpose(0, 2, 3, 1), 1
        elif groups == in_c and out_c % in_c == 0:
            kind, w_ir, mult = OpKind.DEPTHWISE_CONV_2D, weight.transpose(1, 2, 3, 0), out_c // in_c
        else:
            raise UnsupportedOpError(f"grouped conv2d (groups={groups}, {in_c} input channels)")
        label = node.name
        w_t = self.constant(f"{label}.weight", w_ir)
        b_t = self.constant(f"{label}.bias", bias)
        attrs = ConvAttrs(tuple(stride), pads, tuple(dilation), NO_CLAMP, mult)
        return self.op(kind, [x_name, w_t, b_t], attrs, label)

    def batch_norm(self, node, x, gamma, beta, mean, var, *rest):
        """Folded into the conv before it, else a 1x1 depthwise conv."""
        eps = float(rest[-1]) if rest else 1e-5
        mean, var = self.param(mean), self.param(var)
        gamma = self.param(gamma) if gamma is not None else np.ones_like(mean)
        beta = self.param(beta) if beta is not None else np.zeros_like(mean)
        scale = gamma / np.sqrt(var + eps)
        x_name = self.tensor(x)
        for index in range(len(self.b.ops) - 1, -1, -1):
            producer = self.b.ops[index]
            if producer.outputs[0] == x_name and producer.kind in (
                    OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D) and self.users.get(x_name) == 1 \
                    and producer.attrs.clamp == NO_CLAMP:
                w_name, b_name = producer.inputs[1:]
                axis = 0 if producer.kind is OpKind.CONV_2D else 3
                shape = [1, 1, 1, 1]
                shape[axis] = -1
                w = self.b.tensors[w_name]
                from dataclasses import replace
                self.b.tensors[w_name] = replace(
                    w, data=(w.data * scale.reshape(shape)).astype(np.float32))
                b = self.b.tensors[b_name]
                self.b.tensors[b_name] = replace(
                    b, data=((b.data - mean) * scale + beta).astype(np.float32))
                return x_name
        channels = mean.shape[0]
        return self._conv(node, x_name, scale.reshape(channels, 1, 1, 1), beta - mean * scale,
                          (1, 1), (0, 0), (1, 1), channels)

    def linear(self, node, x, w, b=None):
        """FULLY_CONNECTED."""
        x_name = self.tensor(x)
        weight = self.param(w)
        bias = self.param(b) if b is not None else np.zeros(weight.shape[0])
        if len(self.shape(x_name)) != 2:
            raise UnsupportedOpError(f"linear on a {len(self.shape(x_name))}-D input (flatten first)")
        w_t = self.constant(f"{node.name}.weight", weight)
        b_t = self.constant(f"{node.name}.bias", bias)
        return self.op(OpKind.FULLY_CONNECTED, [x_name, w_t, b_t], FullyConnectedAttrs(), node.name)

    def hardtanh(self, node, x, low=-1.0, high=1.0):
        """relu6 when (0, 6)."""
        if (float(low), float(high)) != RELU6:
            raise UnsupportedOpError(f"hardtanh({low}, {high}) (only (0, 6), which is relu6)")
        return self.fuse(self.tensor(x), RELU6, node.name)

    def hardsigmoid(self, node, x):
        """relu6(x + 3) * (1/6)."""
        y = self.op(OpKind.ADD, [self.tensor(x), self.constant(f"{node.name}.three", [3.0])],
                    ElementwiseAttrs(RELU6), f"{node.name}.add")
        return self.op(OpKind.MUL, [y, self.constant(f"{node.name}.sixth", [1.0 / 6.0])],
                       ElementwiseAttrs(), node.name)

    def binary(self, kind, node, a, b, alpha=1):
        """ADD or MUL of two tensors, or of a tensor and a scalar."""
        if alpha != 1:
            raise UnsupportedOpError(f"{_aten_name(node.target)} with alpha={alpha}")
        names = []
        for arg in (a, b):
            if isinstance(arg, (int, float)):
                names.append(self.constant(f"{node.name}.scalar", [float(arg)]))
            else:
                names.append(self.tensor(arg))
        ranks = {len(self.shape(n)) for n in names if math.prod(self.shape(n)) > 1}
        if len(ranks) > 1:
            raise UnsupportedOpError(f"{_aten_name(node.target)} broadcasting across ranks "
                                     f"{[self.shape(n) for n in names]}")
        return self.op(kind, names, ElementwiseAttrs(), node.name)

    def cat(self, node, tensors, dim=0):
        """CONCATENATION."""
        names = [self.tensor(t) for t in tensors]
        return self.op(OpKind.CONCATENATION, names, ConcatAttrs(self.axis(names[0], dim)), node.name)

    def view(self, node, x, shape):
        """RESHAPE (torch order kept, see the module doc)."""
        out = tuple(int(v) for v in node.meta["val"].shape)
        return self.reshape(self.tensor(x), out, node.name)

    def mean(self, node, x, dims, keepdim=False, *rest):
        """MEAN over the given axes."""
        x_name = self.tensor(x)
        axes = tuple(sorted(self.axis(x_name, d) for d in dims))
        if len(self.shape(x_name)) == 4 and not keepdim and axes != (1, 2):
            raise UnsupportedOpError("mean without keepdim over axes other than H and W")
        return self.op(OpKind.MEAN, [x_name], MeanAttrs(axes, bool(keepdim)), node.name)

    def adaptive_avg_pool2d(self, node, x, size):
        """AVERAGE_POOL_2D with kernel = stride = input / output."""
        x_name = self.tensor(x)
        _, h, w, _ = self.shape(x_name)
        oh, ow = (tuple(size) * 2)[:2] if len(size) == 1 else tuple(size)
        if h % oh or w % ow:
            raise UnsupportedOpError(f"adaptive_avg_pool2d from {h}x{w} to {oh}x{ow} (not a divisor)")
        k = (h // oh, w // ow)
        return self.op(OpKind.AVERAGE_POOL_2D, [x_name], PoolAttrs(k, k), node.name)

    def pool(self, kind, node, x, kernel, stride=(), padding=(0, 0), *rest):
        """AVERAGE_POOL_2D or MAX_POOL_2D without padding or ceil mode."""
        kernel = tuple(kernel) * (2 if len(kernel) == 1 else 1)
        stride = tuple(stride) * (2 if len(stride) == 1 else 1) if stride else kernel
        padding = tuple(padding) * (2 if len(padding) == 1 else 1)
        ceil = any(isinstance(v, bool) and v for v in rest[:2])
        if any(padding) or ceil:
            raise UnsupportedOpError(f"{_aten_name(node.target)} with padding {padding} or ceil_mode")
        return self.op(kind, [self.tensor(x)], PoolAttrs(kernel, stride), node.name)

    def upsample_nearest2d(self, node, x, *args):
        """RESIZE_NEAREST_NEIGHBOR to the output size torch computed."""
        _, _, oh, ow = (int(v) for v in node.meta["val"].shape)
        return self.op(OpKind.RESIZE_NEAREST_NEIGHBOR, [self.tensor(x)], ResizeAttrs((oh, ow)),
                       node.name)

    def pad(self, node, x, pad, mode="constant", value=None):
        """PAD with zeros."""
        if mode != "constant" or (value not in (None, 0, 0.0)):
            raise UnsupportedOpError(f"pad mode={mode!r} value={value} (only constant zero)")
        x_name = self.tensor(x)
        rank = len(self.shape(x_name))
        torch_pads = [(0, 0)] * rank
        for i in range(len(pad) // 2):
            torch_pads[rank - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
        if min(min(p) for p in torch_pads) < 0:
            raise UnsupportedOpError("pad with negative amounts (cropping)")
        pads = [torch_pads[d] for d in NCHW_TO_NHWC] if rank == 4 else torch_pads
        return self.op(OpKind.PAD, [x_name], PadAttrs(tuple(pads)), node.name)

    def permute(self, node, x, dims):
        """TRANSPOSE (via torch order for 4-D tensors)."""
        x_name = self.to_torch_order(self.tensor(x), node.name)
        y = self.op(OpKind.TRANSPOSE, [x_name], TransposeAttrs(tuple(int(d) for d in dims)),
                    f"{node.name}.perm")
        if len(dims) == 4:
            y = self.op(OpKind.TRANSPOSE, [y], TransposeAttrs(NCHW_TO_NHWC), node.name)
        return y

    def softmax(self, node, x, dim, *rest):
        """SOFTMAX over the last axis."""
        x_name = self.tensor(x)
        rank = len(self.shape(x_name))
        if rank == 4 or dim % rank != rank - 1:
            raise UnsupportedOpError(f"softmax over dim {dim} of a {rank}-D tensor (last axis only)")
        return self.op(OpKind.SOFTMAX, [x_name], SoftmaxAttrs(1.0), node.name)

    def handlers(self) -> dict[str, Callable]:
        """aten op name -> handler(node, *args)."""
        unary = lambda kind: lambda node, x: self.op(kind, [self.tensor(x)], None, node.name)
        return {
            "conv2d": self.conv2d, "convolution": self._convolution,
            "batch_norm": self.batch_norm,
            "_native_batch_norm_legit_no_training": self.batch_norm,
            "linear": self.linear,
            "relu": lambda node, x: self.fuse(self.tensor(x), RELU, node.name),
            "relu6": lambda node, x: self.fuse(self.tensor(x), RELU6, node.name),
            "hardtanh": self.hardtanh, "hardswish": unary(OpKind.HARD_SWISH),
            "hardsigmoid": self.hardsigmoid, "sigmoid": unary(OpKind.LOGISTIC),
            "tanh": unary(OpKind.TANH),
            "add": lambda node, a, b, alpha=1: self.binary(OpKind.ADD, node, a, b, alpha),
            "mul": lambda node, a, b: self.binary(OpKind.MUL, node, a, b),
            "cat": self.cat, "concat": self.cat,
            "flatten": self.view, "view": self.view, "reshape": self.view,
            "_unsafe_view": self.view, "squeeze": self.view, "unsqueeze": self.view,
            "mean": self.mean, "adaptive_avg_pool2d": self.adaptive_avg_pool2d,
            "avg_pool2d": lambda node, x, *a: self.pool(OpKind.AVERAGE_POOL_2D, node, x, *a),
            "max_pool2d": lambda node, x, *a: self.pool(OpKind.MAX_POOL_2D, node, x, *a),
            "upsample_nearest2d": self.upsample_nearest2d,
            "pad": self.pad, "constant_pad_nd": lambda node, x, pad, value=0:
                self.pad(node, x, pad, "constant", value),
            "permute": self.permute, "softmax": self.softmax, "_softmax": self.softmax,
        }

    def _convolution(self, node, x, w, b, stride, padding, dilation, transposed, _out_pad, groups):
        if transposed:
            raise UnsupportedOpError("transposed convolution")
        return self.conv2d(node, x, w, b, stride, padding, dilation, groups)

    # --- the walk ------------------------------------------------------------------------------
    def run(self) -> Graph:
        """Convert every node; the float graph."""
        import operator
        graph = self.program.graph
        handlers = self.handlers()
        user_inputs = [spec.arg.name for spec in self.program.graph_signature.input_specs
                       if spec.kind.name == "USER_INPUT"]
        for node in graph.nodes:
            self.users[node.name] = len(node.users)
        outputs: list[str] = []
        for node in graph.nodes:
            if node.op == "placeholder":
                if node.name in user_inputs:
                    shape = tuple(int(v) for v in node.meta["val"].shape)
                    if shape and shape[0] != 1:
                        raise UnsupportedOpError(f"input {node.name} has batch {shape[0]} "
                                                 "(export with a batch of 1)")
                    ir_shape = tuple(shape[d] for d in NCHW_TO_NHWC) if len(shape) == 4 else shape
                    self.values[node.name] = self.b.input(node.name, ir_shape, DType.FLOAT32)
                continue
            if node.op == "output":
                outputs = [self.tensor(arg) for arg in node.args[0]]
                continue
            if node.op != "call_function":
                raise UnsupportedOpError(f"FX node {node.op} {node.target} at {source_line(node)}")
            if node.target is operator.getitem:
                source, index = node.args
                if index != 0:
                    raise UnsupportedOpError(f"output {index} of {source.name} at {source_line(node)}")
                self.values[node.name] = self.values[source.name]
                self.users[self.values[node.name]] = self.users.get(node.name, 0)
                continue
            name = _aten_name(node.target)
            args = [self._arg(a) for a in node.args]
            if name in _IDENTITY:
                self.values[node.name] = self.tensor(node.args[0])
                continue
            handler = handlers.get(name)
            if handler is None:
                raise UnsupportedOpError(f"unsupported aten op {node.target} at {source_line(node)}")
            try:
                result = handler(node, *args, **node.kwargs)
            except UnsupportedOpError as exc:
                raise UnsupportedOpError(f"unsupported {node.target}: {exc} at "
                                         f"{source_line(node)}") from None
            self.values[node.name] = result
            self.users.setdefault(result, self.users.get(node.name, 0))
            if result not in self.b.inputs:
                self.users[result] = self.users.get(node.name, 0)
        return self.b.finish(outputs, {"source": "torch.export", "layout": "NHWC"})

    def _arg(self, arg: Any) -> Any:
        """FX arguments pass through (nodes are looked up by the handlers)."""
        return arg


def convert_exported_program(program: Any, name: str = "torch_model") -> Graph:
    """The float32 IR graph of an ExportedProgram (see the module doc)."""
    return _Converter(program, name).run()


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
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path}: not a torch.export file ({type(exc).__name__})") from None
    return convert_exported_program(program, path.stem)


__all__ = ["convert_exported_program", "export_module", "load_pt2", "source_line"]
