"""ONNX import (`mcuforge.frontends.onnx_import`): QDQ models quantised by onnxruntime become int8 IR
graphs that run in the reference runtime close to onnxruntime's own int8 execution and compile to C
equal to the reference; float models become float IR graphs that profile; unsupported ops are
refused in one line."""

from __future__ import annotations

import warnings

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

from mcuforge.errors import ModelFileError, McuforgeError  # noqa: E402
from mcuforge.frontends.tflite import read_tflite  # noqa: E402
from mcuforge.frontends.tflite_writer import write_tflite  # noqa: E402

from codegen_support import differential_run  # noqa: E402
from tflm_support import assert_matches_tflm  # noqa: E402

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
    def __init__(self, count: int, seed: int, shape=SHAPE):
        rng = np.random.default_rng(seed)
        self.data = iter([{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(count)])

    def get_next(self):
        return next(self.data, None)


def quantised(tmp_path, model, activation=QuantType.QInt8, per_channel=True, name="q"):
    """``model`` written to tmp_path, quantised by quantize_static (QDQ); the quantised path."""
    float_path, q_path = tmp_path / f"{name}_float.onnx", tmp_path / f"{name}.onnx"
    onnx.save(model, float_path)
    shape = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)
    quantize_static(str(float_path), str(q_path), _Reader(16, 5, shape), quant_format=QuantFormat.QDQ,
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


LAYOUT_SHAPE = (1, 4, 4, 4)


def layout_net(seed: int = 0, bias_add: bool = True) -> onnx.ModelProto:
    """Layouts and broadcast constants: Relu on the input, a 1x1 conv, Mul by a per-channel constant,
    a Flatten of a 4x4 feature map (read in NCHW order), MatMul and Add of a constant bias, and a
    Transpose feeding the second output."""
    rng = np.random.default_rng(seed)
    inits = [_init(rng, "w", (6, 4, 1, 1)), _init(rng, "b", (6,), 0.1),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, (1, 6, 1, 1)).astype(np.float32), "gain"),
             _init(rng, "m", (96, 5), 0.2)] + ([_init(rng, "mb", (5,), 0.1)] if bias_add else [])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu_in"),
        helper.make_node("Conv", ["r", "w", "b"], ["c"], name="conv"),
        helper.make_node("Mul", ["c", "gain"], ["g"], name="gain"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten", axis=1),
        helper.make_node("MatMul", ["f", "m"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "mb"], ["y"], name="bias") if bias_add else
        helper.make_node("Relu", ["mm"], ["y"], name="relu_out"),
        helper.make_node("Transpose", ["g"], ["t"], name="to_nhwc", perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(nodes, "layout",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, LAYOUT_SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 5)),
                               helper.make_tensor_value_info("t", TensorProto.FLOAT, (1, 4, 4, 6))],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# --- QDQ models: int8 IR graphs --------------------------------------------------------------------

@pytest.mark.parametrize("activation, per_channel, clip", [
    (QuantType.QInt8, True, False), (QuantType.QUInt8, True, False), (QuantType.QInt8, False, True)],
    ids=["int8-per-channel", "uint8-per-channel", "int8-per-tensor-clip"])
def test_qdq_convnet_close_to_onnxruntime(tmp_path, activation, per_channel, clip):
    """Residual + depthwise + concat convnet: our int8 run against ORT's on 100 random inputs."""
    q_path = quantised(tmp_path, convnet(0, clip=clip), activation, per_channel)
    graph = read_onnx(q_path)
    assert graph.metadata["quantisation"] == "qdq"
    kinds = [op.kind for op in graph.ops]
    assert kinds[0] is OpKind.QUANTIZE and kinds[-1] is OpKind.DEQUANTIZE
    assert {OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.ADD, OpKind.CONCATENATION,
            OpKind.MAX_POOL_2D, OpKind.AVERAGE_POOL_2D, OpKind.MEAN, OpKind.FULLY_CONNECTED,
            OpKind.SOFTMAX} <= set(kinds)
    for op in graph.ops[1:-1]:
        assert graph.tensors[op.outputs[0]].dtype is DType.INT8, op.name
    conv = graph.op("conv2")
    w = graph.tensors[conv.inputs[1]]
    assert w.shape == (8, 3, 3, 8) and w.dtype is DType.INT8
    assert (w.quant.axis == 0 and len(w.quant.scale) == 8) if per_channel else w.quant.axis is None
    dw = graph.tensors[graph.op("dw").inputs[1]]
    assert dw.shape == (1, 3, 3, 8) and (dw.quant.axis == 3 if per_channel else True)
    agreement, worst = compare_with_ort(q_path, 100)
    print(f"argmax agreement {agreement:.2f}, max |difference| {worst:.4f} (output scale 1/255)")
    assert agreement >= 0.95
    assert worst <= 6 / 255


