"""The ONNX operators `onnx_import` understands, each as one converter to IR ops.

A converter takes the importer (`onnx_import._Importer`, which resolves operands and names the
outputs) and one ONNX node, and appends IR ops. Activations of rank 4 are NHWC in the IR and NCHW in
ONNX: the importer records for every value whether its IR tensor is the NHWC transpose of the ONNX
one ("permuted"); converters that need NHWC (convolutions, pools) or the ONNX order (reshapes) ask
for it and the importer inserts a TRANSPOSE where a value is in the other layout. Constants are
turned to the IR's layouts here: Conv weights ``[O, I, kh, kw]`` -> OHWI, depthwise
``[O, 1, kh, kw]`` -> ``[1, kh, kw, O]``, Gemm/MatMul weights -> ``[out, in]``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import RELU6, OpKind, Pads
from ..ir.ops import (ConcatAttrs, ConvAttrs, ElementwiseAttrs, FullyConnectedAttrs, MeanAttrs,
                      PoolAttrs, ReshapeAttrs, SoftmaxAttrs, TransposeAttrs)

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


def node_attr(node, name: str, default=None):
    """The value of attribute ``name`` of ``node`` (ints, floats, strings and their lists)."""
    import onnx
    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _spatial_pads(imp, node, in_hw, kernel, stride, dilation=(1, 1)) -> Pads:
    """Explicit pads from ``pads`` [top, left, bottom, right] or ``auto_pad``."""
    auto = node_attr(node, "auto_pad", "NOTSET")
    if auto == "VALID":
        return Pads()
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        same = Pads.same(in_hw[0], in_hw[1], kernel, stride, dilation)
        if auto == "SAME_LOWER":
            same = Pads(same.bottom, same.top, same.right, same.left)
        return same
    top, left, bottom, right = tuple(node_attr(node, "pads", (0, 0, 0, 0)))
    return Pads(top, bottom, left, right)


def _require(imp, node, condition: bool, what: str) -> None:
    if not condition:
        raise UnsupportedOpError(f"unsupported ONNX {node.op_type} {what} at {imp.where(node)}")


def conv(imp, node) -> None:
    """Conv -> CONV_2D, or DEPTHWISE_CONV_2D when ``group`` equals the input channels."""
    x = imp.nhwc(node.input[0])
    n, h, w, c = imp.shape(x)
    weight = imp.weight(node, 1)
    _require(imp, node, len(weight.shape) == 4, "with a non-2-D kernel")
    o, i_per_group, kh, kw = weight.shape
    group = int(node_attr(node, "group", 1))
    stride = tuple(node_attr(node, "strides", (1, 1)))
    dilation = tuple(node_attr(node, "dilations", (1, 1)))
    pads = _spatial_pads(imp, node, (h, w), (kh, kw), stride, dilation)
    if group == 1:
        kind, w_perm, axis, mult = OpKind.CONV_2D, (0, 2, 3, 1), 0, 1
    else:
        _require(imp, node, group == c and i_per_group == 1 and o % c == 0,
                 f"with group {group} (only 1 or depthwise)")
        kind, w_perm, axis, mult = OpKind.DEPTHWISE_CONV_2D, (1, 2, 3, 0), 3, o // c
    w_name = imp.weight_tensor(node, weight, w_perm, axis)
    b_name = imp.bias_tensor(node, 2 if len(node.input) > 2 and node.input[2] else None, x, weight, o)
    attrs = ConvAttrs(stride=stride, pads=pads, dilation=dilation, depth_multiplier=mult)
    imp.emit(node, kind, [x, w_name, b_name], attrs, permuted=True)


def gemm(imp, node) -> None:
    """Gemm (alpha = beta = 1, transA = 0, constant B) and MatMul with a constant B ->
    FULLY_CONNECTED with ``[out, in]`` weights."""
    x = imp.plain(node.input[0])
    weight = imp.weight(node, 1)
    _require(imp, node, len(weight.shape) == 2, "with a weight of rank other than 2")
    if node.op_type == "Gemm":
        _require(imp, node, float(node_attr(node, "alpha", 1.0)) == 1.0
                 and float(node_attr(node, "beta", 1.0)) == 1.0 and not node_attr(node, "transA", 0),
                 "with alpha/beta != 1 or transA")
        trans_b = bool(node_attr(node, "transB", 0))
    else:
        _require(imp, node, len(imp.shape(x)) == 2, "with an input of rank other than 2")
        trans_b = False
    perm, out_axis = ((0, 1), 0) if trans_b else ((1, 0), 1)
    w_name = imp.weight_tensor(node, weight, perm, 0)
    out = weight.shape[out_axis]
    bias = 2 if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] else None
    b_name = imp.bias_tensor(node, bias, x, weight, out)
    imp.emit(node, OpKind.FULLY_CONNECTED, [x, w_name, b_name], FullyConnectedAttrs(),
             permuted=False)


def binary(imp, node) -> None:
    """Add and Mul of two activations, or of an activation and a constant (broadcast as ONNX)."""
    kind = OpKind.ADD if node.op_type == "Add" else OpKind.MUL
    names = list(node.input)
    activations = [n for n in names if not imp.is_constant(n)]
    _require(imp, node, bool(activations), "of two constants")
    permuted = all(imp.permuted(n) for n in activations)
    inputs = []
    for name in names:
        if imp.is_constant(name):
            inputs.append(imp.operand_constant(node, name, len(imp.onnx_shape(node.output[0])),
                                               permuted))
        else:
            inputs.append(imp.nhwc(name) if permuted else imp.plain(name))
    imp.emit(node, kind, inputs, ElementwiseAttrs(), permuted=permuted)


def relu(imp, node) -> None:
    """Relu -> RELU; Clip with constant bounds (0, 6) -> RELU6, (0, none) -> RELU."""
    kind = OpKind.RELU
    if node.op_type == "Clip":
        low = imp.scalar(node, 1, node_attr(node, "min", -math.inf))
        high = imp.scalar(node, 2, node_attr(node, "max", math.inf))
        _require(imp, node, low == 0.0 and high in (6.0, math.inf),
                 f"with bounds ({low:g}, {high:g}) (only (0, 6) or (0, inf))")
        kind = OpKind.RELU6 if high == 6.0 else OpKind.RELU
    x = node.input[0]
    imp.emit(node, kind, [imp.quantised_like_output(node, imp.value(x))], None,
             permuted=imp.permuted(x))


def identity(imp, node) -> None:
    """Identity: the same value (of a constant, it is that constant: `onnx_import` resolves it)."""
    x = node.input[0]
    if not imp.is_constant(x):
        imp.alias(node.output[0], imp.value(x), imp.permuted(x))


def hard_swish(imp, node) -> None:
    """HardSwish -> HARD_SWISH."""
    x = node.input[0]
    imp.emit(node, OpKind.HARD_SWISH, [imp.value(x)], None, permuted=imp.permuted(x))


def hard_sigmoid(imp, node) -> None:
    """HardSigmoid with alpha 1/6 (PyTorch's hardsigmoid): ``clip(x / 6 + beta, 0, 1)`` is
    ``relu6(x + 6 * beta) * (1/6)``, ADD of a constant with a fused RELU6 then MUL by 1/6, as
    TFLite writes it; in a QDQ model the ADD's output has the fixed range [0, 6]."""
    alpha = float(node_attr(node, "alpha", 0.2))
    beta = float(node_attr(node, "beta", 0.5))
    _require(imp, node, abs(alpha * 6.0 - 1.0) < 1e-6 and 0.0 < beta,
             f"with alpha {alpha:g}, beta {beta:g} (only alpha 1/6, beta > 0)")
    x = node.input[0]
    shift = imp.scalar_operand(f"{node.output[0]}:offset", round(beta * 6.0, 6))
    added = imp.inner_op(node, OpKind.ADD, [imp.value(x), shift], ElementwiseAttrs(RELU6), 0.0, 6.0)
    scale = imp.scalar_operand(f"{node.output[0]}:sixth", 1.0 / 6.0)
    imp.emit(node, OpKind.MUL, [added, scale], ElementwiseAttrs(), permuted=imp.permuted(x))


def pool(imp, node) -> None:
    """MaxPool / AveragePool (ceil_mode 0, padding excluded from averages) -> MAX/AVERAGE_POOL_2D;
    GlobalAveragePool -> MEAN over H and W (keeps dims); GlobalMaxPool -> MAX_POOL_2D over H, W."""
    x = imp.nhwc(node.input[0])
    n, h, w, c = imp.shape(x)
    if node.op_type == "GlobalAveragePool":
        imp.emit(node, OpKind.MEAN, [x], MeanAttrs((1, 2), True), permuted=True)
        return
    if node.op_type == "GlobalMaxPool":
        imp.emit(node, OpKind.MAX_POOL_2D, [x], PoolAttrs((h, w), (1, 1)), permuted=True,
                 same_quant=True)
        return
    kernel = tuple(node_attr(node, "kernel_shape"))
    stride = tuple(node_attr(node, "strides", (1, 1)))
    _require(imp, node, len(kernel) == 2 and not node_attr(node, "ceil_mode", 0)
             and tuple(node_attr(node, "dilations", (1, 1))) == (1, 1),
             "with ceil_mode, dilations or a non-2-D window")
    pads = _spatial_pads(imp, node, (h, w), kernel, stride)
    if node.op_type == "AveragePool":
        _require(imp, node, pads == Pads() or not node_attr(node, "count_include_pad", 0),
                 "with count_include_pad and padding")
    kind = OpKind.MAX_POOL_2D if node.op_type == "MaxPool" else OpKind.AVERAGE_POOL_2D
    imp.emit(node, kind, [x], PoolAttrs(kernel, stride, pads), permuted=True, same_quant=True)


def concat(imp, node) -> None:
    """Concat along any axis (a channel concat of NCHW values is the last axis in NHWC)."""
    names = [n for n in node.input if n]
    rank = len(imp.onnx_shape(node.output[0]))
    axis = int(node_attr(node, "axis")) % rank
    permuted = rank == 4 and all(imp.permuted(n) for n in names)
    inputs = [imp.nhwc(n) if permuted else imp.plain(n) for n in names]
    if permuted:
        axis = TO_NHWC.index(axis)
    imp.emit(node, OpKind.CONCATENATION, inputs, ConcatAttrs(axis), permuted=permuted,
             same_quant=True)


def reshape(imp, node) -> None:
    """Reshape / Flatten / Squeeze / Unsqueeze to the ONNX output shape (the input in ONNX order,
    unless its spatial dimensions are 1 so that both orders agree)."""
    source = node.input[0]
    in_shape = imp.onnx_shape(source)
    new_shape = tuple(imp.onnx_shape(node.output[0]))
    if imp.permuted(source) and in_shape[2] * in_shape[3] == 1 and len(new_shape) <= 2:
        x = imp.value(source)
    else:
        x = imp.plain(source)
    if tuple(imp.shape(x)) == new_shape:
        imp.alias(node.output[0], x, permuted=False)
        return
    imp.emit(node, OpKind.RESHAPE, [x], ReshapeAttrs(new_shape), permuted=False, same_quant=True)


def transpose(imp, node) -> None:
    """Transpose, composed with the NHWC layout of its input (an identity becomes an alias)."""
    source = node.input[0]
    rank = len(imp.onnx_shape(source))
    perm = tuple(node_attr(node, "perm", tuple(reversed(range(rank)))))
    if imp.permuted(source):
        perm = tuple(TO_NCHW[p] for p in perm)
    x = imp.value(source)
    if perm == tuple(range(rank)):
        imp.alias(node.output[0], x, permuted=False)
        return
    imp.emit(node, OpKind.TRANSPOSE, [x], TransposeAttrs(perm), permuted=False, same_quant=True)


def softmax(imp, node) -> None:
    """Softmax over the last axis (or over channels of an NCHW value, the last axis in NHWC)."""
    source = node.input[0]
    rank = len(imp.onnx_shape(source))
    shape = imp.onnx_shape(source)
    axis = int(node_attr(node, "axis", -1 if imp.opset >= 13 else 1)) % rank
    # Before opset 13 Softmax normalises over all dimensions from ``axis`` on.
    _require(imp, node, imp.opset >= 13 or all(d == 1 for d in shape[axis + 1:]),
             f"of opset {imp.opset} over several axes")
    if imp.permuted(source) and axis == 1:
        x, permuted = imp.value(source), True
    else:
        _require(imp, node, axis == rank - 1, f"over axis {axis} (only the last)")
        x, permuted = imp.plain(source), False
    imp.emit(node, OpKind.SOFTMAX, [x], SoftmaxAttrs(1.0), permuted=permuted, softmax_out=True)


CONVERTERS = {
    "Conv": conv, "Gemm": gemm, "MatMul": gemm, "Add": binary, "Mul": binary, "Relu": relu,
    "Clip": relu, "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": pool,
    "GlobalMaxPool": pool, "Concat": concat, "Reshape": reshape, "Flatten": reshape,
    "Squeeze": reshape, "Unsqueeze": reshape, "Transpose": transpose, "Softmax": softmax,
    "HardSwish": hard_swish, "HardSigmoid": hard_sigmoid, "Identity": identity,
}
"""ONNX op type -> converter."""


def nhwc_constant(values: np.ndarray, rank: int, permuted: bool) -> np.ndarray:
    """A broadcast operand of an op on rank-``rank`` values, in the IR layout: right-aligned to
    ``rank`` dimensions as ONNX broadcasting does, then transposed to NHWC when ``permuted``."""
    values = np.asarray(values)
    if values.ndim < rank:
        values = values.reshape((1,) * (rank - values.ndim) + values.shape)
    if permuted and rank == 4:
        values = values.transpose(TO_NHWC)
    return np.ascontiguousarray(values)
