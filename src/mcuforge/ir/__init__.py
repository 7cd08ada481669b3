"""The intermediate representation consumed by every pass: tensors, ops, blocks, graphs."""

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
