"""16x8 quantisation (int16 activations with zero point 0, int8 symmetric per-channel weights, int64
bias): FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, ADD, MUL, RESHAPE, AVERAGE_POOL_2D and
MAX_POOL_2D run bit-exact with the TFLite
Micro pip interpreter on several shapes, scales and options, round-trip through the .tflite writer
and reader, and their generated C (host build with sanitizers, behind int8 <-> int16 QUANTIZE edges
since the C API is int8) equals the reference runtime; a small conv -> dw -> conv -> add -> fc model
runs end to end; dtype combinations that are not supported are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, differential_run
from int16_support import NO_CLAMP, RELU, Builder16, check_tflm, int8_edged, q16, single
from tflm_support import assert_matches_tflm
from mcuforge.errors import InvalidValueError, McuforgeError, UnsupportedOpError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import (ConvAttrs, DType, ElementwiseAttrs, FullyConnectedAttrs, Graph, OpKind,
                         Pads, QuantParams)
from mcuforge.ir.ops import PoolAttrs, ReshapeAttrs
from mcuforge.ops.validation import validate_model
from mcuforge.runtime.reference import Interpreter

# --- FULLY_CONNECTED ---------------------------------------------------------------------------

FC_CASES = [
    # (input shape, out features, in scale, out scale, clamp, per-channel axis, keep_num_dims, bias)
    ((1, 16), 8, 0.001, 0.004, NO_CLAMP, None, False, True),
    ((3, 40), 12, 0.0005, 0.01, RELU, None, False, True),
    ((2, 5, 24), 7, 0.002, 0.02, NO_CLAMP, None, True, True),
    ((4, 33), 5, 0.01, 0.05, NO_CLAMP, None, False, False),
    ((1, 64), 10, 0.001, 0.01, NO_CLAMP, 0, False, True),
]


@pytest.mark.parametrize("shape,cout,s_in,s_out,clamp,axis,keep,bias", FC_CASES)
def test_fully_connected_16x8_matches_tflm(shape, cout, s_in, s_out, clamp, axis, keep, bias):
    graph = single(lambda b, x: b.fc(x, cout, s_out, clamp, axis, keep, bias), shape, s_in)
    check_tflm(graph)


# --- CONV_2D -----------------------------------------------------------------------------------

CONV_CASES = [
    # (input shape, cout, kernel, stride, pads, dilation, clamp, in scale, out scale)
    ((1, 6, 6, 3), 4, (3, 3), (1, 1), Pads(1, 1, 1, 1), (1, 1), NO_CLAMP, 0.001, 0.01),
    ((1, 9, 7, 5), 6, (3, 3), (2, 2), Pads(0, 1, 0, 1), (1, 1), RELU, 0.0005, 0.004),
    ((2, 5, 5, 8), 3, (1, 1), (1, 1), Pads(), (1, 1), NO_CLAMP, 0.002, 0.003),
    ((1, 8, 8, 2), 5, (3, 2), (1, 1), Pads(), (2, 2), NO_CLAMP, 0.001, 0.001),
    ((1, 7, 7, 4), 4, (5, 5), (1, 2), Pads(2, 2, 2, 2), (1, 1), NO_CLAMP, 0.004, 0.2),
]


@pytest.mark.parametrize("shape,cout,kernel,stride,pads,dilation,clamp,s_in,s_out", CONV_CASES)
def test_conv_16x8_matches_tflm(shape, cout, kernel, stride, pads, dilation, clamp, s_in, s_out):
    graph = single(lambda b, x: b.conv(x, cout, kernel, s_out, stride, pads, dilation, clamp),
                   shape, s_in)
    check_tflm(graph)


def test_conv_16x8_without_bias_and_with_int32_bias_matches_tflm():
    check_tflm(single(lambda b, x: b.conv(x, 3, (3, 3), 0.01, bias=False), (1, 5, 5, 2), 0.001))

    def int32_bias(b, x):
        w = b.weights((3, 3, 3, 2), 0, 3)
        inputs = [x, w, b.bias(x, w, 1 << 20, DType.INT32)]
        return b.op(OpKind.CONV_2D, inputs, ConvAttrs(), quant=q16(0.01))
    check_tflm(single(int32_bias, (1, 5, 5, 2), 0.001))


# --- DEPTHWISE_CONV_2D -------------------------------------------------------------------------

DW_CASES = [
    # (input shape, kernel, multiplier, stride, pads, dilation, clamp, in scale, out scale)
    ((1, 6, 6, 4), (3, 3), 1, (1, 1), Pads(1, 1, 1, 1), (1, 1), NO_CLAMP, 0.001, 0.004),
    ((1, 9, 8, 3), (3, 3), 2, (2, 2), Pads(0, 1, 0, 1), (1, 1), RELU, 0.0005, 0.002),
    ((1, 7, 7, 1), (5, 5), 3, (1, 1), Pads(2, 2, 2, 2), (1, 1), NO_CLAMP, 0.002, 0.01),
    ((2, 8, 8, 5), (3, 3), 1, (1, 1), Pads(), (2, 2), NO_CLAMP, 0.003, 0.003),
]


@pytest.mark.parametrize("shape,kernel,dm,stride,pads,dilation,clamp,s_in,s_out", DW_CASES)
def test_depthwise_16x8_matches_tflm(shape, kernel, dm, stride, pads, dilation, clamp, s_in, s_out):
    graph = single(lambda b, x: b.depthwise(x, kernel, s_out, dm, stride, pads, dilation, clamp),
                   shape, s_in)
    check_tflm(graph)


def test_int32_bias_16x8_matches_tflm():
    """With an int32 bias TFLite Micro accumulates in int32 and requantises with the int32 form."""
    def fc(b, x):
        w = b.weights((6, 20), None, 6)
        return b.op(OpKind.FULLY_CONNECTED, [x, w, b.bias(x, w, 1 << 20, DType.INT32)],
                    FullyConnectedAttrs(), quant=q16(0.004))

    def dw(b, x):
        w = b.weights((1, 3, 3, 4), 3, 4)
        return b.op(OpKind.DEPTHWISE_CONV_2D, [x, w, b.bias(x, w, 1 << 20, DType.INT32)],
                    ConvAttrs(pads=Pads(1, 1, 1, 1)), quant=q16(0.004))
    check_tflm(single(fc, (2, 20), 0.001))
    # TFLite Micro's int16 depthwise reads the bias as int64 only: an int32 one is refused.
    refusal = r"operator #0 .*bias tensor b\S* is int32; .* takes int64$"
    with pytest.raises(UnsupportedOpError, match=refusal):
        validate_model(single(dw, (1, 5, 5, 4), 0.001))


# --- ADD and RESHAPE ---------------------------------------------------------------------------

ADD_CASES = [
    # (shape a, shape b, scale a, scale b, scale out, clamp)
    ((1, 4, 4, 3), (1, 4, 4, 3), 0.001, 0.002, 0.003, NO_CLAMP),
    ((2, 17), (2, 17), 0.0005, 0.0005, 0.001, RELU),
    ((1, 3, 5, 4), (1, 1, 5, 4), 0.01, 0.001, 0.02, NO_CLAMP),
    ((3, 8), (8,), 0.00005, 0.00002, 0.0001, (-1.0, 1.0)),
]


def add_graph(shape_a, shape_b, s_a, s_b, s_out, clamp, kind=OpKind.ADD) -> Graph:
    """a, b (int16) -> ADD (or MUL) -> y (int16)."""
    b = Builder16("add16")
    x1 = b.input("a", tuple(shape_a), DType.INT16, q16(s_a))
    x2 = b.input("b", tuple(shape_b), DType.INT16, q16(s_b))
    return b.finish([b.op(kind, [x1, x2], ElementwiseAttrs(clamp), quant=q16(s_out))])


def mul_constant(b, x):
    """x * a per-channel int16 constant (the squeeze-excite shape of broadcast)."""
    c = b.constant("c", (1, 1, 1, 3), DType.INT16, np.array([[[[-30000, 1234, 32767]]]], np.int16),
                   q16(1 / 32768))
    return b.op(OpKind.MUL, [x, c], ElementwiseAttrs(), quant=q16(0.0005))


@pytest.mark.parametrize("shape_a,shape_b,s_a,s_b,s_out,clamp", ADD_CASES)
def test_add_int16_matches_tflm(shape_a, shape_b, s_a, s_b, s_out, clamp):
    check_tflm(add_graph(shape_a, shape_b, s_a, s_b, s_out, clamp))


MUL_CASES = [
    ((1, 4, 4, 3), (1, 4, 4, 3), 0.001, 0.002, 0.05, NO_CLAMP),
    ((2, 17), (2, 17), 0.01, 0.01, 2.0, RELU),
    ((1, 3, 5, 4), (1, 1, 1, 4), 0.001, 0.0005, 0.01, NO_CLAMP),
    ((3, 8), (8,), 1 / 32768, 1 / 32768, 1 / 32768, NO_CLAMP),
]


@pytest.mark.parametrize("shape_a,shape_b,s_a,s_b,s_out,clamp", MUL_CASES)
def test_mul_int16_matches_tflm(shape_a, shape_b, s_a, s_b, s_out, clamp):
    graph = add_graph(shape_a, shape_b, s_a, s_b, s_out, clamp, OpKind.MUL)
    check_tflm(graph)


POOL_CASES = [
    # (kind, input shape, kernel, stride, pads, clamp)
    (OpKind.AVERAGE_POOL_2D, (1, 6, 6, 3), (2, 2), (2, 2), Pads(), NO_CLAMP),
    (OpKind.AVERAGE_POOL_2D, (2, 7, 5, 4), (3, 3), (1, 1), Pads(1, 1, 1, 1), RELU),
    (OpKind.MAX_POOL_2D, (1, 6, 6, 3), (2, 2), (2, 2), Pads(), NO_CLAMP),
    (OpKind.MAX_POOL_2D, (1, 7, 7, 5), (3, 3), (2, 2), Pads(1, 1, 1, 1), RELU),
]


def pool(kind, kernel, stride, pads, clamp):
    """A builder step: an int16 pool with the input's quantisation."""
    def build(b, x):
        return b.op(kind, [x], PoolAttrs(kernel, stride, pads, clamp), quant=b.tensors[x].quant)
    return build


