"""SPLIT, SPLIT_V and UNPACK (several outputs) are read as one STRIDED_SLICE per output: hand-built
.tflite models with each of them read as STRIDED_SLICEs, run bit-exact with TFLite Micro running
the original file (every output compared), the generated C (sanitised host build) equals the
reference runtime, the graph writes back and reads again, and outputs that do not tile the input
are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import tflite as S
from tflite.BuiltinOperator import BuiltinOperator as B
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from codegen_support import HAVE_ARM, differential_run
from tflite_build_support import build_model, options, run_tflm
from mcuforge.errors import ModelFileError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import OpKind
from mcuforge.runtime.reference import Interpreter

Q = (0.05, -3)

# The sanitised host build, and the Cortex-M7 build under QEMU where the Arm toolchain is installed.
NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}


def _int8(name, shape):
    return (name, tuple(shape), TensorType.INT8, Q, None)


def _const(name, values):
    values = np.asarray(values)
    return (name, values.shape, TensorType.INT32, None, values.reshape(-1).tolist())


def split_model(shape, axis, sizes):
    """x -> SPLIT(axis) -> y0 .. y{n-1} (equal sizes)."""
    outs = [_int8(f"y{k}", [s if i == axis % len(shape) else d for i, d in enumerate(shape)])
            for k, s in enumerate(sizes)]
    tensors = [_int8("x", shape), _const("axis", axis), *outs]
    op = (B.SPLIT, ["axis", "x"], [t[0] for t in outs], BuiltinOptions.SplitOptions,
          options(S.SplitOptionsStart, S.SplitOptionsEnd, NumSplits=len(sizes)))
    return build_model(tensors, [op], ["x"], [t[0] for t in outs])


def split_v_model(shape, axis, size_splits, sizes):
    """x -> SPLIT_V(size_splits, axis) -> y0 .. y{n-1}."""
    outs = [_int8(f"y{k}", [s if i == axis % len(shape) else d for i, d in enumerate(shape)])
            for k, s in enumerate(sizes)]
    tensors = [_int8("x", shape), _const("sizes", size_splits), _const("axis", axis), *outs]
    op = (B.SPLIT_V, ["x", "sizes", "axis"], [t[0] for t in outs], BuiltinOptions.SplitVOptions,
          options(S.SplitVOptionsStart, S.SplitVOptionsEnd, NumSplits=len(sizes)))
    return build_model(tensors, [op], ["x"], [t[0] for t in outs])


def unpack_model(shape, axis):
    """x -> UNPACK(axis) -> y0 .. y{n-1}."""
    a = axis % len(shape)
    rest = [d for i, d in enumerate(shape) if i != a]
    outs = [_int8(f"y{k}", rest) for k in range(shape[a])]
    tensors = [_int8("x", shape), *outs]
    op = (B.UNPACK, ["x"], [t[0] for t in outs], BuiltinOptions.UnpackOptions,
          options(S.UnpackOptionsStart, S.UnpackOptionsEnd, Num=shape[a], Axis=axis))
    return build_model(tensors, [op], ["x"], [t[0] for t in outs])


MODELS = {
    "split_channels": (lambda: split_model((1, 4, 4, 6), 3, [2, 2, 2]), (1, 4, 4, 6), 3),
    "split_negative_axis": (lambda: split_model((2, 6, 5), -2, [3, 3]), (2, 6, 5), 2),
    "split_v": (lambda: split_v_model((1, 4, 4, 6), 3, [1, -1, 2], [1, 3, 2]), (1, 4, 4, 6), 3),
    "split_v_rows": (lambda: split_v_model((3, 7), 1, [4, 3], [4, 3]), (3, 7), 2),
    "unpack_axis1": (lambda: unpack_model((2, 3, 4), 1), (2, 3, 4), 3),
    "unpack_last": (lambda: unpack_model((1, 5, 2), -1), (1, 5, 2), 2),
}


def _read(name, tmp_path):
    build, shape, n = MODELS[name]
    data = build()
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    return data, read_tflite(path), shape, n


@pytest.mark.parametrize("name", sorted(MODELS))
def test_splits_are_read_as_slices_and_match_tflite_micro(name, tmp_path):
    data, graph, shape, n = _read(name, tmp_path)
    assert [op.kind for op in graph.ops] == [OpKind.STRIDED_SLICE] * n
    assert all(op.inputs == ("x",) for op in graph.ops)
    rng = np.random.default_rng(n)
    for x in (rng.integers(-128, 128, size=shape, dtype=np.int8),
              np.arange(np.prod(shape)).astype(np.int8).reshape(shape)):
        ours = Interpreter(graph).invoke([x])
        reference = run_tflm(data, [x], n)
        assert len(ours) == n
        for got, want in zip(ours, reference):
            assert got.shape == want.shape and np.array_equal(got, want)


@pytest.mark.parametrize("name", ["split_v", "unpack_axis1"])
def test_generated_c_equals_the_reference(name, tmp_path):
    _, graph, _, n = _read(name, tmp_path)
    assert differential_run(graph, tmp_path, qemu=HAVE_ARM) == NO_MISMATCH


def test_the_slices_write_back_and_read_again(tmp_path):
    _, graph, _, _ = _read("split_v", tmp_path)
    again = read_tflite(write_tflite(graph, tmp_path / "written.tflite"))
    assert [op.attrs for op in again.ops] == [op.attrs for op in graph.ops]


def test_outputs_that_do_not_tile_the_input_are_refused(tmp_path):
    path = tmp_path / "bad.tflite"
    path.write_bytes(split_model((1, 4, 4, 6), 3, [2, 2, 3]))
    with pytest.raises(ModelFileError, match=r"SPLIT at operator #0: outputs .* do not split "
                                             r"\[1, 4, 4, 6\] along axis 3") as info:
        read_tflite(path)
    assert "\n" not in str(info.value)
