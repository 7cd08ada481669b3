"""ONNX import (`mcuforge.frontends.onnx_import`): QDQ models quantised by onnxruntime become int8 IR
graphs that run in the reference runtime close to onnxruntime's own int8 execution and compile to C
equal to the reference; float models become float IR graphs that profile; unsupported ops are
refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,  # noqa: E402
                                      quantize_static)

from mcuforge.analysis.profile import profile_graph  # noqa: E402
from mcuforge.errors import UnsupportedOpError  # noqa: E402
from mcuforge.frontends.load import load_graph  # noqa: E402
from mcuforge.frontends.onnx_import import read_onnx  # noqa: E402
from mcuforge.ir import DType, OpKind  # noqa: E402
from mcuforge.runtime.reference import Interpreter  # noqa: E402

from codegen_support import differential_run  # noqa: E402

SHAPE = (1, 3, 16, 16)


def _init(rng, name, shape, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def convnet(seed: int = 0, softmax: bool = True, clip: bool = False) -> onnx.ModelProto:
    """A small NCHW convnet: conv+relu, a residual block, a depthwise conv, a channel concat, pools,
    flatten and a classifier (Gemm), optionally a softmax."""
    rng = np.random.default_rng(seed)
    act = "Clip" if clip else "Relu"
    six = [numpy_helper.from_array(np.array(0, np.float32), "zero"),
           numpy_helper.from_array(np.array(6, np.float32), "six")]

    def activation(x, y):
        return helper.make_node(act, [x, "zero", "six"] if clip else [x], [y], name=f"{y}_act")

    inits = [_init(rng, "w1", (8, 3, 3, 3)), _init(rng, "b1", (8,), 0.1),
             _init(rng, "w2", (8, 8, 3, 3), 0.15), _init(rng, "b2", (8,), 0.1),
             _init(rng, "w3", (8, 1, 3, 3)), _init(rng, "b3", (8,), 0.1),
             _init(rng, "w4", (8, 8, 1, 1)), _init(rng, "b4", (8,), 0.1),
             _init(rng, "wf", (10, 16), 0.3), _init(rng, "bf", (10,), 0.1),
             numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape")] + (six if clip else [])
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        activation("c1", "r1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["res"], name="residual"),
        activation("res", "r2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], name="dw", group=8, strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        activation("c3", "r3"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="maxpool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p2", "w4", "b4"], ["c4"], name="pw"),
        helper.make_node("Concat", ["r3", "c4"], ["cat"], name="concat", axis=1),
        helper.make_node("AveragePool", ["cat"], ["ap"], name="avgpool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["ap"], ["gap"], name="gap"),
        helper.make_node("Reshape", ["gap", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], name="fc", transB=1),
    ]
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1))
        out = "probs"
    graph = helper.make_graph(nodes, "convnet",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, (1, 10))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class _Reader(CalibrationDataReader):
    def __init__(self, count: int, seed: int):
        rng = np.random.default_rng(seed)
        self.data = iter([{"x": rng.standard_normal(SHAPE).astype(np.float32)} for _ in range(count)])

    def get_next(self):
        return next(self.data, None)


def quantised(tmp_path, model, activation=QuantType.QInt8, per_channel=True, name="q"):
    """``model`` written to tmp_path, quantised by quantize_static (QDQ); the quantised path."""
    float_path, q_path = tmp_path / f"{name}_float.onnx", tmp_path / f"{name}.onnx"
    onnx.save(model, float_path)
    quantize_static(str(float_path), str(q_path), _Reader(16, 5), quant_format=QuantFormat.QDQ,
                    activation_type=activation, weight_type=QuantType.QInt8, per_channel=per_channel)
    return q_path


def compare_with_ort(q_path, count: int = 100, seed: int = 3):
    """(argmax agreement, max |difference|) of our reference runtime against onnxruntime's int8
    execution of the QDQ model, on ``count`` random inputs (ours are NHWC)."""
    graph = read_onnx(q_path)
    interpreter = Interpreter(graph)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(q_path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    agree, worst = 0, 0.0
    for _ in range(count):
        x = rng.standard_normal(SHAPE).astype(np.float32)
        theirs = session.run(None, {"x": x})[0]
        ours = interpreter.invoke([np.ascontiguousarray(x.transpose(0, 2, 3, 1))])[0]
        agree += int(np.argmax(ours) == np.argmax(theirs))
        worst = max(worst, float(np.max(np.abs(ours - theirs))))
    return agree / count, worst
