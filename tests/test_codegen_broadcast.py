"""Broadcasting ADD, SUB and MUL, int8 and int16 (16x8), in the reference runtime and the generated
C: every broadcast the runtime does (a per-channel operand, a per-row one, a scalar, both operands
broadcast, lower ranks, ranks 5 and 6, constant operands) is bit-exact with TFLite Micro in the runtime and equals
it in the C: int8 as whole generated projects (host, ASan + UBSan), int16 as the kernel alone on the
whole int16 range and as a project behind int8 edges."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from int16_support import NO_CLAMP, RELU, Builder16, q16
from kernel_support import run_layer_on_host
from tflm_support import assert_matches_tflm
from mcuforge.codegen.targets import TARGETS
from mcuforge.ir import DType, ElementwiseAttrs, Graph, OpKind, QuantParams
from mcuforge.ops import op_def
from mcuforge.runtime.reference import Interpreter

SHAPES = {
    # name: (shape of input 1, shape of input 2)
    "per_channel": ((1, 4, 4, 8), (1, 1, 1, 8)),
    "per_row": ((1, 4, 4, 8), (1, 4, 1, 1)),
    "scalar": ((1, 4, 4, 8), (1,)),
    "first_broadcast": ((1, 1, 4, 1), (1, 3, 4, 5)),
    "both_broadcast": ((2, 1, 3, 1), (1, 4, 1, 5)),
    "lower_rank": ((3, 5, 6), (6,)),
    "rank_5": ((1, 2, 3, 4, 5), (1, 1, 1, 1, 5)),
    "rank_6_unmergeable": ((2, 1, 3, 4, 1, 2), (2, 3, 1, 4, 5, 1)),
    "same_shape": ((2, 7), (2, 7)),
}
KINDS = [OpKind.ADD, OpKind.SUB, OpKind.MUL]
# int8 (scale, zero point) of input 1, input 2 and, per kind, the output
Q8 = ((0.05, -3), (0.03, 7), {OpKind.ADD: (0.06, 2), OpKind.SUB: (0.06, -5), OpKind.MUL: (0.09, 1)})
# int16 scales of input 1, input 2 and, per kind, the output
Q16 = (0.001, 0.0007, {OpKind.ADD: 0.0015, OpKind.SUB: 0.0012, OpKind.MUL: 0.01})


def int8_graph(kind: OpKind, cases: dict[str, tuple], constant_b: bool = False,
               clamp=NO_CLAMP) -> Graph:
    """Per case (name -> shapes): a, b (int8; b a random constant when ``constant_b``) -> kind -> y
    (int8), each its own inputs and output."""
    b = Int8Builder("bcast8", seed=3)
    outputs = []
    for name, (shape_a, shape_b) in cases.items():
        a = b.input(f"a_{name}", tuple(shape_a), DType.INT8, q(*Q8[0]))
        if constant_b:
            data = b.rng.integers(-128, 128, size=shape_b, dtype=np.int8)
            second = b.constant(f"c_{name}", tuple(shape_b), DType.INT8, data, q(*Q8[1]))
        else:
            second = b.input(f"b_{name}", tuple(shape_b), DType.INT8, q(*Q8[1]))
        outputs.append(b.op(kind, [a, second], ElementwiseAttrs(clamp), dtype=DType.INT8,
                            quant=q(*Q8[2][kind])))
    return b.finish(outputs)


def int16_graph(kind: OpKind, cases: dict[str, tuple], constant_b: bool = False, clamp=NO_CLAMP,
                edges: bool = False) -> Graph:
    """Per case (name -> shapes): a, b (int16; b a random constant when ``constant_b``) -> kind ->
    y (int16); with ``edges`` the inputs are int8 quantised to int16 and each y is quantised to
    int8 twice (its top and its low bits)."""
    b = Builder16("bcast16", seed=3)

    def operand(name: str, shape, scale: float) -> str:
        if not edges:
            return b.input(name, tuple(shape), DType.INT16, q16(scale))
        x = b.input(name, tuple(shape), DType.INT8, QuantParams.per_tensor(scale * 200, -3))
        return b.op(OpKind.QUANTIZE, [x], dtype=DType.INT16, quant=q16(scale))
    outputs = []
    for name, (shape_a, shape_b) in cases.items():
        a = operand(f"a_{name}", shape_a, Q16[0])
        if constant_b:
            data = b.rng.integers(-32768, 32768, size=shape_b).astype(np.int16)
            second = b.constant(f"c_{name}", tuple(shape_b), DType.INT16, data, q16(Q16[1]))
        else:
            second = operand(f"b_{name}", shape_b, Q16[1])
        y = b.op(kind, [a, second], ElementwiseAttrs(clamp), quant=q16(Q16[2][kind]))
        if not edges:
            outputs.append(y)
            continue
        outputs += [b.op(OpKind.QUANTIZE, [y], dtype=DType.INT8,
                         quant=QuantParams.per_tensor(Q16[2][kind] * ratio, 5))
                    for ratio in (256, 1)]
    return b.finish(outputs)


def random_int8(graph: Graph, seed: int) -> list[np.ndarray]:
    """Random int8 values for every graph input."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, graph.tensors[n].shape, dtype=np.int8) for n in graph.inputs]


