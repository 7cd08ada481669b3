"""Float-I/O edge conversions, unsupported ops, and the Thumb-2 instruction decoder of the counter."""

from __future__ import annotations

import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from mcuforge.codegen.edges import strip_edge_conversions
from mcuforge.codegen.emit import generate
from mcuforge.codegen.targets import TARGETS
from mcuforge.codegen.unicorn_count import _thumb_instructions
from mcuforge.errors import UnsupportedOpError
from mcuforge.ir import RELU, ConvAttrs, DType, ElementwiseAttrs, NoAttrs, OpKind, Pads


def float_io_graph():
    b = Int8Builder("float_io", 11)
    x = b.input("x", (1, 5, 5, 2), DType.FLOAT32)
    xq = b.op(OpKind.QUANTIZE, [x], NoAttrs(), dtype=DType.INT8, quant=q(0.02, 4))
    w = b.weights((3, 3, 3, 2), 0, 3)
    bias = b.bias(3)
    y = b.op(OpKind.CONV_2D, [xq, w, bias], ConvAttrs((1, 1), Pads(1, 1, 1, 1), (1, 1), RELU),
             dtype=DType.INT8, quant=q(0.05, -128))
    out = b.op(OpKind.DEQUANTIZE, [y], NoAttrs(), dtype=DType.FLOAT32)
    return b.finish([out])


def test_edge_conversions_are_stripped():
    graph = float_io_graph()
    edges = strip_edge_conversions(graph)
    assert [op.kind for op in edges.graph.ops] == [OpKind.CONV_2D]
    assert edges.float_inputs == ("x",) and len(edges.float_outputs) == 1
    assert all(edges.graph.tensors[n].dtype is DType.INT8
               for n in (*edges.graph.inputs, *edges.graph.outputs))
    model = generate(graph, TARGETS["host"])
    assert "caller quantises the input" in model.files["model.h"]


def test_float_io_model_runs_bit_exact(tmp_path):
    mismatches = differential_run(float_io_graph(), tmp_path, qemu=False)
    assert mismatches == {"host-asan": 0}


def test_unsupported_op_names_the_operator():
    """A rank-7 broadcast whose dimensions alternate (no merging brings it to TFLite's 6)."""
    b = Int8Builder("add", 12)
    x = b.x((2, 1, 2, 1, 2, 1, 2))
    x2 = b.input("x2", (1, 2, 1, 2, 1, 2, 1), DType.INT8, q(0.1, 0))
    y = b.op(OpKind.ADD, [x, x2], ElementwiseAttrs(), dtype=DType.INT8, quant=q(0.1, 0))
    with pytest.raises(UnsupportedOpError, match=r"ADD at operator #0.*more than 6 dimensions"):
        generate(b.finish([y]), TARGETS["host"])


def test_thumb_instruction_widths():
    # movs r0, #1 (16-bit); ldr.w r1, [r2] (32-bit, 0xf8d2 0x1000); bx lr (16-bit)
    code = bytes.fromhex("0120") + bytes.fromhex("d2f80010") + bytes.fromhex("7047")
    assert _thumb_instructions(code) == 3
    # smlad r0, r1, r2, r3 is 32-bit (0xfb21 0x3002)
    assert _thumb_instructions(bytes.fromhex("21fb0230")) == 1


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_float_io_model_on_cortex_m7(tmp_path):
    mismatches = differential_run(float_io_graph(), tmp_path, qemu=True)
    assert mismatches == {"host-asan": 0, "qemu": 0}
