"""TILE, added as one op module: registered with its rules, round-trips through the .tflite writer
and reader (the multiples a constant int32 input, or int64 as converters may write them), runs
bit-exact with TFLite's own TILE kernel (the ``ai-edge-litert`` interpreter: TFLite Micro has none)
on ranks 1 to 6, int8 and int16, its byte layout is numpy's tile, its generated C (sanitised host
build, and QEMU where the Arm toolchain is installed) equals the reference runtime, and bad
multiples are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from tflite_build_support import build_model
from mcuforge.errors import InvalidValueError, UnsupportedOpError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import serialize_tflite, write_tflite
from mcuforge.ir import DType, ElementwiseAttrs, Graph, Op, OpKind, QuantParams, Tensor
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.tile import TileAttrs, tile_layout
from mcuforge.ops.validation import validate_model
from mcuforge.runtime.reference import Interpreter

QX = QuantParams.per_tensor(0.02, -7)
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}

# (input shape, multiples)
CASES = [
    ((5,), (3,)),
    ((2, 3), (2, 1)),
    ((2, 3), (1, 4)),
    ((1, 4, 4, 3), (1, 2, 2, 1)),
    ((2, 3, 1, 5), (3, 1, 4, 2)),
    ((1, 4, 1, 5, 1, 3), (1, 1, 2, 1, 2, 1)),  # nearest upsampling, as Keras converts it
    ((2, 1, 3, 1, 2), (1, 3, 1, 2, 2)),
]


def tile_graph(shape, multiples, dtype: DType = DType.INT8) -> Graph:
    """x -> TILE -> y."""
    quant = QX if dtype is DType.INT8 else QuantParams.per_tensor(0.001, 0)
    x = Tensor("x", tuple(shape), dtype, quant)
    op = Op("tile", OpKind.TILE, ("x",), ("y",), TileAttrs(tuple(multiples)))
    y = Tensor("y", op_def(OpKind.TILE).output_shape(op, [x.shape]), dtype, quant)
    return Graph("tile", {"x": x, "y": y}, (op,), ("x",), ("y",))


def random_values(shape, dtype: DType, seed: int) -> np.ndarray:
    """Random values of the whole dtype range, its extremes first."""
    info = np.iinfo(dtype.numpy)
    values = np.random.default_rng(seed).integers(info.min, info.max + 1, size=shape,
                                                  dtype=dtype.numpy)
    values.reshape(-1)[:2] = (info.min, info.max)
    return values


def run_litert(model: bytes, x: np.ndarray) -> np.ndarray:
    """The output of TFLite's interpreter (ai-edge-litert, the `test` extra) on ``x``."""
    from ai_edge_litert.interpreter import Interpreter as LiteRT
    interpreter = LiteRT(model_content=model)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def test_tile_is_registered_with_its_rules():
    assert OpKind.TILE in implemented_kinds()
    definition = op_def(OpKind.TILE)
    assert definition.has_reference and definition.has_lowering and not definition.patchable
    graph = tile_graph((2, 3, 1, 5), (3, 1, 4, 2))
    assert graph.tensors["y"].shape == (6, 3, 4, 10)
    assert definition.macs(graph, graph.ops[0]) == 0


