"""Builtin options tables of the ops the .tflite writer emits, built with the `tflite` package's
generated functions (``Conv2DOptionsStart`` ...). Clamp bounds become the fused activation; PAD,
QUANTIZE, DEQUANTIZE, HARD_SWISH and TRANSPOSE get an empty table as TFLite's converter writes them;
LOGISTIC, RELU and RELU6 have none."""

from __future__ import annotations

import flatbuffers
import numpy as np
import tflite
from tflite.BuiltinOptions import BuiltinOptions

from ..errors import UnsupportedOpError
from ..ir import OpKind
from ..ir.ops import Attrs
from .tflite_schema import OPTIONS_OF_KIND, activation_of_clamp


def _activation(kind: OpKind, attrs: Attrs, output_name: str) -> int:
    clamp = attrs.clamp
    code = activation_of_clamp(clamp)
    if code is None:
        raise UnsupportedOpError(f"cannot write {kind.value} writing {output_name}: clamp {clamp} "
                                 "is not a TFLite fused activation")
    return code


def build_options(builder: flatbuffers.Builder, kind: OpKind, a: Attrs, padding: int,
                  output_name: str) -> int | None:
    """The builtin options table of an op of ``kind`` with attributes ``a`` (None for kinds without
    one); ``padding`` is the TFLite padding chosen for its pads, ``output_name`` is for errors."""
    if kind is OpKind.CONV_2D:
        tflite.Conv2DOptionsStart(builder)
        tflite.Conv2DOptionsAddPadding(builder, padding)
        tflite.Conv2DOptionsAddStrideH(builder, a.stride[0])
        tflite.Conv2DOptionsAddStrideW(builder, a.stride[1])
        tflite.Conv2DOptionsAddDilationHFactor(builder, a.dilation[0])
        tflite.Conv2DOptionsAddDilationWFactor(builder, a.dilation[1])
        tflite.Conv2DOptionsAddFusedActivationFunction(builder, _activation(kind, a, output_name))
        return tflite.Conv2DOptionsEnd(builder)
    if kind is OpKind.DEPTHWISE_CONV_2D:
        tflite.DepthwiseConv2DOptionsStart(builder)
        tflite.DepthwiseConv2DOptionsAddPadding(builder, padding)
        tflite.DepthwiseConv2DOptionsAddStrideH(builder, a.stride[0])
        tflite.DepthwiseConv2DOptionsAddStrideW(builder, a.stride[1])
        tflite.DepthwiseConv2DOptionsAddDilationHFactor(builder, a.dilation[0])
        tflite.DepthwiseConv2DOptionsAddDilationWFactor(builder, a.dilation[1])
        tflite.DepthwiseConv2DOptionsAddDepthMultiplier(builder, a.depth_multiplier)
        tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(builder, _activation(kind, a, output_name))
        return tflite.DepthwiseConv2DOptionsEnd(builder)
    if kind in (OpKind.AVERAGE_POOL_2D, OpKind.MAX_POOL_2D):
        tflite.Pool2DOptionsStart(builder)
        tflite.Pool2DOptionsAddPadding(builder, padding)
        tflite.Pool2DOptionsAddStrideH(builder, a.stride[0])
        tflite.Pool2DOptionsAddStrideW(builder, a.stride[1])
        tflite.Pool2DOptionsAddFilterHeight(builder, a.kernel[0])
        tflite.Pool2DOptionsAddFilterWidth(builder, a.kernel[1])
        tflite.Pool2DOptionsAddFusedActivationFunction(builder, _activation(kind, a, output_name))
        return tflite.Pool2DOptionsEnd(builder)
    if kind is OpKind.FULLY_CONNECTED:
        tflite.FullyConnectedOptionsStart(builder)
        tflite.FullyConnectedOptionsAddFusedActivationFunction(builder, _activation(kind, a, output_name))
        tflite.FullyConnectedOptionsAddKeepNumDims(builder, a.keep_num_dims)
        return tflite.FullyConnectedOptionsEnd(builder)
    if kind is OpKind.ADD:
        tflite.AddOptionsStart(builder)
        tflite.AddOptionsAddFusedActivationFunction(builder, _activation(kind, a, output_name))
        return tflite.AddOptionsEnd(builder)
    if kind is OpKind.MUL:
        tflite.MulOptionsStart(builder)
        tflite.MulOptionsAddFusedActivationFunction(builder, _activation(kind, a, output_name))
        return tflite.MulOptionsEnd(builder)
    if kind is OpKind.CONCATENATION:
        tflite.ConcatenationOptionsStart(builder)
        tflite.ConcatenationOptionsAddAxis(builder, a.axis)
        tflite.ConcatenationOptionsAddFusedActivationFunction(builder, _activation(kind, a, output_name))
        return tflite.ConcatenationOptionsEnd(builder)
    if kind is OpKind.MEAN:
        tflite.ReducerOptionsStart(builder)
        tflite.ReducerOptionsAddKeepDims(builder, a.keep_dims)
        return tflite.ReducerOptionsEnd(builder)
    if kind is OpKind.RESHAPE:
        new_shape = builder.CreateNumpyVector(np.asarray(a.new_shape, dtype="<i4"))
        tflite.ReshapeOptionsStart(builder)
        tflite.ReshapeOptionsAddNewShape(builder, new_shape)
        return tflite.ReshapeOptionsEnd(builder)
    if kind is OpKind.SOFTMAX:
        tflite.SoftmaxOptionsStart(builder)
        tflite.SoftmaxOptionsAddBeta(builder, a.beta)
        return tflite.SoftmaxOptionsEnd(builder)
    if kind is OpKind.RESIZE_NEAREST_NEIGHBOR:
        tflite.ResizeNearestNeighborOptionsStart(builder)
        tflite.ResizeNearestNeighborOptionsAddAlignCorners(builder, a.align_corners)
        tflite.ResizeNearestNeighborOptionsAddHalfPixelCenters(builder, a.half_pixel_centers)
        return tflite.ResizeNearestNeighborOptionsEnd(builder)
    empty_tables = {
        BuiltinOptions.PadOptions: (tflite.PadOptionsStart, tflite.PadOptionsEnd),
        BuiltinOptions.QuantizeOptions: (tflite.QuantizeOptionsStart, tflite.QuantizeOptionsEnd),
        BuiltinOptions.DequantizeOptions: (tflite.DequantizeOptionsStart, tflite.DequantizeOptionsEnd),
        BuiltinOptions.HardSwishOptions: (tflite.HardSwishOptionsStart, tflite.HardSwishOptionsEnd),
        BuiltinOptions.TransposeOptions: (tflite.TransposeOptionsStart, tflite.TransposeOptionsEnd),
    }
    table = OPTIONS_OF_KIND[kind]
    if table in empty_tables:
        start, end = empty_tables[table]
        start(builder)
        return end(builder)
    return None