def test_qdq_layouts_and_constants_close_to_onnxruntime(tmp_path):
    """Relu on the float input, Mul by a per-channel constant, Flatten of a 4x4 map (NCHW order),
    MatMul, Add of a constant and a Transpose: within two output steps of ORT on 100 inputs."""
    q_path = quantised(tmp_path, layout_net())
    graph = read_onnx(q_path)
    kinds = [op.kind for op in graph.ops]
    assert kinds[:2] == [OpKind.QUANTIZE, OpKind.RELU]
    assert OpKind.TRANSPOSE in kinds and OpKind.RESHAPE in kinds and OpKind.MUL in kinds
    assert graph.tensors[graph.outputs[1]].shape == (1, 4, 4, 6)
    session = ort.InferenceSession(str(q_path), providers=["CPUExecutionProvider"])
    interpreter = Interpreter(graph)
    rng = np.random.default_rng(7)
    steps = [graph.tensors[graph.op(o).inputs[0]].quant.scale[0] for o in graph.outputs]
    worst = [0.0, 0.0]
    for _ in range(100):
        x = rng.standard_normal(LAYOUT_SHAPE).astype(np.float32)
        theirs = session.run(None, {"x": x})
        ours = interpreter.invoke([np.ascontiguousarray(x.transpose(0, 2, 3, 1))])
        for k in range(2):
            worst[k] = max(worst[k], float(np.max(np.abs(ours[k] - theirs[k]))) / steps[k])
    print(f"max |difference| in output steps: {worst}")
    assert max(worst) <= 2.0 + 1e-6


@pytest.mark.parametrize("which", ["int8", "uint8", "layouts"])
def test_qdq_graph_is_bit_exact_with_tflite_micro_after_writing(tmp_path, which):
    """The imported int8 graph written as .tflite runs in TFLite Micro bit-exactly like our runtime
    (first output), and reads back with the same ops."""
    model = layout_net(2) if which == "layouts" else convnet(2)
    activation = QuantType.QUInt8 if which == "uint8" else QuantType.QInt8
    graph = read_onnx(quantised(tmp_path, model, activation))
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal(graph.tensors[graph.inputs[0]].shape).astype(np.float32)
        assert_matches_tflm(graph, [x])
    write_tflite(graph, tmp_path / "m.tflite")
    back = read_tflite(tmp_path / "m.tflite")
    assert [op.kind for op in back.ops] == [op.kind for op in graph.ops]


@pytest.mark.parametrize("which", ["convnet", "layouts"])
def test_qdq_generated_c_equals_reference(tmp_path, which):
    """The imported int8 graph compiles to C (host, ASan + UBSan) equal to the reference runtime."""
    model = convnet(3) if which == "convnet" else layout_net(1, bias_add=False)
    graph = load_graph(str(quantised(tmp_path, model)))
    assert differential_run(graph, tmp_path, qemu=False, target="host") == {"host-asan": 0}


# --- float models ----------------------------------------------------------------------------------

def test_float_model_becomes_float_graph_that_profiles(tmp_path):
    """A float ONNX model is a float32 IR graph with weights in IR layouts, and profile runs on it
    (int8 comes from post-training quantisation, tests/test_onnx_ptq.py); a symbolic batch
    dimension is taken as 1."""
    path = tmp_path / "float.onnx"
    onnx.save(convnet(0), path)
    graph = load_graph(str(path))
    assert graph.metadata["quantisation"] == "float"
    assert all(t.dtype is DType.FLOAT32 for t in graph.tensors.values())
    assert graph.tensors[graph.inputs[0]].shape == (1, 16, 16, 3)
    assert graph.tensors[graph.op("conv2").inputs[1]].shape == (8, 3, 3, 8)
    assert graph.tensors[graph.op("dw").inputs[1]].shape == (1, 3, 3, 8)
    assert graph.op("dw").kind is OpKind.DEPTHWISE_CONV_2D
    report = profile_graph(graph)
    expected = 16 * 16 * 8 * 27 + 16 * 16 * 8 * 72 + 8 * 8 * 8 * 9 + 8 * 8 * 8 * 8 + 16 * 10
    assert report.macs == expected
    assert report.params == sum(t.num_elements for t in graph.tensors.values() if t.constant)
    assert graph.blocks
    model = convnet(0)
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.save(model, path)
    dynamic = load_graph(str(path))
    assert dynamic.tensors[dynamic.inputs[0]].shape == (1, 16, 16, 3)
    assert profile_graph(dynamic).macs == expected


