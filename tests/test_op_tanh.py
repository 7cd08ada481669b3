"""TANH (int8, TFLite semantics: gemmlowp's fixed-point tanh on a Q4.27 input) as one op module:
registered, round-trips through the .tflite writer and reader, bit-exact with the TFLite Micro pip
interpreter on several shapes, scales and zero points, and its generated C (a 256-entry table,
sanitised host build) equals the reference runtime."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError, McuforgeError, UnsupportedOpError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, ElementwiseAttrs, Graph, NoAttrs, Op, OpKind, QuantParams, Tensor
from mcuforge.ops import implemented_kinds, op_def
from mcuforge.ops.registry import OverlapRule
from mcuforge.ops.tanh import gemmlowp_tanh, tanh_int8
from mcuforge.ops.validation import validate_model
from mcuforge.runtime.reference import Interpreter

OUT_Q = QuantParams.per_tensor(1 / 128, 0)
# (input scale, zero point, shape): a scale that saturates most inputs (0.5), one that keeps all in
# the linear part (0.001), a tiny one (1e-5) with a negative left shift, ranks 2 to 4.
CASES = [
    (0.1, 0, (1, 256)),
    (0.02, -20, (3, 7)),
    (0.5, 5, (1, 4, 4, 16)),
    (0.001, 100, (2, 300)),
    (1e-5, 0, (1, 256)),
    (0.0625, -128, (2, 5, 12)),
]


def tanh_graph(in_scale, zero_point, shape, out_q=OUT_Q) -> Graph:
    """x -> TANH -> y."""
    x = Tensor("x", tuple(shape), DType.INT8, QuantParams.per_tensor(in_scale, zero_point))
    op = Op("tanh", OpKind.TANH, ("x",), ("y",), NoAttrs())
    y = Tensor("y", tuple(shape), DType.INT8, out_q)
    return Graph("tanh", {"x": x, "y": y}, (op,), ("x",), ("y",))


def inputs_of(shape, seed: int) -> list[np.ndarray]:
    """Random int8 values with every int8 value at the front when there is room."""
    values = np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)
    flat = values.reshape(-1)
    flat[:min(256, flat.size)] = np.arange(-128, 128, dtype=np.int8)[:flat.size]
    return [values]


def test_tanh_is_registered_with_its_rules():
    assert OpKind.TANH in implemented_kinds()
    definition = op_def(OpKind.TANH)
    assert definition.has_reference and definition.has_lowering and definition.patchable
    assert definition.overlap is OverlapRule.ELEMENTWISE


def test_tanh_round_trips_through_tflite(tmp_path):
    read = read_tflite(write_tflite(tanh_graph(0.1, 3, (1, 16)), tmp_path / "tanh.tflite"))
    assert [op.kind for op in read.ops] == [OpKind.TANH]
    assert read.tensors[read.outputs[0]].quant.zero_point == (0,)


def test_fixed_point_tanh_follows_the_real_tanh():
    """gemmlowp's tanh (Q4.27 in, Q0.31 out) is within 2^-22 of tanh over [-8, 8)."""
    real = np.linspace(-8, 8, 1001, endpoint=False)
    raw = np.round(real * 2 ** 27).astype(np.int64)
    got = gemmlowp_tanh(raw, 4) / 2 ** 31
    assert np.max(np.abs(got - np.tanh(raw / 2 ** 27))) < 2 ** -22


@pytest.mark.parametrize("in_scale, zero_point, shape", CASES)
def test_tanh_matches_tflite_micro(in_scale, zero_point, shape):
    for seed in (0, 1):
        assert_matches_tflm(tanh_graph(in_scale, zero_point, shape), inputs_of(shape, seed))


def test_tanh_approximates_the_real_tanh():
    """Independent of TFLite: within one output step of tanh on the 1/128 grid."""
    x = np.arange(-128, 128, dtype=np.int8)
    y = tanh_int8(x, q(0.03, -5), OUT_Q)
    expected = np.clip(np.tanh((x.astype(np.float64) + 5) * 0.03) * 128, -128, 127)
    assert np.max(np.abs(y - expected)) <= 1


@pytest.mark.parametrize("in_scale, zero_point, shape", [CASES[0], CASES[2], CASES[3]])
def test_generated_c_equals_the_reference(in_scale, zero_point, shape, tmp_path):
    """x -> ADD (an arena tensor) -> TANH: the sanitised host build equals the reference."""
    b = Int8Builder("tanh", seed=1)
    x = b.x(shape, 0.05, -3)
    x2 = b.input("x2", shape, DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(in_scale, zero_point))
    y = b.op(OpKind.TANH, [s], dtype=DType.INT8, quant=OUT_Q)
    assert differential_run(b.finish([y]), tmp_path, qemu=False, target="host") == {"host-asan": 0}


def test_tanh_refuses_other_output_quantisation_in_one_line():
    bad = tanh_graph(0.1, 0, (1, 8), q(1 / 256, -128))
    with pytest.raises(InvalidValueError, match="TANH needs scale 1/128 and zero point 0") as info:
        validate_model(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(McuforgeError, match="1/128"):
        Interpreter(bad).invoke([np.zeros((1, 8), np.int8)])
    with pytest.raises(UnsupportedOpError, match="1/128"):
        op_def(OpKind.TANH).lower(bad, 0, bad.ops[0], _HostTarget(), False)
    assert validate_model(tanh_graph(0.1, 0, (1, 8))) is not None


class _HostTarget:
    name = "host"
    dsp = False
