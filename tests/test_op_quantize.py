"""QUANTIZE int8 -> int8 (a requantisation): bit-exact with the TFLite Micro pip interpreter and
its generated C (a 256-entry table; sanitised host build) equal to the reference runtime, over
scale ratios from 1/300 to 300, equal scales with moved zero points, and the identity
(test_kernels.py covers two ratios and a double-rounding case; these add the extremes)."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from tflm_support import assert_matches_tflm
from mcuforge.ir import DType, ElementwiseAttrs, Graph, NoAttrs, Op, OpKind, Tensor

NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}
CASES = [  # (input quantisation, output quantisation)
    (q(0.03, 5), q(0.03, 5)),            # identity
    (q(0.03, 5), q(0.03, -70)),          # equal scales, the zero point moves
    (q(0.9, -10), q(0.003, 2)),          # ratio 300: nearly everything saturates
    (q(0.001, 100), q(0.3, -128)),       # ratio 1/300: nearly everything maps to a few codes
    (q(0.0625, 0), q(0.125, 0)),         # an exact halving: ties round away from zero
    (q(0.1234567, -128), q(0.0417, 127)),
]


def quantize_graph(x_q, y_q) -> Graph:
    """x (int8) -> QUANTIZE -> y (int8)."""
    x = Tensor("x", (1, 256), DType.INT8, x_q)
    y = Tensor("y", (1, 256), DType.INT8, y_q)
    op = Op("quantize", OpKind.QUANTIZE, ("x",), ("y",), NoAttrs())
    return Graph("quantize", {"x": x, "y": y}, (op,), ("x",), ("y",))


@pytest.mark.parametrize("x_q, y_q", CASES)
def test_int8_requantisation_matches_tflite_micro(x_q, y_q):
    values = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    y = assert_matches_tflm(quantize_graph(x_q, y_q), [values])
    if x_q == y_q:
        assert np.array_equal(y, values)


@pytest.mark.parametrize("x_q, y_q", [CASES[1], CASES[2], CASES[4]])
def test_generated_c_equals_the_reference(x_q, y_q, tmp_path):
    """ADD (an arena tensor) -> QUANTIZE -> ADD: the sanitised host build gives the reference's
    bytes."""
    b = Int8Builder("requant", seed=2)
    x = b.x((1, 4, 5, 8), 0.05, -3)
    x2 = b.input("x2", (1, 4, 5, 8), DType.INT8, q(0.04, 7))
    s = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=x_q)
    z = b.op(OpKind.QUANTIZE, [s], NoAttrs(), dtype=DType.INT8, quant=y_q)
    y = b.op(OpKind.ADD, [z, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.1, 0))
    assert differential_run(b.finish([y]), tmp_path, qemu=HAVE_ARM) == NO_MISMATCH