@pytest.mark.parametrize("kind,shape,kernel,stride,pads,clamp", POOL_CASES)
def test_pool_int16_matches_tflm(kind, shape, kernel, stride, pads, clamp):
    check_tflm(single(pool(kind, kernel, stride, pads, clamp), shape, 0.001))


def test_reshape_int16_matches_tflm():
    def reshape(b, x):
        return b.op(OpKind.RESHAPE, [x], ReshapeAttrs((2, 12)), quant=q16(0.001))
    check_tflm(single(reshape, (1, 2, 3, 4), 0.001))


def test_int8_int16_quantize_edges_match_tflm():
    """QUANTIZE int8 -> int16 and int16 -> int8 (the edges the C tests put around 16x8 ops)."""
    graph = int8_edged(lambda b, x: b.conv(x, 3, (3, 3), 0.004, pads=Pads(1, 1, 1, 1)),
                       (1, 5, 5, 2), 0.001)
    rng = np.random.default_rng(3)
    for _ in range(2):
        assert_matches_tflm(graph, [rng.integers(-128, 128, (1, 5, 5, 2), dtype=np.int8)])


# --- generated C -------------------------------------------------------------------------------

C_CASES = {
    "fc": ((2, 24), lambda b, x: b.fc(x, 9, 0.004, RELU)),
    "fc_per_channel_keep_dims": ((2, 3, 16), lambda b, x: b.fc(x, 5, 0.003, axis=0,
                                                               keep_num_dims=True)),
    "conv": ((1, 7, 6, 3), lambda b, x: b.conv(x, 4, (3, 3), 0.01, (2, 1), Pads(1, 1, 1, 0))),
    "conv_dilated_relu": ((2, 8, 8, 2), lambda b, x: b.conv(x, 3, (3, 2), 0.004, dilation=(2, 2),
                                                            clamp=RELU)),
    "conv_1x1": ((1, 4, 4, 6), lambda b, x: b.conv(x, 5, (1, 1), 0.003)),
    "depthwise": ((1, 6, 6, 4), lambda b, x: b.depthwise(x, (3, 3), 0.004, pads=Pads(1, 1, 1, 1))),
    "depthwise_dm2_strided": ((1, 9, 8, 3), lambda b, x: b.depthwise(
        x, (3, 3), 0.002, 2, (2, 2), Pads(0, 1, 0, 1), clamp=RELU)),
    "depthwise_dilated": ((1, 8, 8, 2), lambda b, x: b.depthwise(x, (3, 3), 0.003,
                                                                 dilation=(2, 2))),
    "add": ((1, 4, 4, 3), lambda b, x: b.op(
        OpKind.ADD, [x, b.conv(x, 3, (1, 1), 0.002)], ElementwiseAttrs(RELU), quant=q16(0.003))),
    "mul": ((1, 4, 4, 3), lambda b, x: b.op(
        OpKind.MUL, [x, b.conv(x, 3, (1, 1), 0.002)], ElementwiseAttrs(RELU), quant=q16(0.02))),
    "mul_broadcast": ((1, 4, 4, 3), lambda b, x: b.op(
        OpKind.MUL, [x, b.op(OpKind.RESHAPE, [b.fc(b.op(OpKind.RESHAPE, [x], ReshapeAttrs((16, 3)),
                                                            quant=q16(0.001)), 1, 0.003)],
                             ReshapeAttrs((1, 4, 4, 1)), quant=q16(0.003))],
        ElementwiseAttrs(), quant=q16(0.01))),
    "mul_constant": ((1, 3, 3, 3), mul_constant),
    "avgpool": ((1, 6, 6, 3), pool(OpKind.AVERAGE_POOL_2D, (3, 3), (1, 1), Pads(1, 1, 1, 1),
                                   RELU)),
    "maxpool": ((1, 7, 7, 2), pool(OpKind.MAX_POOL_2D, (3, 3), (2, 2), Pads(1, 1, 1, 1), NO_CLAMP)),
    "reshape": ((1, 2, 3, 4), lambda b, x: b.fc(
        b.op(OpKind.RESHAPE, [x], ReshapeAttrs((2, 12)), quant=q16(0.001)), 4, 0.004)),
}


