"""Int4 weights in the generated C: packed two per byte in Flash, unpacked by the kernels.

Each convolution kernel's int4 variant, on one-op graphs whose weights are int4 (values over the whole
[-8, 7] range, odd channel counts and odd filter lengths so that rows start mid-byte), and an int4 PTQ
zoo model, compiled for the host with AddressSanitizer + UBSan and for Cortex-M7 under QEMU, must
equal the reference runtime bit for bit. The int4 model's weight bytes are about half the int8 one's.
In-place depthwise layers (channel-plane and row-ring kernels, which have no int4 variant) store their
int4 weights one per byte and stay bit-exact.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from codegen_support import HAVE_ARM, differential_run
from mcuforge.codegen.emit import generate, total_weight_bytes
from mcuforge.codegen.project import compile_model
from mcuforge.codegen.targets import TARGETS
from mcuforge.ir import DType, Graph, OpKind, Pads
from mcuforge.planner.arena import PlanOptions
from mcuforge.quant.ptq import quantize_spec_net
from test_codegen_kernels import conv_graph, depthwise_graph
from test_quant_ptq import SPECS, inputs, random_net


def with_int4_weights(graph: Graph, seed: int = 0) -> Graph:
    """``graph`` with every conv/depthwise weight tensor replaced by random int4 values in [-8, 7]."""
    rng = np.random.default_rng(seed)
    tensors = dict(graph.tensors)
    for op in graph.ops:
        if op.kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D):
            w = tensors[op.inputs[1]]
            data = rng.integers(-8, 8, size=w.shape, dtype=np.int8)
            data.flat[:2] = (-8, 7)  # both ends of the range
            tensors[w.name] = replace(w, dtype=DType.INT4, data=data)
    return replace(graph, tensors=tensors)


CASES = {
    "conv1x1": lambda: conv_graph((1, 5, 3, 8), 6, (1, 1)),  # 15 pixels: groups of four and a tail
    "conv1x1_odd_channels": lambda: conv_graph((1, 3, 3, 7), 5, (1, 1)),
    "conv1x1_mixed_shift": lambda: conv_graph((1, 3, 5, 8), 6, (1, 1), bias_magnitude=50,
                                              y_scale=0.05 * 0.012 / 8),
    "conv3x3_s2_same": lambda: conv_graph((1, 9, 7, 3), 7, (3, 3), (2, 2), Pads(0, 1, 0, 1)),
    "dw3x3_s1": lambda: depthwise_graph((1, 7, 6, 5), (3, 3), (1, 1)),
    "dw5x5_s1": lambda: depthwise_graph((1, 6, 7, 3), (5, 5), (1, 1)),
    "dw7x7_s2": lambda: depthwise_graph((1, 9, 9, 3), (7, 7), (2, 2)),
    "dw_multiplier": lambda: depthwise_graph((1, 11, 9, 1), (5, 4), (2, 2), multiplier=3),
}


@pytest.mark.parametrize("name", list(CASES))
def test_int4_kernel_matches_reference(name: str, tmp_path) -> None:
    graph = with_int4_weights(CASES[name]())
    model = generate(graph, TARGETS["cortex-m7"])
    layer = model.layers[0]
    assert layer.kernel.name.endswith("_w4")
    w_t = graph.tensors[graph.ops[0].inputs[1]]
    assert layer.arrays[0].values.nbytes == (w_t.num_elements + 1) // 2
    mismatches = differential_run(graph, tmp_path, qemu=HAVE_ARM, count=3)
    assert all(v == 0 for v in mismatches.values()), mismatches


def int4_and_int8_models() -> tuple[Graph, Graph]:
    """The same small MobileNetV2 (random weights) quantised with int8 and with int4 weights."""
    spec = SPECS["mobilenet-v2"]()
    net = random_net(spec, seed=5)
    calibration = [inputs(spec, 32, seed=2)]
    return (quantize_spec_net(net, calibration, weight_bits=4),
            quantize_spec_net(net, calibration, weight_bits=8))


def test_int4_model_halves_the_weight_bytes() -> None:
    int4, int8 = int4_and_int8_models()
    bytes4 = total_weight_bytes(generate(int4, TARGETS["cortex-m7"]))
    bytes8 = total_weight_bytes(generate(int8, TARGETS["cortex-m7"]))
    w8 = sum(t.nbytes for t in int8.tensors.values()
             if t.constant and t.dtype is DType.INT8 and len(t.shape) == 4)
    print(f"weight_bytes int8 {bytes8}, int4 {bytes4} (4-D int8 weights {w8} B)")
    # The conv weights halve; biases, multipliers, shifts and the int8 classifier do not.
    assert bytes8 - bytes4 >= 0.45 * w8
    assert bytes4 < 0.75 * bytes8


@pytest.mark.slow
@pytest.mark.parametrize("row_ring", [False, True])
def test_int4_in_place_depthwise_matches_reference(row_ring: bool, tmp_path) -> None:
    int4, _ = int4_and_int8_models()
    options = PlanOptions().with_conventions(depthwise_row_buffer=row_ring)
    model = generate(int4, TARGETS["cortex-m7"], options, in_place_depthwise_kernel=True)
    in_place = [layer for layer in model.layers if layer.kernel is not None
                and layer.kernel.template.startswith("depthwise_") and "in place" in layer.note]
    assert in_place  # these kernels have no int4 variant: their weights are stored one per byte
    for layer in in_place:
        w_t = int4.tensors[int4.op(layer.op_name).inputs[1]]
        assert w_t.dtype is DType.INT4 and layer.arrays[0].values.nbytes == w_t.num_elements
    mismatches = differential_run(int4, tmp_path, qemu=False, count=1, plan_options=options,
                                  in_place_depthwise_kernel=True)
    assert mismatches == {"host-asan": 0}


@pytest.mark.slow
def test_int4_model_bit_exact_in_generated_c(tmp_path) -> None:
    int4, int8 = int4_and_int8_models()
    mismatches = differential_run(int4, tmp_path / "int4", qemu=HAVE_ARM, count=2)
    assert all(v == 0 for v in mismatches.values()), mismatches
    if HAVE_ARM:
        flash = {}
        for bits, graph in ((4, int4), (8, int8)):
            report = compile_model(graph, tmp_path / f"m{bits}")
            flash[bits] = (report["rodata_bytes"], report["weight_bytes"])
        print(f"cortex-m7 (rodata, weight) bytes: int8 {flash[8]}, int4 {flash[4]}")
        assert flash[4][0] < 0.75 * flash[8][0]
