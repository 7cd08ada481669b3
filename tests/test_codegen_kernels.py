"""One test per generated C kernel: a one- or two-op int8 graph with random weights and quantisation,
compiled for the host with AddressSanitizer + UBSan and for Cortex-M7 (the DSP path) under QEMU, must
equal the reference runtime bit for bit on random and extreme inputs."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, output_scale, q
from mcuforge.ir import (RELU, RELU6, ConcatAttrs, ConvAttrs, DType, ElementwiseAttrs,
                         FullyConnectedAttrs, MeanAttrs, NO_CLAMP, OpKind, PadAttrs, Pads, PoolAttrs,
                         ReshapeAttrs, SoftmaxAttrs, TransposeAttrs)


def conv_graph(shape, cout, kernel, stride=(1, 1), pads=Pads(), dilation=(1, 1), clamp=RELU6,
               bias_magnitude=3000, seed=0, y_scale=None):
    b = Int8Builder("conv", seed)
    x = b.x(shape)
    cin = shape[3]
    w = b.weights((cout, *kernel, cin), 0, cout)
    bias = b.bias(cout, bias_magnitude)
    y_scale = y_scale or output_scale(0.05, 0.02, kernel[0] * kernel[1] * cin)
    y = b.op(OpKind.CONV_2D, [x, w, bias], ConvAttrs(stride, pads, dilation, clamp), dtype=DType.INT8,
             quant=q(y_scale, 5))
    return b.finish([y])


def depthwise_graph(shape, kernel, stride, multiplier=1, clamp=RELU, seed=0, widen=0):
    """A depthwise conv; with ``widen`` a 1x1 conv to that many channels follows (so that the arena
    peak lies after the depthwise and its padded-plane scratch fits in a gap)."""
    b = Int8Builder("dw", seed)
    x = b.x(shape)
    cout = shape[3] * multiplier
    w = b.weights((1, *kernel, cout), 3, cout)
    bias = b.bias(cout)
    pads = Pads.same(shape[1], shape[2], kernel, stride)
    y = b.op(OpKind.DEPTHWISE_CONV_2D, [x, w, bias],
             ConvAttrs(stride, pads, (1, 1), clamp, multiplier), dtype=DType.INT8,
             quant=q(output_scale(0.05, 0.02, kernel[0] * kernel[1]), -128))
    if widen:
        w2 = b.weights((widen, 1, 1, cout), 0, widen)
        y = b.op(OpKind.CONV_2D, [y, w2, b.bias(widen)], ConvAttrs((1, 1), Pads(), (1, 1), RELU),
                 dtype=DType.INT8, quant=q(output_scale(0.05, 0.02, cout), 3))
    return b.finish([y])


CASES = {
    "conv1x1": lambda: conv_graph((1, 5, 3, 8), 6, (1, 1)),
    "conv1x1_odd_channels": lambda: conv_graph((1, 3, 3, 7), 5, (1, 1), clamp=NO_CLAMP),
    # 13 channels: a body of six pair steps (the two-step loop) and one tail tap; 10 pixels.
    "conv1x1_two_step_loop": lambda: conv_graph((1, 2, 5, 13), 3, (1, 1)),
    "conv1x1_exact_requant": lambda: conv_graph((1, 4, 4, 8), 4, (1, 1), bias_magnitude=1 << 30),
    # output scale below input x weight scale: multipliers > 1, shifts >= 0 (the mixed fast form)
    "conv1x1_mixed_shift": lambda: conv_graph((1, 3, 5, 8), 6, (1, 1), clamp=NO_CLAMP,
                                              bias_magnitude=50, y_scale=0.05 * 0.012),
    "conv3x3_s2_same": lambda: conv_graph((1, 9, 7, 3), 8, (3, 3), (2, 2), Pads(0, 1, 0, 1)),
    "conv3x3_dilated": lambda: conv_graph((1, 8, 8, 4), 6, (3, 3), (1, 1), Pads(2, 2, 2, 2), (2, 2)),
    "conv_10x4_rect": lambda: conv_graph((1, 12, 6, 1), 8, (10, 4), (2, 2), Pads(4, 5, 1, 1)),
    "conv1x1_s2": lambda: conv_graph((1, 6, 6, 8), 8, (1, 1), (2, 2)),
    "dw3x3_s1": lambda: depthwise_graph((1, 7, 6, 5), (3, 3), (1, 1)),
    "dw3x3_s2": lambda: depthwise_graph((1, 8, 9, 4), (3, 3), (2, 2), clamp=RELU6),
    "dw5x5_s1": lambda: depthwise_graph((1, 6, 7, 3), (5, 5), (1, 1)),
    "dw7x7_s2": lambda: depthwise_graph((1, 9, 9, 3), (7, 7), (2, 2), clamp=NO_CLAMP),
    "dw_multiplier": lambda: depthwise_graph((1, 11, 9, 1), (5, 4), (2, 2), multiplier=4),
    "dw5x5_s2_tiny": lambda: depthwise_graph((1, 3, 3, 4), (5, 5), (2, 2)),  # every window clipped
    # Taller than wide: the plane is gathered transposed and computed column by column.
    "dw5x3_tall_s1": lambda: depthwise_graph((1, 17, 3, 5), (5, 3), (1, 1), widen=24),
    "dw3x3_tall_s2x1": lambda: depthwise_graph((1, 25, 3, 6), (3, 3), (2, 1), clamp=RELU6, widen=32),
}


def fc_graph(rows=1, per_channel=False, clamp=NO_CLAMP, cout=9, cin=37):
    b = Int8Builder("fc", 3)
    x = b.x((rows, cin))
    w = b.weights((cout, cin), 0 if per_channel else None, cout)
    bias = b.bias(cout)
    y = b.op(OpKind.FULLY_CONNECTED, [x, w, bias], FullyConnectedAttrs(clamp), dtype=DType.INT8,
             quant=q(output_scale(0.05, 0.02, cin), 7))
    return b.finish([y])


def add_graph():
    b = Int8Builder("add", 4)
    x1 = b.x((1, 4, 5, 6), 0.04, 10)
    x2 = b.input("x2", (1, 4, 5, 6), DType.INT8, q(0.07, -20))
    y = b.op(OpKind.ADD, [x1, x2], ElementwiseAttrs(RELU), dtype=DType.INT8, quant=q(0.09, -128))
    return b.finish([y])


def pool_graph(kind, kernel, stride, pads):
    b = Int8Builder("pool", 5)
    x = b.x((1, 7, 6, 5))
    y = b.op(kind, [x], PoolAttrs(kernel, stride, pads, RELU), dtype=DType.INT8, quant=q(0.05, -3))
    return b.finish([y])


def mean_graph(same_quant):
    b = Int8Builder("mean", 6)
    x = b.x((1, 5, 4, 7))
    y = b.op(OpKind.MEAN, [x], MeanAttrs((1, 2), True), dtype=DType.INT8,
             quant=q(0.05, -3) if same_quant else q(0.02, 11))
    return b.finish([y])


def movement_graph(kind):
    b = Int8Builder("move", 7)
    x = b.x((1, 4, 3, 6))
    quant = q(0.05, -3)
    if kind == "pad":
        y = b.op(OpKind.PAD, [x], PadAttrs(((0, 0), (1, 2), (2, 0), (0, 0))), dtype=DType.INT8, quant=quant)
    elif kind == "transpose":
        y = b.op(OpKind.TRANSPOSE, [x], TransposeAttrs((0, 3, 1, 2)), dtype=DType.INT8, quant=quant)
    elif kind == "reshape":
        pad = b.op(OpKind.PAD, [x], PadAttrs(((0, 0), (1, 0), (0, 0), (0, 0))), dtype=DType.INT8, quant=quant)
        y = b.op(OpKind.RESHAPE, [pad], ReshapeAttrs((1, 90)), dtype=DType.INT8, quant=quant)
    elif kind == "concat":
        x2 = b.input("x2", (1, 4, 3, 2), DType.INT8, quant)
        y = b.op(OpKind.CONCATENATION, [x, x2], ConcatAttrs(3), dtype=DType.INT8, quant=quant)
    else:
        y = b.op(OpKind.SOFTMAX, [x], SoftmaxAttrs(1.0), dtype=DType.INT8, quant=q(1 / 256, -128))
    return b.finish([y])


CASES.update({
    "fc": lambda: fc_graph(),
    "fc_rows_per_channel": lambda: fc_graph(3, True, RELU),
    "fc_narrow": lambda: fc_graph(2, cout=4),            # the int8 one-row core
    "fc_last_pass_of_three": lambda: fc_graph(1, True, cout=11, cin=40),
    "add": add_graph,
    "avgpool_padded": lambda: pool_graph(OpKind.AVERAGE_POOL_2D, (3, 3), (2, 2), Pads(1, 1, 1, 1)),
    "avgpool_global": lambda: pool_graph(OpKind.AVERAGE_POOL_2D, (7, 6), (7, 6), Pads()),
    "maxpool": lambda: pool_graph(OpKind.MAX_POOL_2D, (3, 2), (2, 2), Pads(1, 1, 0, 1)),
    "mean_same_quant": lambda: mean_graph(True),
    "mean_requant": lambda: mean_graph(False),
    "pad": lambda: movement_graph("pad"),
    "transpose": lambda: movement_graph("transpose"),
    "reshape": lambda: movement_graph("reshape"),
    "concat": lambda: movement_graph("concat"),
    "softmax": lambda: movement_graph("softmax"),
})


# Kernels with a DSP (SMLAD/SMMULR/SSAT) path also run on Cortex-M7 under QEMU; the others have one
# portable C path, which the sanitised host build covers.
DSP_CASES = {name for name in CASES if name.startswith(("conv", "dw", "fc", "add"))}


@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_bit_exact(case, tmp_path):
    graph = CASES[case]()
    mismatches = differential_run(graph, tmp_path, qemu=HAVE_ARM and case in DSP_CASES)
    assert mismatches == {name: 0 for name in mismatches}


@pytest.mark.parametrize("case", sorted(name for name in CASES if name.startswith("conv1x1")))
def test_size_build_bit_exact(case, tmp_path):
    """`compile --size`: -Os and 1x1 conv kernels that take their channel counts as arguments."""
    mismatches = differential_run(CASES[case](), tmp_path, qemu=HAVE_ARM, optimise="size")
    assert mismatches == {name: 0 for name in mismatches}


def test_size_build_shares_one_pointwise_kernel():
    from mcuforge.codegen.emit import generate
    from mcuforge.codegen.targets import TARGETS, with_optimisation
    graph = CASES["conv1x1"]()
    assert generate(graph, with_optimisation(TARGETS["cortex-m7"], "size")).kernels == (
        "mf_conv1x1_fast",)
    assert generate(graph, TARGETS["cortex-m7"]).kernels == ("mf_conv1x1_8x6_fast",)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(DSP_CASES))
def test_kernel_bit_exact_cortex_m4(case, tmp_path):
    """The DSP paths again on Cortex-M4 (mps2-an386): same ACLE code, another core and compiler target."""
    mismatches = differential_run(CASES[case](), tmp_path, qemu=HAVE_ARM, target="cortex-m4")
    assert mismatches == {name: 0 for name in mismatches}


@pytest.mark.parametrize("case", sorted(name for name in CASES if name.startswith("dw")))
def test_depthwise_in_place_kernel(case, tmp_path):
    """Each depthwise case again with the in-place kernel wherever the plan puts the depthwise in
    place (the default run above takes the padded-plane kernel when its scratch fits)."""
    from mcuforge.codegen.emit import generate
    from mcuforge.codegen.targets import TARGETS
    model = generate(CASES[case](), TARGETS["cortex-m7"], in_place_depthwise_kernel=True)
    in_place = any(o.kind.value == "inplace_depthwise" for o in model.plan.overlaps)
    assert in_place == any(name.startswith("mf_dwip") for name in model.kernels)
    if case in ("dw3x3_s1", "dw3x3_s2", "dw5x5_s1", "dw5x5_s2_tiny"):  # in place at the peak
        assert in_place and model.plan.scratch_bytes == 0  # only the planned channel plane
    mismatches = differential_run(CASES[case](), tmp_path, qemu=HAVE_ARM,
                                  in_place_depthwise_kernel=True)
    assert mismatches == {name: 0 for name in mismatches}


def test_tall_depthwise_takes_the_transposed_plane():
    from mcuforge.codegen.emit import generate
    from mcuforge.codegen.targets import TARGETS
    for case in ("dw5x3_tall_s1", "dw3x3_tall_s2x1"):
        tall = generate(CASES[case](), TARGETS["cortex-m7"]).kernels
        assert any(name.startswith("mf_dw_") and "t3_" in name for name in tall), tall
    wide = generate(CASES["dw3x3_s2"](), TARGETS["cortex-m7"]).kernels
    assert not any(name.startswith("mf_dw_") and "_ph" in name for name in wide)


def test_requant_form_follows_the_proved_bounds():
    from mcuforge.codegen.emit import generate
    from mcuforge.codegen.targets import TARGETS
    kernels = generate(CASES["conv1x1_exact_requant"](), TARGETS["cortex-m7"]).kernels
    assert any("_exact" in name for name in kernels)
    kernels = generate(CASES["conv1x1_mixed_shift"](), TARGETS["cortex-m7"]).kernels
    assert any("_fastmix" in name for name in kernels)
    kernels = generate(CASES["conv1x1"](), TARGETS["cortex-m7"]).kernels
    assert all("_exact" not in name and "_fastmix" not in name for name in kernels)
    # the host target has no DSP path: always the exact TFLite form
    kernels = generate(CASES["conv1x1"](), TARGETS["host"]).kernels
    assert all("_exact" in name for name in kernels if name.startswith("mf_conv"))


def test_random_weights_differ_between_seeds():
    a = conv_graph((1, 3, 3, 4), 4, (1, 1), seed=1)
    b = conv_graph((1, 3, 3, 4), 4, (1, 1), seed=2)
    wa = next(t.data for t in a.tensors.values() if t.constant and t.dtype is DType.INT8)
    wb = next(t.data for t in b.tensors.values() if t.constant and t.dtype is DType.INT8)
    assert not np.array_equal(wa, wb)


SCRATCH_CASES = sorted(name for name in CASES if name.startswith(("conv", "dw")))


@pytest.mark.parametrize("scratch_free", [False, True])
@pytest.mark.parametrize("case", SCRATCH_CASES)
def test_conv_kernels_with_and_without_scratch(case, scratch_free, tmp_path):
    """Each convolution with its fast kernel (im2col rows, the 1x1 int16 rows, the depthwise
    padded plane: scratch) and with the direct loop without scratch; where the scratch would grow
    the arena (``None``: a one-op graph, whose live set is the peak) the code generator takes the
    one without scratch, so the arena is the analytic peak (+ alignment)."""
    from mcuforge.codegen.emit import generate
    from mcuforge.codegen.targets import TARGETS
    model = generate(CASES[case](), TARGETS["cortex-m7"], scratch_free_kernels=scratch_free)
    templates = {layer.kernel.template for layer in model.layers if layer.kernel}
    if scratch_free:
        assert templates <= {"conv_direct", "conv_1x1_inplace", "depthwise_direct",
                             "depthwise_inplace"} and model.plan.scratch_bytes == 0
    else:
        assert templates <= {"conv_im2col", "conv_1x1", "depthwise", "depthwise_inplace"}
    default = generate(CASES[case](), TARGETS["cortex-m7"], scratch_free_kernels=None)
    assert default.plan.scratch_bytes == 0  # arena = analytic peak + alignment
    plan = default.plan
    assert plan.arena_bytes - plan.peak_activation_bytes < plan.options.alignment
    mismatches = differential_run(CASES[case](), tmp_path, qemu=HAVE_ARM,
                                  scratch_free_kernels=scratch_free)
    assert mismatches == {name: 0 for name in mismatches}


def test_pointwise_overlap_without_scratch(tmp_path):
    """A 1x1 expansion then projection written over their inputs (pointwise overlap) at the peak:
    the pixel-by-pixel kernel through the overlap's buffer, no scratch, arena = analytic peak."""
    from mcuforge.codegen.emit import generate
    from mcuforge.codegen.targets import TARGETS
    b = Int8Builder("pw", 5)
    x = b.x((1, 6, 5, 8))
    for k, cout in enumerate((24, 8)):
        w = b.weights((cout, 1, 1, 8 if k == 0 else 24), 0, cout)
        x = b.op(OpKind.CONV_2D, [x, w, b.bias(cout)], ConvAttrs((1, 1), Pads(), (1, 1), RELU6),
                 dtype=DType.INT8, quant=q(output_scale(0.05, 0.02, 24), -3 + k))
    graph = b.finish([x])
    model = generate(graph, TARGETS["cortex-m7"], scratch_free_kernels=None)
    assert {layer.kernel.template for layer in model.layers} == {"conv_1x1_inplace"}
    assert len(model.plan.overlaps) == 2
    assert model.plan.arena_bytes == model.plan.peak_activation_bytes
    mismatches = differential_run(graph, tmp_path, qemu=HAVE_ARM, scratch_free_kernels=None)
    assert mismatches == {name: 0 for name in mismatches}