@pytest.mark.parametrize("shape, multiples", CASES)
def test_tile_layout_is_the_same_byte_copy(shape, multiples):
    """Independent of TFLite: tiling the simplified byte layout gives np.tile's bytes."""
    x = random_values(shape, DType.INT16, 3)
    dims, mults = tile_layout(shape, multiples, 2)
    assert len(dims) <= len(shape)
    as_bytes = np.frombuffer(x.tobytes(), np.uint8).reshape(dims)
    assert np.tile(as_bytes, mults).tobytes() == np.tile(x, multiples).tobytes()


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[5]])
def test_tile_round_trips_through_tflite(case, tmp_path):
    shape, multiples = case
    graph = tile_graph(shape, multiples)
    read = read_tflite(write_tflite(graph, tmp_path / "tile.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.TILE]
    assert read.ops[0].attrs == TileAttrs(multiples)
    assert read.tensors[read.outputs[0]].shape == graph.tensors["y"].shape


@pytest.mark.parametrize("shape, multiples", CASES)
@pytest.mark.parametrize("dtype", [DType.INT8, DType.INT16])
def test_tile_matches_tflite(shape, multiples, dtype):
    graph = tile_graph(shape, multiples, dtype)
    x = random_values(shape, dtype, len(shape))
    ours = Interpreter(graph).invoke([x])[0]
    theirs = run_litert(serialize_tflite(graph), x)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    assert int(np.sum(ours != theirs)) == 0


def _file_with_multiples(shape, multiples, type_code, constant: bool = True) -> bytes:
    out = tuple(d * m for d, m in zip(shape, multiples))
    tensors = [("x", shape, TensorType.INT8, (0.02, -7), None),
               ("multiples", (len(shape),), type_code, None, list(multiples) if constant else None),
               ("y", out, TensorType.INT8, (0.02, -7), None)]
    op = (BuiltinOperator.TILE, ["x", "multiples"], ["y"], BuiltinOptions.NONE, None)
    return build_model(tensors, [op], ["x"] if constant else ["x", "multiples"], ["y"])


def test_tile_reads_int64_multiples(tmp_path):
    """Converters may write the multiples as int64; read, run and checked against TFLite."""
    data = _file_with_multiples((2, 3, 4), (2, 1, 3), TensorType.INT64)
    path = tmp_path / "tile64.tflite"
    path.write_bytes(data)
    graph = read_tflite(path)
    assert graph.ops[0].attrs == TileAttrs((2, 1, 3))
    x = random_values((2, 3, 4), DType.INT8, 1)
    ours = Interpreter(graph).invoke([x])[0]
    assert np.array_equal(ours, np.tile(x, (2, 1, 3)))
    assert np.array_equal(ours, run_litert(data, x))


def test_tile_refuses_multiples_computed_at_run_time(tmp_path):
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(_file_with_multiples((2, 3), (2, 2), TensorType.INT32, constant=False))
    with pytest.raises(UnsupportedOpError, match="non-constant multiples") as info:
        read_tflite(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", [CASES[2], CASES[3], CASES[4]])
def test_generated_c_equals_the_reference(case, tmp_path):
    """ADD (an arena tensor) -> TILE: the C gives the reference runtime's bytes."""
    shape, multiples = case
    b = Int8Builder("tile", seed=6)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.08, 2))
    y = b.op(OpKind.TILE, [s], TileAttrs(multiples), quant=q(0.08, 2))
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


@pytest.mark.parametrize("case", [CASES[0], CASES[5], CASES[6]])
def test_generated_c_equals_the_reference_at_higher_ranks(case, tmp_path):
    shape, multiples = case
    assert differential_run(tile_graph(shape, multiples), tmp_path, qemu=False,
                            target="host") == {"host-asan": 0}


def test_generated_c_tiles_int16(tmp_path):
    """int8 -> QUANTIZE (int16) -> TILE -> QUANTIZE (int8): two bytes per element (the C takes
    and returns int8)."""
    b = Int8Builder("tile16", seed=2)
    x = b.x((2, 3, 5), 0.05, -3)
    wide = b.op(OpKind.QUANTIZE, [x], dtype=DType.INT16, quant=q(0.0005, 0))
    tiled = b.op(OpKind.TILE, [wide], TileAttrs((2, 3, 1)), dtype=DType.INT16, quant=q(0.0005, 0))
    y = b.op(OpKind.QUANTIZE, [tiled], dtype=DType.INT8, quant=q(0.04, 1))
    assert differential_run(b.finish([y]), tmp_path, qemu=False, target="host") == {"host-asan": 0}


@pytest.mark.parametrize("multiples, message", [
    ((2, 2, 2), "3 multiples for a rank-2 input"),
    ((2, 0), "multiple 0 along axis 1 \\(must be >= 1\\)"),
    ((-1, 2), "multiple -1 along axis 0"),
])
def test_tile_refuses_bad_multiples_in_one_line(multiples, message):
    x = Tensor("x", (2, 3), DType.INT8, QX)
    op = Op("tile", OpKind.TILE, ("x",), ("y",), TileAttrs(multiples))
    graph = Graph("bad", {"x": x, "y": Tensor("y", (4, 6), DType.INT8, QX)}, (op,), ("x",), ("y",))
    with pytest.raises(InvalidValueError, match=message) as info:
        validate_model(graph)
    assert str(info.value).startswith("graph bad: operator #0 tile (TILE): ")
    assert "\n" not in str(info.value)


def test_bench_says_tflite_micro_has_no_tile_kernel(tmp_path):
    """TFLite Micro cannot run a TILE model; `bench` names the kernel it lacks, not its
    allocation failure."""
    from mcuforge.commands.bench import bench_against_tflm
    from mcuforge.errors import ModelFileError
    path = write_tflite(tile_graph((2, 3), (2, 2)), tmp_path / "tile.tflite")
    with pytest.raises(ModelFileError, match="Didn't find op for builtin opcode 'TILE'") as info:
        bench_against_tflm(path)
    assert "\n" not in str(info.value)