def random_int16(graph: Graph, seed: int) -> list[np.ndarray]:
    """Random int16 values over the whole range for every graph input."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-32768, 32768, graph.tensors[n].shape).astype(np.int16)
            for n in graph.inputs]


# --- int8 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shapes", sorted(SHAPES))
def test_int8_broadcast_matches_tflm(kind, shapes):
    graph = int8_graph(kind, {shapes: SHAPES[shapes]})
    assert_matches_tflm(graph, random_int8(graph, 1))


@pytest.mark.parametrize("kind", KINDS)
def test_int8_broadcast_generated_c_equals_reference(kind, tmp_path):
    """One project with every broadcast case (host, ASan + UBSan)."""
    graph = int8_graph(kind, SHAPES)
    assert differential_run(graph, tmp_path, qemu=False, target="host") == {"host-asan": 0}


@pytest.mark.parametrize("kind", KINDS)
def test_int8_broadcast_constant_operand(kind, tmp_path):
    """A per-channel constant (a const array of model.c, no table: it holds several values), with a
    fused ReLU."""
    graph = int8_graph(kind, {"c": SHAPES["per_channel"]}, constant_b=True, clamp=RELU)
    assert differential_run(graph, tmp_path, qemu=False, target="host") == {"host-asan": 0}
    assert_matches_tflm(graph, random_int8(graph, 2))


# --- int16 ---------------------------------------------------------------------------------------

INT16_KINDS = KINDS


def kernel_equals_reference(graph: Graph, inputs: list[np.ndarray], tmp_path) -> bool:
    """The C kernel of the graph's one op, alone on the host, gives every bit of the reference
    runtime's output."""
    op = graph.ops[0]
    layer = op_def(op.kind).lower(graph, 0, op, TARGETS["host"], False)
    want = Interpreter(graph).invoke(inputs)[0]
    return np.array_equal(run_layer_on_host(layer, inputs, np.int16, want.size, tmp_path),
                          want.reshape(-1))


@pytest.mark.parametrize("kind", INT16_KINDS)
@pytest.mark.parametrize("shapes", sorted(SHAPES))
def test_int16_broadcast_kernel_equals_reference_and_tflm(kind, shapes, tmp_path):
    """On random values over the whole int16 range."""
    graph = int16_graph(kind, {shapes: SHAPES[shapes]})
    inputs = random_int16(graph, 1)
    assert kernel_equals_reference(graph, inputs, tmp_path)
    assert_matches_tflm(graph, inputs)


@pytest.mark.parametrize("kind", INT16_KINDS)
def test_int16_broadcast_constant_operand(kind, tmp_path):
    """A per-channel int16 constant (an int16 const array) with a fused ReLU."""
    graph = int16_graph(kind, {"c": SHAPES["per_channel"]}, constant_b=True, clamp=RELU)
    inputs = random_int16(graph, 2)
    assert kernel_equals_reference(graph, inputs, tmp_path)
    assert_matches_tflm(graph, inputs)


@pytest.mark.parametrize("kind", INT16_KINDS)
def test_int16_broadcast_project_equals_reference(kind, tmp_path):
    """One project (arena, int8 edges) with every broadcast case: the top and the low bits."""
    graph = int16_graph(kind, SHAPES, edges=True)
    assert differential_run(graph, tmp_path, qemu=False, target="host") == {"host-asan": 0}


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_broadcast_add_cortex_m7_build_equals_reference(dtype, tmp_path):
    cases = {name: SHAPES[name] for name in ("per_row", "scalar", "both_broadcast")}
    graph = (int8_graph(OpKind.ADD, cases) if dtype == "int8"
             else int16_graph(OpKind.ADD, cases, edges=True))
    runs = differential_run(graph, tmp_path, qemu=True, count=2, target="cortex-m7")
    assert runs == {"host-asan": 0, "qemu": 0}
