"""Output-shape rules of every op kind: used by graph builders and by the validator."""

from __future__ import annotations

import math

from .ops import (ConcatAttrs, ConvAttrs, MeanAttrs, Op, OpKind, PadAttrs, PoolAttrs, ReshapeAttrs,
                  ResizeAttrs, TransposeAttrs)


def conv_output_hw(in_h: int, in_w: int, kernel: tuple[int, int], stride: tuple[int, int],
                   pads, dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """Spatial output size of a convolution or pooling window with explicit pads."""
    eff_h = (kernel[0] - 1) * dilation[0] + 1
    eff_w = (kernel[1] - 1) * dilation[1] + 1
    out_h = (in_h + pads.top + pads.bottom - eff_h) // stride[0] + 1
    out_w = (in_w + pads.left + pads.right - eff_w) // stride[1] + 1
    return out_h, out_w


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """Numpy broadcasting of two shapes; raises ValueError when they do not broadcast."""
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise ValueError(f"shapes {a} and {b} do not broadcast")
        out.append(max(x, y))
    return tuple(out)


def infer_output_shape(op: Op, input_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The shape of ``op``'s (first) output given its input shapes. Raises ValueError on mismatch."""
    kind = op.kind
    a = op.attrs
    x = input_shapes[0]
    if kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D):
        assert isinstance(a, ConvAttrs)
        if len(x) != 4:
            raise ValueError(f"{kind.value} needs a 4-D NHWC input, got {x}")
        w = input_shapes[1]
        if kind is OpKind.CONV_2D:
            out_c, kh, kw, in_c = w
            if in_c == 0 or x[3] % in_c:
                raise ValueError(f"filter {w} takes {in_c} input channels, input has {x[3]}")
        else:
            _, kh, kw, out_c = w
            if out_c != x[3] * a.depth_multiplier:
                raise ValueError(f"depthwise filter {w} needs {x[3] * a.depth_multiplier} channels, "
                                 f"input has {x[3]}")
        if len(input_shapes) > 2 and tuple(input_shapes[2]) != (out_c,):
            raise ValueError(f"bias shape {input_shapes[2]} != ({out_c},)")
        oh, ow = conv_output_hw(x[1], x[2], (kh, kw), a.stride, a.pads, a.dilation)
        if oh <= 0 or ow <= 0:
            raise ValueError(f"input {x} too small for kernel {(kh, kw)}")
        return (x[0], oh, ow, out_c)
    if kind in (OpKind.AVERAGE_POOL_2D, OpKind.MAX_POOL_2D):
        assert isinstance(a, PoolAttrs)
        oh, ow = conv_output_hw(x[1], x[2], a.kernel, a.stride, a.pads)
        if oh <= 0 or ow <= 0:
            raise ValueError(f"input {x} too small for pool {a.kernel}")
        return (x[0], oh, ow, x[3])
    if kind is OpKind.FULLY_CONNECTED:
        w = input_shapes[1]
        in_features = w[1]
        total = math.prod(x)
        if total % in_features:
            raise ValueError(f"input {x} cannot be flattened to rows of {in_features}")
        if op.attrs.keep_num_dims:
            if x[-1] != in_features:
                raise ValueError(f"last dim of {x} != {in_features}")
            return tuple(x[:-1]) + (w[0],)
        return (total // in_features, w[0])
    if kind in (OpKind.ADD, OpKind.MUL):
        return broadcast_shape(x, input_shapes[1])
    if kind is OpKind.MEAN:
        assert isinstance(a, MeanAttrs)
        axes = {ax % len(x) for ax in a.axes}
        if a.keep_dims:
            return tuple(1 if i in axes else d for i, d in enumerate(x))
        return tuple(d for i, d in enumerate(x) if i not in axes)
    if kind is OpKind.PAD:
        assert isinstance(a, PadAttrs)
        if len(a.paddings) != len(x):
            raise ValueError(f"paddings for {len(a.paddings)} dims, input has {len(x)}")
        return tuple(d + lo + hi for d, (lo, hi) in zip(x, a.paddings))
    if kind is OpKind.RESHAPE:
        assert isinstance(a, ReshapeAttrs)
        if math.prod(a.new_shape) != math.prod(x):
            raise ValueError(f"cannot reshape {x} to {a.new_shape}")
        return tuple(a.new_shape)
    if kind is OpKind.CONCATENATION:
        assert isinstance(a, ConcatAttrs)
        axis = a.axis % len(x)
        for s in input_shapes[1:]:
            if len(s) != len(x) or any(p != q for i, (p, q) in enumerate(zip(s, x)) if i != axis):
                raise ValueError(f"cannot concatenate {input_shapes} on axis {a.axis}")
        return tuple(sum(s[axis] for s in input_shapes) if i == axis else d for i, d in enumerate(x))
    if kind is OpKind.RESIZE_NEAREST_NEIGHBOR:
        assert isinstance(a, ResizeAttrs)
        return (x[0], a.size[0], a.size[1], x[3])
    if kind is OpKind.TRANSPOSE:
        assert isinstance(a, TransposeAttrs)
        if sorted(a.perm) != list(range(len(x))):
            raise ValueError(f"bad permutation {a.perm} for {x}")
        return tuple(x[p] for p in a.perm)
    # Elementwise unary ops keep the shape.
    return tuple(x)
