"""Folding SPACE_TO_BATCH_ND -> CONV_2D / DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND (TensorFlow's
dilated convolution) into one dilated conv at import: the folded graph computes exactly what the
unfolded one does in the reference runtime, and what TFLite Micro computes on the folded file; on
the original file too where no padding is read (TFLite Micro's SPACE_TO_BATCH_ND padding is
indeterminate); the folded conv's generated C equals the reference."""

from __future__ import annotations

import numpy as np
import pytest

from codegen_support import HAVE_ARM, Int8Builder, differential_run, q
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import serialize_tflite
from mcuforge.ir import ConvAttrs, DType, Graph, OpKind, Pads
from mcuforge.ops.space_batch import SpaceBatchAttrs
from mcuforge.runtime.reference import Interpreter

NO_MISMATCH = {"host-asan": 0, **({"qemu": 0} if HAVE_ARM else {})}


def tf_paddings(size: int, kernel: int, rate: int, same: bool) -> tuple[tuple[int, int], ...]:
    """TensorFlow's (paddings, crops) of one axis (``required_space_to_batch_paddings``)."""
    total = (kernel - 1) * rate if same else 0
    start, end = total // 2, total - total // 2
    extra = (rate - (size + start + end) % rate) % rate
    return (start, end + extra), (0, extra)


def dilated_chain(shape, kernel, rate, same, kind=OpKind.CONV_2D, out_c=6, x_zp=0, seed=0) -> Graph:
    """x -> SPACE_TO_BATCH_ND -> conv (VALID, stride 1) -> BATCH_TO_SPACE_ND -> y, as converters
    write a conv with dilation ``rate``."""
    n, h, w, c = shape
    (ph, ch), (pw, cw) = (tf_paddings(h, kernel[0], rate[0], same),
                          tf_paddings(w, kernel[1], rate[1], same))
    b = Int8Builder("dilated", seed)
    x = b.x(shape, 0.05, x_zp)
    s = b.op(OpKind.SPACE_TO_BATCH_ND, [x], SpaceBatchAttrs(rate, (ph, pw)), quant=q(0.05, x_zp))
    if kind is OpKind.CONV_2D:
        wt, channels = b.weights((out_c, *kernel, c), 0, out_c), out_c
    else:
        wt, channels = b.weights((1, *kernel, c), 3, c), c
    conv = b.op(kind, [s, wt, b.bias(channels)], ConvAttrs(clamp=(0.0, 6.0)), dtype=DType.INT8,
                quant=q(0.04, -20))
    y = b.op(OpKind.BATCH_TO_SPACE_ND, [conv], SpaceBatchAttrs(rate, (ch, cw)), quant=q(0.04, -20))
    return b.finish([y])


def _tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=4 * 1024 * 1024)
    interpreter.set_input(x, 0)
    interpreter.invoke()
    return interpreter.get_output(0).copy()


def _read(graph: Graph, tmp_path) -> tuple[bytes, Graph]:
    model = serialize_tflite(graph)
    path = tmp_path / "dilated.tflite"
    path.write_bytes(model)
    return model, read_tflite(path)


@pytest.mark.parametrize("shape, kernel, rate, same, kind, x_zp", [
    ((1, 9, 9, 3), (3, 3), (2, 2), True, OpKind.CONV_2D, 0),
    ((1, 10, 7, 3), (3, 3), (2, 2), True, OpKind.CONV_2D, 7),   # odd width: extra pad, crop
    ((1, 12, 12, 4), (3, 3), (4, 4), True, OpKind.DEPTHWISE_CONV_2D, -128),
    ((2, 11, 9, 2), (3, 2), (3, 2), False, OpKind.CONV_2D, 3),  # VALID, padded to the block
    ((1, 8, 9, 4), (3, 3), (2, 2), False, OpKind.DEPTHWISE_CONV_2D, 0),
])
def test_folded_conv_computes_what_the_chain_does(shape, kernel, rate, same, kind, x_zp, tmp_path):
    original = dilated_chain(shape, kernel, rate, same, kind, x_zp=x_zp, seed=sum(shape))
    _, read = _read(original, tmp_path)
    assert [op.kind for op in read.ops] == [kind]
    attrs = read.ops[0].attrs
    assert attrs.dilation == rate and attrs.stride == (1, 1)
    if same:
        assert attrs.pads == Pads.same(shape[1], shape[2], kernel, (1, 1), rate)
    folded_model = serialize_tflite(read)
    rng = np.random.default_rng(sum(shape))
    for x in (rng.integers(-128, 128, size=shape, dtype=np.int8), np.full(shape, 127, np.int8)):
        ours = Interpreter(read).invoke([x])[0]
        assert np.array_equal(ours, Interpreter(original).invoke([x])[0])
        assert np.array_equal(ours, _tflm(folded_model, x))


def test_folded_conv_matches_tflite_micro_on_the_original_file(tmp_path):
    """VALID with sizes the block divides: TFLite Micro reads no padding, so the original file
    is deterministic there and the folded conv gives its bytes."""
    model, read = _read(dilated_chain((1, 8, 8, 3), (3, 3), (2, 2), False, x_zp=7), tmp_path)
    assert [op.kind for op in read.ops] == [OpKind.CONV_2D]
    x = np.random.default_rng(5).integers(-128, 128, size=(1, 8, 8, 3), dtype=np.int8)
    assert np.array_equal(Interpreter(read).invoke([x])[0], _tflm(model, x))


def test_unfolded_read_keeps_the_chain(tmp_path):
    path = tmp_path / "dilated.tflite"
    path.write_bytes(serialize_tflite(dilated_chain((1, 9, 9, 3), (3, 3), (2, 2), True)))
    assert len(read_tflite(path, fold_pad_ops=False).ops) == 3


def test_generated_c_of_the_folded_conv_equals_the_reference(tmp_path):
    _, read = _read(dilated_chain((1, 10, 7, 3), (3, 3), (2, 2), True), tmp_path)
    assert len(read.ops) == 1
    assert differential_run(read, tmp_path, qemu=HAVE_ARM) == NO_MISMATCH
