"""Shape computations known at import are folded away: a hand-built .tflite with Keras' dynamic
batch chain (SHAPE -> STRIDED_SLICE -> PACK feeding a RESHAPE, then SOFTMAX) reads as RESHAPE ->
SOFTMAX, runs bit-exact with TFLite Micro running the original file (chain included), and writes
back and reads again unchanged; a SHAPE whose value is a graph output is not folded (and refused)."""

from __future__ import annotations

import numpy as np
import pytest
import tflite
from tflite.BuiltinOperator import BuiltinOperator as B
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from tflite_build_support import build_model, options, run_tflm
from mcuforge.errors import McuforgeError, UnsupportedOpError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import OpKind
from mcuforge.runtime.reference import Interpreter

# name, shape, type, (scale, zero point) or None, constant int32 values or None
TENSORS = [
    ("x", (1, 4, 4, 3), TensorType.INT8, (0.05, -3), None),
    ("shape_x", (4,), TensorType.INT32, None, None),
    ("begin", (1,), TensorType.INT32, None, [0]),
    ("end", (1,), TensorType.INT32, None, [1]),
    ("strides", (1,), TensorType.INT32, None, [1]),
    ("batch", (), TensorType.INT32, None, None),
    ("minus_one", (), TensorType.INT32, None, [-1]),
    ("packed", (2,), TensorType.INT32, None, None),
    ("flat", (1, 48), TensorType.INT8, (0.05, -3), None),
    ("y", (1, 48), TensorType.INT8, (1 / 256, -128), None),
]
S = tflite
CHAIN = [
    (B.SHAPE, ["x"], ["shape_x"], BuiltinOptions.ShapeOptions,
     options(S.ShapeOptionsStart, S.ShapeOptionsEnd, OutType=TensorType.INT32)),
    (B.STRIDED_SLICE, ["shape_x", "begin", "end", "strides"], ["batch"],
     BuiltinOptions.StridedSliceOptions,
     options(S.StridedSliceOptionsStart, S.StridedSliceOptionsEnd, ShrinkAxisMask=1)),
    (B.PACK, ["batch", "minus_one"], ["packed"], BuiltinOptions.PackOptions,
     options(S.PackOptionsStart, S.PackOptionsEnd, ValuesCount=2)),
    (B.RESHAPE, ["x", "packed"], ["flat"], BuiltinOptions.ReshapeOptions,
     options(S.ReshapeOptionsStart, S.ReshapeOptionsEnd)),
    (B.SOFTMAX, ["flat"], ["y"], BuiltinOptions.SoftmaxOptions,
     options(S.SoftmaxOptionsStart, S.SoftmaxOptionsEnd, Beta=1.0)),
]


def chain_model(outputs=("y",)) -> bytes:
    """x -> SHAPE -> STRIDED_SLICE(shrink) -> PACK(batch, -1) -> RESHAPE(x, packed) -> SOFTMAX."""
    return build_model(TENSORS, CHAIN, ["x"], outputs)


def test_the_shape_chain_is_folded_and_the_model_runs_like_tflite_micro(tmp_path):
    data = chain_model()
    path = tmp_path / "chain.tflite"
    path.write_bytes(data)
    graph = read_tflite(path)
    assert [op.kind for op in graph.ops] == [OpKind.RESHAPE, OpKind.SOFTMAX]
    assert graph.ops[0].attrs.new_shape == (1, 48)
    assert not {"shape_x", "batch", "packed", "begin", "minus_one"} & set(graph.tensors)

    rng = np.random.default_rng(0)
    for x in (rng.integers(-128, 128, size=(1, 4, 4, 3), dtype=np.int8),
              np.full((1, 4, 4, 3), 127, np.int8)):
        ours = Interpreter(graph).invoke([x])[0]
        reference = run_tflm(data, [x], 1)[0]
        assert ours.shape == reference.shape and np.array_equal(ours, reference)

    again = read_tflite(write_tflite(graph, tmp_path / "written.tflite"))
    assert [op.kind for op in again.ops] == [OpKind.RESHAPE, OpKind.SOFTMAX]
    assert again.ops[0].attrs == graph.ops[0].attrs


