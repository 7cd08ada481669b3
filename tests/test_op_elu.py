"""ELU (int8, TFLite Micro's float lookup table) as one op module: registered, round-trips through
the .tflite writer and reader, bit-exact with the TFLite Micro pip interpreter on several shapes,
scales and zero points, and its generated C (a 256-entry table, sanitised host build) equals the
reference runtime."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, ElementwiseAttrs, Graph, NoAttrs, Op, OpKind, QuantParams, Tensor
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.elu import elu_int8
from mcuforge.ops.registry import OverlapRule
from mcuforge.ops.validation import validate_model

# (input scale, zero point, output scale, zero point, shape)
CASES = [
    (0.1, 0, 0.05, -10, (1, 256)),
    (0.02, -20, 0.02, -20, (3, 7)),
    (0.5, 5, 0.07, 3, (1, 4, 4, 16)),
    (0.004, 100, 0.01, -128, (2, 300)),
    (3.0, -128, 0.5, 60, (1, 256)),
    (0.0625, 12, 0.03, 90, (2, 5, 12)),
]


def elu_graph(xs, xz, ys, yz, shape) -> Graph:
    """x -> ELU -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, QuantParams.per_tensor(xs, xz))
    op = Op("elu", OpKind.ELU, ("x",), ("y",), NoAttrs())
    y = Tensor("y", tuple(shape), DType.INT8, QuantParams.per_tensor(ys, yz))
    return Graph("elu", {"x": x, "y": y}, (op,), ("x",), ("y",))


def inputs_of(shape, seed: int) -> list[np.ndarray]:
    """Random int8 values with every int8 value at the front when there is room."""
    values = np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)
    flat = values.reshape(-1)
    flat[:min(256, flat.size)] = np.arange(-128, 128, dtype=np.int8)[:flat.size]
    return [values]


def test_elu_is_registered_with_its_rules():
    assert OpKind.ELU in implemented_kinds()
    definition = op_def(OpKind.ELU)
    assert definition.has_reference and definition.has_lowering and definition.patchable
    assert definition.overlap is OverlapRule.ELEMENTWISE


def test_elu_round_trips_through_tflite(tmp_path):
    read = read_tflite(write_tflite(elu_graph(*CASES[0]), tmp_path / "elu.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.ELU]
    assert read.tensors[read.outputs[0]].quant.scale[0] == pytest.approx(0.05)


@pytest.mark.parametrize("case", CASES)
def test_elu_matches_tflite_micro(case):
    for seed in (0, 1):
        assert_matches_tflm(elu_graph(*case), inputs_of(case[-1], seed))


def test_elu_follows_the_real_function():
    """Independent of TFLite: within half an output step of elu where the result fits."""
    x = np.arange(-128, 128, dtype=np.int8)
    y = elu_int8(x, q(0.03, 20), q(0.02, 10))
    real = (x.astype(np.float64) - 20) * 0.03
    expected = np.where(real < 0, np.expm1(real), real) / 0.02 + 10
    inside = (expected > -128) & (expected < 127)
    assert np.max(np.abs(y[inside] - expected[inside])) <= 0.5 + 1e-5


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[4]])
def test_generated_c_equals_the_reference(case, tmp_path):
    """x -> ADD (an arena tensor) -> ELU: the sanitised host build equals the reference."""
    xs, xz, ys, yz, shape = case
    b = Int8Builder("elu", seed=1)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(xs, xz))
    y = b.op(OpKind.ELU, [s], dtype=DType.INT8, quant=q(ys, yz))
    assert differential_run(b.finish([y]), tmp_path, qemu=False, target="host") == {"host-asan": 0}


def test_elu_refuses_an_unrepresentable_requantisation_in_one_line():
    with pytest.raises(InvalidValueError, match="not representable") as info:
        validate_model(elu_graph(0.1, 0, 1e-19, 0, (1, 8)))
    assert "\n" not in str(info.value)