@pytest.mark.parametrize("case", sorted(C_CASES))
def test_16x8_generated_c_equals_reference(case, tmp_path):
    """The generated C (host, ASan + UBSan) equals the reference runtime bit for bit, and the
    graph (int8 edges included) is bit-exact with TFLite Micro."""
    shape, build = C_CASES[case]
    graph = int8_edged(build, shape, 0.001)
    assert differential_run(graph, tmp_path, qemu=False, target="host") == {"host-asan": 0}
    rng = np.random.default_rng(4)
    out = assert_matches_tflm(graph, [rng.integers(-128, 128, shape, dtype=np.int8)])
    assert len(np.unique(out)) > min(8, out.size // 4)  # not all saturated


def test_int64_bias_beyond_int32_matches_tflm_and_c(tmp_path):
    """Biases beyond int32 (so the accumulator needs int64) in FC, conv and depthwise."""
    def build(b, x):
        w = b.weights((4, 3, 3, 3), 0, 4)
        y = b.op(OpKind.CONV_2D, [x, w, b.bias(x, w, 1 << 36)], ConvAttrs(pads=Pads(1, 1, 1, 1)),
                 quant=q16(40.0))
        w = b.weights((1, 3, 3, 4), 3, 4)
        y = b.op(OpKind.DEPTHWISE_CONV_2D, [y, w, b.bias(y, w, 1 << 40)], ConvAttrs(),
                 quant=q16(2e7))
        y = b.op(OpKind.RESHAPE, [y], ReshapeAttrs((1, 36)), quant=q16(2e7))
        w = b.weights((6, 36), None, 6)
        return b.op(OpKind.FULLY_CONNECTED, [y, w, b.bias(y, w, 1 << 38)], FullyConnectedAttrs(),
                    quant=q16(3e12))
    check_tflm(single(build, (1, 5, 5, 3), 0.001))
    assert differential_run(int8_edged(build, (1, 5, 5, 3), 0.001), tmp_path, qemu=False,
                            target="host") == {"host-asan": 0}


# --- a 16x8 model end to end -------------------------------------------------------------------

def small_16x8_model(edges: bool) -> Graph:
    """conv 3x3 -> depthwise 3x3 -> conv 1x1 -> add (residual) -> reshape -> fc, all 16x8."""
    def build(b, x):
        y = b.conv(x, 8, (3, 3), 0.004, pads=Pads(1, 1, 1, 1), clamp=RELU)
        d = b.depthwise(y, (3, 3), 0.004, pads=Pads(1, 1, 1, 1), clamp=RELU)
        p = b.conv(d, 8, (1, 1), 0.004)
        s = b.op(OpKind.ADD, [y, p], ElementwiseAttrs(), quant=q16(0.006))
        flat = b.op(OpKind.RESHAPE, [s], ReshapeAttrs((1, 8 * 6 * 6)), quant=q16(0.006))
        return b.fc(flat, 10, 0.2)
    if edges:
        return int8_edged(build, (1, 6, 6, 3), 0.001, seed=7)
    return single(build, (1, 6, 6, 3), 0.001, seed=7)


def test_small_16x8_model_end_to_end(tmp_path):
    """The model with int16 I/O is bit-exact with TFLite Micro; with int8 edges it is too, it
    round-trips through .tflite, and its generated C equals the reference runtime."""
    check_tflm(small_16x8_model(edges=False), seeds=(1, 2, 3))
    graph = small_16x8_model(edges=True)
    rng = np.random.default_rng(9)
    for _ in range(3):
        assert_matches_tflm(graph, [rng.integers(-128, 128, (1, 6, 6, 3), dtype=np.int8)])
    read = read_tflite(write_tflite(graph, tmp_path / "m16x8.tflite"))
    x = [rng.integers(-128, 128, (1, 6, 6, 3), dtype=np.int8)]
    np.testing.assert_array_equal(Interpreter(read).invoke(x)[0], Interpreter(graph).invoke(x)[0])
    assert differential_run(graph, tmp_path, qemu=False, target="host") == {"host-asan": 0}


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("case", ["model", "mul_constant", "avgpool", "fc_per_channel_keep_dims"])
def test_16x8_cortex_m7_build_equals_reference(case, tmp_path):
    """The Cortex-M7 build (under QEMU) of the 16x8 kernels equals the reference runtime."""
    if case == "model":
        graph = small_16x8_model(edges=True)
    else:
        shape, build = C_CASES[case]
        graph = int8_edged(build, shape, 0.001)
    runs = differential_run(graph, tmp_path, qemu=True, count=2, target="cortex-m7")
    assert runs == {"host-asan": 0, "qemu": 0}


def test_16x8_ops_round_trip_through_tflite(tmp_path):
    graph = small_16x8_model(edges=False)
    read = read_tflite(write_tflite(graph, tmp_path / "m.tflite"))
    assert [op.kind for op in read.ops] == [op.kind for op in graph.ops]
    for name, tensor in graph.tensors.items():
        got = read.tensors[name]
        assert got.dtype is tensor.dtype and got.quant.zero_point == tensor.quant.zero_point
        np.testing.assert_array_equal(np.float32(got.quant.scale), np.float32(tensor.quant.scale))
        if tensor.data is not None:
            np.testing.assert_array_equal(got.data, tensor.data)
    assert {read.tensors[op.inputs[2]].dtype for op in read.ops if len(op.inputs) > 2} == {
        DType.INT64}


# --- refusals ----------------------------------------------------------------------------------

def test_mixed_dtypes_are_refused_in_one_line():
    def int8_out(b, x):
        w = b.weights((4, 8), None, 4)
        return b.op(OpKind.FULLY_CONNECTED, [x, w, b.bias(x, w)], FullyConnectedAttrs(),
                    dtype=DType.INT8, quant=QuantParams.per_tensor(0.01, 0))
    graph = single(int8_out, (1, 8), 0.001)
    pattern = (r"^unsupported dtype at graph int16: operator #0 fully_connected "
               r"\(FULLY_CONNECTED\): output tensor \S+ is int8; a 16x8 \(int16 activations\) "
               r"FULLY_CONNECTED takes int16$")
    with pytest.raises(UnsupportedOpError, match=pattern):
        validate_model(graph)
    with pytest.raises(UnsupportedOpError, match="operator #0 .*output tensor .* is int8"):
        Interpreter(graph).invoke([np.zeros((1, 8), np.int16)])

    def int16_weights(b, x):
        data = np.ones((4, 8), np.int16)
        w = b.constant("w", (4, 8), DType.INT16, data, QuantParams.per_tensor(0.01, 0))
        return b.op(OpKind.FULLY_CONNECTED, [x, w], FullyConnectedAttrs(), quant=q16(0.01))
    with pytest.raises(UnsupportedOpError, match=r"weights tensor w is int16; .* takes int8$"):
        validate_model(single(int16_weights, (1, 8), 0.001))

    b = Builder16("mixed_add")
    a = b.input("a", (1, 4), DType.INT16, q16(0.001))
    c = b.input("c", (1, 4), DType.INT8, QuantParams.per_tensor(0.01, 0))
    mixed = b.finish([b.op(OpKind.ADD, [a, c], ElementwiseAttrs(), quant=q16(0.002))])
    with pytest.raises(UnsupportedOpError,
                       match=r"operator #0 add \(ADD\): input 2 tensor c is int8; an int16 ADD"):
        validate_model(mixed)


def test_16x8_values_outside_the_ranges_are_refused():
    def huge_bias(b, x):
        w = b.weights((4, 8), None, 4)
        return b.op(OpKind.FULLY_CONNECTED, [x, w, b.bias(x, w, 1 << 50)], FullyConnectedAttrs(),
                    quant=q16(0.01))
    with pytest.raises(InvalidValueError, match=r"operator #0 .*bias tensor \S+: .*\+-2\^47"):
        validate_model(single(huge_bias, (1, 8), 0.001))
    with pytest.raises(InvalidValueError, match=r"operator #0 .*multiplier .* 2\^7 or more"):
        validate_model(single(lambda b, x: b.fc(x, 4, 1e-6), (1, 8), 0.5))
    b = Builder16("zp")
    x = b.input("x", (1, 8), DType.INT16, QuantParams.per_tensor(0.001, 3))
    with pytest.raises(McuforgeError, match="zero point 3"):
        validate_model(b.finish([b.fc(x, 4, 0.01)]))
