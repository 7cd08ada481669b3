"""16x8 LOGISTIC, TANH, SOFTMAX and LEAKY_RELU (int16 in and out): bit-exact with the TFLite Micro
pip interpreter on every int16 input value and several scales (the power-of-two scales of TFLite's
fast path and general ones), shapes, betas and alphas (negative ones too); their C kernels give every bit of the reference
runtime's output on every int16 value, and whole generated projects (host build with sanitizers,
behind int8 edges; Cortex-M7 under QEMU) equal it; the values are the real functions within a few
steps; unsupported quantisations are refused at import in one line."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, differential_run
from int16_support import RELU, check_tflm, int8_edged, q16, single
from kernel_support import run_layer_on_host
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError, UnsupportedOpError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, OpKind, QuantParams
from mcuforge.ir.builder import GraphBuilder
from mcuforge.codegen.targets import TARGETS
from mcuforge.ir.ops import ReshapeAttrs, SoftmaxAttrs
from mcuforge.ops import op_def
from mcuforge.ops.leaky_relu import LeakyReluAttrs
from mcuforge.ops.lut16 import lut_lookup_int16
from mcuforge.ops.softmax import softmax_int16_tables
from mcuforge.ops.validation import validate_model
from mcuforge.runtime.reference import Interpreter

Q015 = 2.0 ** -15  # the output scale of the int16 LOGISTIC, TANH and SOFTMAX
EVERY_INT16 = np.arange(-32768, 32768, dtype=np.int16)


def activation(kind: OpKind, out_scale: float = Q015):
    """A builder step: ``kind`` on an int16 tensor."""
    def build(b, x):
        return b.op(kind, [x], quant=q16(out_scale))
    return build


def softmax(beta: float = 1.0, out_scale: float = 1 / 32768):
    """A builder step: SOFTMAX on an int16 tensor."""
    def build(b, x):
        return b.op(OpKind.SOFTMAX, [x], SoftmaxAttrs(beta), quant=q16(out_scale))
    return build


def leaky_relu(alpha: float, out_scale: float):
    """A builder step: LEAKY_RELU on an int16 tensor."""
    def build(b, x):
        return b.op(OpKind.LEAKY_RELU, [x], LeakyReluAttrs(alpha), quant=q16(out_scale))
    return build


# --- LOGISTIC and TANH ---------------------------------------------------------------------------

# 2^-12 is TFLite's power-of-two path (and 2^-11 for TANH); the others take the multiplier path.
SIGMOID_SCALES = [2.0 ** -12, 2.0 ** -11, 2.0 ** -13, 2.0 ** -15, 0.001, 1 / 3000, 0.02, 2.5]
SHAPES = [(65536,), (4, 16384), (1, 16, 64, 64)]


@pytest.mark.parametrize("kind", [OpKind.LOGISTIC, OpKind.TANH])
@pytest.mark.parametrize("scale", SIGMOID_SCALES)
def test_logistic_tanh_int16_match_tflm_on_every_value(kind, scale):
    shape = SHAPES[SIGMOID_SCALES.index(scale) % len(SHAPES)]
    graph = single(activation(kind), shape, scale)
    out = assert_matches_tflm(graph, [EVERY_INT16.reshape(shape)])
    assert out.dtype == np.int16 and len(np.unique(out)) > 5


@pytest.mark.parametrize("kind,function", [(OpKind.LOGISTIC, lambda v: 1 / (1 + np.exp(-v))),
                                           (OpKind.TANH, np.tanh)])
def test_logistic_tanh_int16_are_the_real_functions(kind, function):
    """Within 2^-10 of the real sigmoid / tanh (TFLite's table interpolates sigmoid(i / 24))."""
    for scale in (2.0 ** -12, 0.001):
        out = Interpreter(single(activation(kind), (65536,), scale)).invoke([EVERY_INT16])[0]
        error = np.abs(out * Q015 - function(EVERY_INT16 * np.float32(scale)))
        assert error.max() < 2.0 ** -10


# --- LEAKY_RELU ----------------------------------------------------------------------------------

LEAKY_CASES = [
    # (alpha, input scale, output scale)
    (0.2, 0.001, 0.001),       # identity 1, ties of the alpha branch
    (0.1, 0.001, 0.0004),      # identity 2.5: saturates
    (-0.5, 0.001, 0.001),      # a negative alpha: every odd input a tie
    (1.7, 0.0005, 0.002),
    (-0.25, 0.002, 0.0015),
]


@pytest.mark.parametrize("alpha,s_in,s_out", LEAKY_CASES)
def test_leaky_relu_int16_matches_tflm_on_every_value(alpha, s_in, s_out):
    out = assert_matches_tflm(single(leaky_relu(alpha, s_out), (65536,), s_in), [EVERY_INT16])
    real = np.where(EVERY_INT16 >= 0, 1.0, alpha) * EVERY_INT16 * s_in / s_out
    inside = np.abs(real) < 32767
    assert np.abs(out[inside] - real[inside]).max() <= 1  # within one output step where it fits


# --- SOFTMAX -------------------------------------------------------------------------------------

SOFTMAX_CASES = [
    # (shape, input scale, beta)
    ((2, 10), 0.001, 1.0),
    ((3, 40), 0.0003, 1.0),
    ((1, 5, 7), 0.01, 0.5),
    ((1, 2, 3, 100), 1 / 2048, 2.0),
    ((4, 1), 0.001, 1.0),
    ((1, 1000), 0.002, 1.0),
    ((2, 16), 3e-6, 1.0),
    ((2, 16), 0.1, 1.0),
]


@pytest.mark.parametrize("shape,scale,beta", SOFTMAX_CASES)
def test_softmax_int16_matches_tflm(shape, scale, beta):
    graph = single(softmax(beta), shape, scale)
    rng = np.random.default_rng(5)
    for spread in (1, 30):  # the whole int16 range, and values close together
        x = (rng.integers(-32768, 32768, size=shape) // spread).astype(np.int16)
        assert assert_matches_tflm(graph, [x]).dtype == np.int16


def test_softmax_int16_matches_tflm_on_every_difference():
    """Rows [32767, v] for every int16 v, with the rescaling 1: every entry of the exp table and
    sums across the reciprocal table's range."""
    x = np.stack([np.full_like(EVERY_INT16, 32767), EVERY_INT16], axis=1)
    out = assert_matches_tflm(single(softmax(), x.shape, 10 / 65535), [x])
    assert len(np.unique(out)) > 20000


def test_softmax_int16_is_the_real_softmax():
    rng = np.random.default_rng(6)
    x = rng.integers(-8000, 8000, size=(8, 12)).astype(np.int16)
    scale = 0.001
    out = Interpreter(single(softmax(), x.shape, scale)).invoke([x])[0] / 32768
    exp = np.exp(x * scale - (x * scale).max(axis=-1, keepdims=True))
    assert np.abs(out - exp / exp.sum(axis=-1, keepdims=True)).max() < 2e-3


def test_softmax_int16_tables():
    """TFLite's 513-entry tables: exp over [-10, 0] and 1 / (1 + x) over [0, 1], both in Q0.15."""
    exp_lut, reciprocal_lut = softmax_int16_tables()
    assert exp_lut.shape == reciprocal_lut.shape == (513,)
    assert exp_lut[-1] == 32767 and reciprocal_lut[0] == 32767 and reciprocal_lut[-1] == 16384
    x = EVERY_INT16.astype(np.float64)
    assert np.abs(lut_lookup_int16(EVERY_INT16, exp_lut) / 32768
                  - np.exp((x - 32767) * 10 / 65535)).max() < 2e-4
    assert np.abs(lut_lookup_int16(EVERY_INT16, reciprocal_lut) / 32768
                  - 1 / (1 + (x + 32768) / 65535)).max() < 2e-4


# --- generated C ---------------------------------------------------------------------------------

EVERY_DIFFERENCE = np.stack([np.full_like(EVERY_INT16, 32767), EVERY_INT16], axis=1)
KERNEL_CASES = {
    # name: (builder step, input, input scale)
    "logistic_pot": (activation(OpKind.LOGISTIC), EVERY_INT16, 2.0 ** -12),
    "logistic": (activation(OpKind.LOGISTIC), EVERY_INT16, 0.001),
    "tanh_pot_shift_1": (activation(OpKind.TANH), EVERY_INT16, 2.0 ** -11),
    "tanh": (activation(OpKind.TANH), EVERY_INT16, 1 / 3000),
    "leaky_relu": (leaky_relu(0.2, 0.0008), EVERY_INT16, 0.001),
    "leaky_relu_negative_alpha": (leaky_relu(-0.5, 0.001), EVERY_INT16, 0.001),
    "softmax_every_difference": (softmax(), EVERY_DIFFERENCE, 10 / 65535),
    "softmax_rows": (softmax(0.5),
                     np.random.default_rng(1).permutation(EVERY_INT16).reshape(64, -1), 0.0003),
}


@pytest.mark.parametrize("case", sorted(KERNEL_CASES))
def test_int16_activation_kernel_equals_reference_on_every_value(case, tmp_path):
    """The C kernel alone (host, ASan + UBSan) on every int16 value (SOFTMAX: every difference
    to the row maximum, and long rows) gives the reference runtime's int16 output, every bit."""
    build, x, scale = KERNEL_CASES[case]
    graph = single(build, x.shape, scale)
    op = graph.ops[0]
    layer = op_def(op.kind).lower(graph, 0, op, TARGETS["host"], False)
    want = Interpreter(graph).invoke([x])[0]
    got = run_layer_on_host(layer, [x], np.int16, want.size, tmp_path)
    assert int(np.count_nonzero(got != want.reshape(-1))) == 0


def after_conv(step):
    """A 16x8 1x1 conv (dense int16 values), then ``step``."""
    return lambda b, x: step(b, b.conv(x, 4, (1, 1), 0.0005))


# Whole projects (arena, in-place layers, int8 edges): the top and the low bits of the output.
C_CASES = {
    "logistic_after_conv": ((1, 5, 5, 3), 0.001, after_conv(activation(OpKind.LOGISTIC))),
    "tanh_pot": ((1, 4, 4, 3), 2.0 ** -11, activation(OpKind.TANH)),
    "tanh_after_conv": ((1, 5, 5, 3), 0.001, after_conv(activation(OpKind.TANH))),
    "softmax_beta": ((4, 7), 0.0002, softmax(0.5)),
    "softmax_after_conv": ((1, 5, 5, 3), 0.001, after_conv(softmax())),
    "leaky_relu_after_conv": ((1, 5, 5, 3), 0.001, after_conv(leaky_relu(-0.3, 0.0004))),
}


@pytest.mark.parametrize("case", sorted(C_CASES))
def test_int16_activation_generated_c_equals_reference(case, tmp_path):
    """The generated C (host, ASan + UBSan) equals the reference runtime on the top and the low
    bits of the int16 output, and the graph is bit-exact with TFLite Micro."""
    shape, scale, build = C_CASES[case]
    graph = int8_edged(build, shape, scale, out_ratios=(256, 1))
    assert differential_run(graph, tmp_path, qemu=False, target="host") == {"host-asan": 0}
    rng = np.random.default_rng(4)
    assert_matches_tflm(graph, [rng.integers(-128, 128, shape, dtype=np.int8)])


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_int16_activations_cortex_m7_build_equals_reference(tmp_path):
    """conv -> TANH -> LOGISTIC -> reshape -> SOFTMAX, 16x8, on Cortex-M7 under QEMU."""
    graph = int8_edged(small_model, (1, 4, 4, 3), 0.001, out_ratios=(256, 1))
    runs = differential_run(graph, tmp_path, qemu=True, count=2, target="cortex-m7")
    assert runs == {"host-asan": 0, "qemu": 0}


# --- a model, round trip -------------------------------------------------------------------------

def small_model(b, x):
    """conv 1x1 (ReLU) -> TANH -> LOGISTIC -> reshape to rows -> SOFTMAX, all 16x8."""
    y = b.conv(x, 6, (1, 1), 0.0004, clamp=RELU)
    y = activation(OpKind.TANH)(b, y)
    y = activation(OpKind.LOGISTIC)(b, y)
    y = b.op(OpKind.RESHAPE, [y], ReshapeAttrs((16, 6)), quant=q16(Q015))
    return softmax(4.0)(b, y)


def test_int16_activation_model_round_trips_and_matches_tflm(tmp_path):
    graph = single(small_model, (1, 4, 4, 3), 0.001)
    check_tflm(graph)
    read = read_tflite(write_tflite(graph, tmp_path / "act16.tflite"))
    assert [op.kind for op in read.ops] == [op.kind for op in graph.ops]
    x = [np.random.default_rng(2).integers(-32768, 32768, (1, 4, 4, 3), dtype=np.int16)]
    np.testing.assert_array_equal(Interpreter(read).invoke(x)[0], Interpreter(graph).invoke(x)[0])


# --- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("build,in_scale,pattern", [
    (activation(OpKind.LOGISTIC, 1 / 256), 0.001,
     r"^graph int16: operator #0 logistic \(LOGISTIC\): tensor x -> \S+: output scale "
     r"0.00390625; an int16 LOGISTIC needs 2\^-15 \(1/32768\)$"),
    (activation(OpKind.TANH, 1.5 * Q015), 0.001, r"operator #0 .*TANH needs 2\^-15"),
    (activation(OpKind.LOGISTIC), 3.0,
     r"operator #0 .*tensor x .*input scale 3 gives the input multiplier 36864"),
    (softmax(out_scale=1 / 256), 0.001,
     r"^graph int16: operator #0 softmax \(SOFTMAX\): output tensor \S+: an int16 SOFTMAX "
     r"needs output scale 1/32768 and zero point 0, got scale 0.00390625, zero point 0$"),
    (softmax(beta=1.0), 6.0, r"operator #0 .*too large for the int16 input rescaling"),
])
def test_unsupported_int16_quantisations_are_refused_in_one_line(build, in_scale, pattern):
    with pytest.raises(InvalidValueError, match=pattern):
        validate_model(single(build, (1, 8), in_scale))


@pytest.mark.parametrize("kind", [OpKind.LOGISTIC, OpKind.TANH, OpKind.SOFTMAX])
def test_int16_input_with_int8_output_is_refused(kind):
    b = GraphBuilder("mixed")
    x = b.input("x", (1, 8), DType.INT16, q16(0.001))
    attrs = SoftmaxAttrs(1.0) if kind is OpKind.SOFTMAX else None
    y = b.op(kind, [x], attrs, dtype=DType.INT8, quant=QuantParams.per_tensor(1 / 256, -128))
    with pytest.raises(UnsupportedOpError, match=r"^unsupported dtype at .*operator #0 .*tensor "
                                                  r"\S+ is int8; an int16 .* takes int16"):
        validate_model(b.finish([y]))