# --- refusals --------------------------------------------------------------------------------------

def _one_node_model(node, in_shape=(1, 4, 8, 8), out_shape=(1, 4, 8, 8), inits=()):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="first"), node], "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, out_shape)], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_unsupported_op_is_refused_in_one_line(tmp_path):
    """An op with no converter: one line naming op type, node index and name."""
    path = tmp_path / "bad.onnx"
    onnx.save(_one_node_model(helper.make_node("Sigmoid", ["r"], ["y"], name="gate")), path)
    with pytest.raises(UnsupportedOpError) as info:
        load_graph(str(path))
    assert str(info.value) == "unsupported ONNX op Sigmoid at node #1 (gate)"


def test_unsupported_options_are_refused_in_one_line(tmp_path):
    """A grouped (not depthwise) convolution and a Clip to other bounds."""
    rng = np.random.default_rng(0)
    grouped = helper.make_node("Conv", ["r", "w"], ["y"], name="grouped", group=2, pads=[1, 1, 1, 1])
    path = tmp_path / "grouped.onnx"
    onnx.save(_one_node_model(grouped, inits=[_init(rng, "w", (4, 2, 3, 3))]), path)
    with pytest.raises(UnsupportedOpError, match=r"^unsupported ONNX Conv with group 2 .* at node #1 "
                                                 r"\(grouped\)$"):
        read_onnx(path)
    clip = helper.make_node("Clip", ["r", "lo", "hi"], ["y"], name="clip")
    inits = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("lo", -1), ("hi", 1))]
    onnx.save(_one_node_model(clip, inits=inits), path)
    with pytest.raises(UnsupportedOpError, match=r"^unsupported ONNX Clip with bounds \(-1, 1\)"):
        read_onnx(path)


def test_bad_files(tmp_path):
    """Not an ONNX file, a missing file, and --resolution on an .onnx model."""
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\x01 not a protobuf at all")
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        load_graph(str(path))
    with pytest.raises(ModelFileError, match="no such file"):
        load_graph(str(tmp_path / "missing.onnx"))
    onnx.save(convnet(0), path)
    with pytest.raises(McuforgeError, match="do not apply to an .onnx model"):
        load_graph(str(path), resolution=32)


# --- a model exported by torch.onnx.export ---------------------------------------------------------

def _torch_model_path(tmp_path):
    """A small PyTorch module (conv + BN, a residual, a channel concat, max pool, linear) exported
    with the TorchScript exporter (which folds BN into the convs); skipped where it is unavailable."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
            self.side = nn.Conv2d(8, 4, 1)
            self.fc = nn.Linear(12, 10)

        def forward(self, x):
            y = self.stem(x)
            y = torch.relu(self.body(y) + y)
            y = torch.cat([nn.functional.max_pool2d(y, 2), nn.functional.max_pool2d(self.side(y), 2)], 1)
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():  # BN statistics that are not the identity
        for bn in (net.stem[1], net.body[1]):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "torch_float.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.randn(*SHAPE),), str(path), dynamo=False,
                              opset_version=13, input_names=["x"], output_names=["logits"])
    except Exception as exc:  # the exporter's optional dependencies may be missing
        pytest.skip(f"torch.onnx.export unavailable: {type(exc).__name__}")
    return path


def test_torch_exported_model(tmp_path):
    """torch.onnx.export -> quantize_static -> import: close to ORT on 100 inputs, C equal to the
    reference; the float export imports as a float graph with the same MACs."""
    path = _torch_model_path(tmp_path)
    model = onnx.load(path)
    q_path = quantised(tmp_path, model, name="torch_q")
    agreement, worst = compare_with_ort(q_path, 100)
    print(f"torch export: argmax agreement {agreement:.2f}, max |difference| {worst:.4f}")
    assert agreement >= 0.9
    graph = read_onnx(q_path)
    out_scale = graph.tensors[graph.op(graph.outputs[0]).inputs[0]].quant.scale[0]
    assert worst <= 4 * out_scale
    float_graph = read_onnx(path)
    assert profile_graph(float_graph).macs == profile_graph(graph).macs
    assert differential_run(graph, tmp_path, qemu=False, target="host") == {"host-asan": 0}
