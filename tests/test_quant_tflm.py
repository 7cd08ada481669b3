"""A PTQ graph written with `write_tflite` runs in TFLite Micro with outputs bit-identical to the
reference runtime's, for every block kind the export produces."""

from __future__ import annotations

import numpy as np
import pytest

from mcuforge.frontends.tflite_writer import serialize_tflite
from mcuforge.ir import DType, OpKind
from mcuforge.quant.inference import int8_logits, quantize_input
from mcuforge.quant.ptq import quantize_spec_net
from test_quant_ptq import SPECS, inputs, random_net

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")


def tflm_outputs(model: bytes, images: np.ndarray) -> np.ndarray:
    """Run int8 NHWC images one at a time through the TFLite Micro interpreter."""
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=8 * 1024 * 1024)
    outputs = []
    for image in images:
        interpreter.set_input(image[None], 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0)))
    return np.concatenate(outputs, axis=0)


@pytest.mark.parametrize("fc_per_channel", [True, False])
@pytest.mark.parametrize("name", list(SPECS))
def test_tflm_matches_reference_runtime(name: str, fc_per_channel: bool) -> None:
    spec = SPECS[name]()
    model = random_net(spec, seed=11)
    graph = quantize_spec_net(model, [inputs(spec, 32, seed=2)], fc_per_channel=fc_per_channel)
    images = quantize_input(graph, inputs(spec, 12, seed=4))
    expected = int8_logits(graph, images, batch_size=12)
    actual = tflm_outputs(serialize_tflite(graph), images)
    assert actual.dtype == np.int8
    np.testing.assert_array_equal(actual, expected)
    assert len(np.unique(expected)) > 5  # the outputs carry information, not a saturated constant


def test_int4_weights_run_in_tflm_like_the_reference_runtime() -> None:
    spec = SPECS["mobilenet-v2"]()
    graph = quantize_spec_net(random_net(spec, seed=12), [inputs(spec, 32, seed=2)], weight_bits=4)
    int4 = [t for t in graph.tensors.values() if t.dtype is DType.INT4]
    assert len(int4) == sum(op.kind in (OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D) for op in graph.ops)
    images = quantize_input(graph, inputs(spec, 8, seed=4))
    expected = int8_logits(graph, images, batch_size=8)
    np.testing.assert_array_equal(tflm_outputs(serialize_tflite(graph), images), expected)
