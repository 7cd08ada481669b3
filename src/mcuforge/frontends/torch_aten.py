"""The aten ops of the PyTorch frontend (`frontends/torch_export.py`): one method per aten op,
mixed into its converter, each turning one FX node into float IR ops (the mapping is listed in
that module's docstring), plus the layout helpers (NCHW torch tensors are NHWC in the IR)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import (NO_CLAMP, RELU, RELU6, ConcatAttrs, ConvAttrs, ElementwiseAttrs,
                  FullyConnectedAttrs, MeanAttrs, OpKind, PadAttrs, Pads, PoolAttrs,
                  ReshapeAttrs, ResizeAttrs, SoftmaxAttrs, TransposeAttrs)

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)
_CLAMPED_KINDS = (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED, OpKind.ADD,
                  OpKind.MUL)


def aten_name(target: Any) -> str:
    """``conv2d`` for ``torch.ops.aten.conv2d.default`` (the overload packet's name)."""
    name = getattr(target, "__name__", str(target))
    return name.split(".")[0]


class AtenOps:
    """The aten handlers; the converter provides ``b`` (a GraphBuilder), ``users`` (readers of
    each IR tensor so far), ``shape``, ``constant``, ``param``, ``tensor`` and ``op``."""

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
        # batch_norm: (training, momentum, eps, cudnn_enabled); the no-training form: (momentum, eps)
        if len(rest) == 4 and rest[0]:
            raise UnsupportedOpError("batch_norm in training mode (export the module in eval mode)")
        eps = float(rest[2] if len(rest) == 4 else rest[1] if len(rest) >= 2 else 1e-5)
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
            raise UnsupportedOpError(f"{aten_name(node.target)} with alpha={alpha}")
        names = []
        for arg in (a, b):
            if isinstance(arg, (int, float)):
                names.append(self.constant(f"{node.name}.scalar", [float(arg)]))
            else:
                names.append(self.tensor(arg))
        ranks = {len(self.shape(n)) for n in names if math.prod(self.shape(n)) > 1}
        if len(ranks) > 1:
            raise UnsupportedOpError(f"{aten_name(node.target)} broadcasting across ranks "
                                     f"{[self.shape(n) for n in names]}")
        return self.op(kind, names, ElementwiseAttrs(), node.name)

    def cat(self, node, tensors, dim=0):
        """CONCATENATION."""
        names = [self.tensor(t) for t in tensors]
        return self.op(OpKind.CONCATENATION, names, ConcatAttrs(self.axis(names[0], dim)), node.name)

    def view(self, node, x, *args):
        """RESHAPE to the shape torch computed (torch order kept, see the module doc)."""
        out = tuple(int(v) for v in node.meta["val"].shape)
        return self.reshape(self.tensor(x), out, node.name)

    def mean(self, node, x, dims=None, keepdim=False, *rest, **kwargs):
        """MEAN over the given axes (all when None)."""
        x_name = self.tensor(x)
        dims = range(len(self.shape(x_name))) if not dims else dims
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

    def pool(self, kind, node, x, kernel, stride=(), padding=(0, 0), *rest, **kwargs):
        """AVERAGE_POOL_2D or MAX_POOL_2D without padding, dilation, ceil mode or divisor."""
        pair = lambda v: tuple(v) * (2 if len(v) == 1 else 1)
        kernel, padding = pair(kernel), pair(padding)
        stride = pair(stride) if stride else kernel
        options = dict(zip(("dilation", "ceil_mode") if kind is OpKind.MAX_POOL_2D else
                           ("ceil_mode", "count_include_pad", "divisor_override"), rest))
        options.update(kwargs)
        if any(padding) or options.get("ceil_mode") or options.get("divisor_override") \
                or any(d != 1 for d in options.get("dilation", ())):
            raise UnsupportedOpError(f"{aten_name(node.target)} with padding {list(padding)} "
                                     f"or options {options} (none of them is supported)")
        return self.op(kind, [self.tensor(x)], PoolAttrs(kernel, stride), node.name)

    def upsample_nearest2d(self, node, x, *args):
        """RESIZE_NEAREST_NEIGHBOR to the output size torch computed."""
        _, _, oh, ow = (int(v) for v in node.meta["val"].shape)
        _, h, w, _ = self.shape(self.tensor(x))
        if oh % h or ow % w:
            raise UnsupportedOpError(f"nearest upsampling from {h}x{w} to {oh}x{ow} "
                                     "(integer factors only)")
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
        """SOFTMAX over the last IR axis (the channels of a 4-D tensor)."""
        x_name = self.tensor(x)
        rank = len(self.shape(x_name))
        if self.axis(x_name, dim) != rank - 1:
            raise UnsupportedOpError(f"softmax over dim {dim} of a {rank}-D tensor")
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
            "sub": lambda node, a, b, alpha=1: self.binary(OpKind.SUB, node, a, b, alpha),
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

