"""Output shapes: the lookup of an op's shape rule (each op module of `mcuforge.ops` registers its
own) and the shape arithmetic those rules share (window output size, numpy broadcasting)."""

from __future__ import annotations

from .ops import SHAPE_RULE_OF_KIND, Op


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
    """The shape of ``op``'s (first) output given its input shapes. Raises ValueError on mismatch.
    The rule is the op module's (`mcuforge.ops`), registered with `ir.ops.register_kind`."""
    rule = SHAPE_RULE_OF_KIND.get(op.kind)
    if rule is None:
        raise ValueError(f"{op.kind.value} is not an implemented op kind")
    return rule(op, input_shapes)
