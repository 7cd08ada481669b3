"""The intermediate representation every pass consumes: tensors with their quantisation (`tensor`),
op kinds and their frozen attribute records (`ops`), blocks and the graph (`graph`), shape rules
(`shapes`), a builder (`builder`), structural validation (`validate`: names resolve, order,
shapes) and the value checks at import (`checks`: zero points, scales, dims, indices).

May import: errors, the foundation modules (atomic, reference, targets, layers), stages, arith (the
layers below it in `mcuforge.layers`); not ops, models or anything above."""

from .graph import Block, Graph
from .ops import (ATTRS_OF_KIND, INF, NO_CLAMP, RELU, RELU6, RELU_N1_TO_1, ConcatAttrs, ConvAttrs,
                  ElementwiseAttrs, FullyConnectedAttrs, MeanAttrs, NoAttrs, Op, OpKind, PadAttrs,
                  Pads, PoolAttrs, ReshapeAttrs, ResizeAttrs, SoftmaxAttrs, TransposeAttrs)
from .shapes import broadcast_shape, conv_output_hw, infer_output_shape
from .tensor import DType, QuantParams, Tensor
from .validate import topological_order, validate

__all__ = [
    "ATTRS_OF_KIND", "Block", "ConcatAttrs", "ConvAttrs", "DType", "ElementwiseAttrs",
    "FullyConnectedAttrs", "Graph", "INF", "MeanAttrs", "NO_CLAMP", "NoAttrs", "Op", "OpKind",
    "PadAttrs", "Pads", "PoolAttrs", "QuantParams", "RELU", "RELU6", "RELU_N1_TO_1", "ReshapeAttrs",
    "ResizeAttrs", "SoftmaxAttrs", "Tensor", "TransposeAttrs", "broadcast_shape", "conv_output_hw",
    "infer_output_shape", "topological_order", "validate",
]