def test_a_shape_that_is_a_graph_output_is_not_folded(tmp_path):
    path = tmp_path / "shape_out.tflite"
    path.write_bytes(chain_model(outputs=("y", "shape_x")))
    with pytest.raises(UnsupportedOpError, match="unsupported op SHAPE at operator #0"):
        read_tflite(path)


def test_operators_after_a_folded_chain_keep_their_file_index(tmp_path):
    """An error about the RESHAPE (operator #3 of the file) names it reshape_3 after the chain
    is folded."""
    tensors = [t if t[0] != "flat" else ("flat", (1, 47), *t[2:]) for t in TENSORS]
    path = tmp_path / "bad.tflite"
    path.write_bytes(build_model(tensors, CHAIN[:4], ["x"], ["flat"]))
    with pytest.raises(McuforgeError, match=r"reshape_3 \(RESHAPE\): output 'flat' has shape \(1, 47\)"):
        read_tflite(path)


def test_a_reshape_declared_with_placeholder_ones_takes_its_folded_shape(tmp_path):
    """Keras' UpSampling2D converted with a dynamic batch: TILE -> RESHAPE whose target is
    computed (SHAPE -> STRIDED_SLICE -> CONCATENATION) and whose output the converter declared
    [1, 1, 8, 3] (1 for each dimension it left dynamic). TFLite resizes it at run time to the
    target [1, 4, 8, 3]; so does the reader, and the model runs as TFLite runs it. A declared
    shape that is wrong elsewhere than at a 1 stays refused (the test above)."""
    tensors = [
        ("x", (1, 4, 4, 3), TensorType.INT8, (0.05, -3), None),
        ("multiples", (4,), TensorType.INT32, None, [1, 1, 2, 1]),
        ("tiled", (1, 4, 8, 3), TensorType.INT8, (0.05, -3), None),
        ("shape_x", (4,), TensorType.INT32, None, None),
        ("begin", (1,), TensorType.INT32, None, [0]),
        ("end", (1,), TensorType.INT32, None, [2]),
        ("strides", (1,), TensorType.INT32, None, [1]),
        ("lead", (2,), TensorType.INT32, None, None),
        ("rest", (2,), TensorType.INT32, None, [8, 3]),
        ("target", (4,), TensorType.INT32, None, None),
        ("y", (1, 1, 8, 3), TensorType.INT8, (0.05, -3), None),
    ]
    ops = [
        (B.TILE, ["x", "multiples"], ["tiled"], BuiltinOptions.NONE, None),
        (B.SHAPE, ["x"], ["shape_x"], BuiltinOptions.ShapeOptions,
         options(S.ShapeOptionsStart, S.ShapeOptionsEnd, OutType=TensorType.INT32)),
        (B.STRIDED_SLICE, ["shape_x", "begin", "end", "strides"], ["lead"],
         BuiltinOptions.StridedSliceOptions,
         options(S.StridedSliceOptionsStart, S.StridedSliceOptionsEnd)),
        (B.CONCATENATION, ["lead", "rest"], ["target"], BuiltinOptions.ConcatenationOptions,
         options(S.ConcatenationOptionsStart, S.ConcatenationOptionsEnd, Axis=0)),
        (B.RESHAPE, ["tiled", "target"], ["y"], BuiltinOptions.ReshapeOptions,
         options(S.ReshapeOptionsStart, S.ReshapeOptionsEnd)),
    ]
    data = build_model(tensors, ops, ["x"], ["y"])
    path = tmp_path / "upsample.tflite"
    path.write_bytes(data)
    graph = read_tflite(path)
    assert [op.kind for op in graph.ops] == [OpKind.TILE, OpKind.RESHAPE]
    assert graph.tensors[graph.outputs[0]].shape == (1, 4, 8, 3)
    x = np.random.default_rng(1).integers(-128, 128, size=(1, 4, 4, 3), dtype=np.int8)
    ours = Interpreter(graph).invoke([x])[0]
    from ai_edge_litert.interpreter import Interpreter as LiteRT
    litert = LiteRT(model_content=data)
    litert.allocate_tensors()
    litert.set_tensor(litert.get_input_details()[0]["index"], x)
    litert.invoke()
    theirs = litert.get_tensor(litert.get_output_details()[0]["index"])
    assert theirs.shape == (1, 4, 8, 3) and np.array_equal(ours, theirs)
