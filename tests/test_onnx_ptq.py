"""Float ONNX -> int8 (`mcuforge.quant.onnx_ptq`, `mcuforge import MODEL.onnx`): a float ONNX
convnet built here is quantised on NCHW calibration data into an int8 .tflite that runs bit-exactly
like TFLite Micro, compiles to C equal to the reference runtime, and agrees with onnxruntime's float
execution; a QDQ model is written without calibration; data in the wrong layout and models the
pipeline cannot take are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import one_error_line, write_image_folder

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import mcuforge  # noqa: E402
from mcuforge.cli import main  # noqa: E402
from mcuforge.errors import McuforgeError  # noqa: E402
from mcuforge.frontends.onnx_import import read_onnx  # noqa: E402
from mcuforge.frontends.tflite import read_tflite  # noqa: E402
from mcuforge.frontends.tflite_writer import write_tflite  # noqa: E402
from mcuforge.ir import DType, OpKind  # noqa: E402
from mcuforge.quant.float_eval import evaluate_float  # noqa: E402
from mcuforge.quant.graph_ptq import (dequantize_output, quantize_float_graph,  # noqa: E402
                                      quantize_input)
from mcuforge.quant.onnx_ptq import from_onnx, onnx_calibration_inputs  # noqa: E402
from mcuforge.runtime.reference import Interpreter  # noqa: E402

from codegen_support import differential_run  # noqa: E402
from tflm_support import assert_matches_tflm  # noqa: E402

SHAPE = (1, 3, 16, 16)


def _init(rng, name, shape, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _model(nodes, inputs, output, out_shape, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "net", inputs,
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def convnet(seed: int = 0, softmax: bool = False, max_pads=(0, 0, 1, 1)) -> onnx.ModelProto:
    """A float NCHW convnet: conv + relu, a padded max pool, a residual block with Clip(0, 6), a
    depthwise conv, Mul by a per-channel constant, a padded (SAME) average pool, a channel concat
    with a 1x1 conv, global average pool, flatten and a Gemm classifier (optionally a softmax)."""
    rng = np.random.default_rng(seed)
    inits = [_init(rng, "w1", (8, 3, 3, 3)), _init(rng, "b1", (8,), 0.1),
             _init(rng, "w2", (8, 8, 3, 3), 0.15), _init(rng, "b2", (8,), 0.1),
             _init(rng, "w3", (8, 1, 3, 3)), _init(rng, "b3", (8,), 0.1),
             _init(rng, "w4", (4, 8, 1, 1)), _init(rng, "b4", (4,), 0.1),
             _init(rng, "wf", (10, 12), 0.5), _init(rng, "bf", (10,), 0.1),
             numpy_helper.from_array((0.5 + rng.random((1, 8, 1, 1))).astype(np.float32), "gain"),
             numpy_helper.from_array(np.array(0, np.float32), "zero"),
             numpy_helper.from_array(np.array(6, np.float32), "six"),
             numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape")]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="maxpool", kernel_shape=[3, 3],
                         strides=[2, 2], pads=list(max_pads)),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "p1"], ["res"], name="residual"),
        helper.make_node("Clip", ["res", "zero", "six"], ["r2"], name="relu6"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], name="dw", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c3", "gain"], ["m3"], name="gain"),
        helper.make_node("AveragePool", ["m3"], ["ap"], name="avgpool", kernel_shape=[3, 3],
                         auto_pad="SAME_UPPER"),
        helper.make_node("Conv", ["r2", "w4", "b4"], ["c4"], name="pw"),
        helper.make_node("Concat", ["ap", "c4"], ["cat"], name="concat", axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
        helper.make_node("Reshape", ["gap", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], name="fc", transB=1),
    ]
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1))
        out = "probs"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)
    return _model(nodes, [x], out, (1, 10), inits)


def _data(count: int, seed: int) -> np.ndarray:
    """Calibration-like inputs in the ONNX layout (NCHW)."""
    return np.random.default_rng(seed).standard_normal((count, *SHAPE[1:])).astype(np.float32)


def _ort_float(path, data: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"x": x[None]})[0] for x in data])


def _saved(tmp_path, model, name="float"):
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("softmax", [False, True])
def test_import_command_bit_exact_with_tflm_c_and_close_to_onnxruntime(tmp_path, capsys, softmax):
    """`mcuforge import float.onnx --calibration nchw.npy`: the .tflite matches TFLite Micro, its C
    equals the reference runtime, and its outputs agree with onnxruntime's float execution."""
    path = _saved(tmp_path, convnet(1, softmax))
    npy, out = tmp_path / "calib.npy", tmp_path / "model.tflite"
    np.save(npy, _data(64, 0))
    assert main(["import", str(path), "-o", str(out), "--calibration", str(npy)]) == 0
    text = capsys.readouterr().out
    assert "calibrated on 64 samples" in text
    assert "argmax agreement" in text and "max abs diff" in text
    written = read_tflite(out)
    kinds = {op.kind for op in written.ops}
    assert {OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.MAX_POOL_2D, OpKind.AVERAGE_POOL_2D,
            OpKind.ADD, OpKind.MUL, OpKind.CONCATENATION, OpKind.FULLY_CONNECTED} <= kinds
    assert not any(t.dtype is DType.FLOAT32 for t in written.tensors.values())
    held_out = _data(200, 7)
    inputs = onnx_calibration_inputs(written, held_out)
    for x in inputs[:4]:
        assert_matches_tflm(written, [quantize_input(written, x)])
    assert_matches_tflm(written, [np.full(written.tensor(written.inputs[0]).shape, -128, np.int8)])
    # Float IR (the calibration's evaluation, padded pools included) equals onnxruntime's float run.
    theirs = _ort_float(path, held_out)
    float_graph = read_onnx(path)
    ours_float = np.concatenate([evaluate_float(float_graph, [x])[0] for x in inputs])
    assert np.max(np.abs(ours_float - theirs)) < 1e-4
    interpreter = Interpreter(written)
    int8 = np.concatenate([dequantize_output(written, interpreter.invoke(
        [quantize_input(written, x)])[0]).reshape(1, -1) for x in inputs])
    agreement = float(np.mean(np.argmax(int8, 1) == np.argmax(theirs, 1)))
    worst = float(np.max(np.abs(int8 - theirs)))
    with capsys.disabled():
        print(f"\nfloat ONNX (softmax={softmax}) vs int8 .tflite on 200 held-out inputs: argmax "
              f"agreement {agreement:.1%}, max abs diff {worst:.4g} "
              f"(float range {np.ptp(theirs):.4g})")
    assert agreement >= 0.9
    assert worst < 0.1 * np.ptp(theirs)
    assert differential_run(written, tmp_path, qemu=False, target="host") == {"host-asan": 0}


def test_from_onnx_is_the_api_and_round_trips_through_tflite(tmp_path):
    """`mcuforge.from_onnx`: the float graph without calibration, the int8 graph of `graph_ptq`
    with it; the int8 graph writes to .tflite and reads back running identically."""
    assert mcuforge.from_onnx is from_onnx
    path = _saved(tmp_path, convnet(2))
    float_graph = from_onnx(path)
    assert float_graph.metadata["quantisation"] == "float"
    assert float_graph.tensor(float_graph.inputs[0]).shape == (1, 16, 16, 3)
    data = _data(16, 1)
    int8 = from_onnx(path, data)
    nhwc = [np.ascontiguousarray(x[None].transpose(0, 2, 3, 1)) for x in data]
    expected = quantize_float_graph(float_graph, nhwc)
    assert int8.ops == expected.ops
    assert int8.tensor(int8.inputs[0]).quant == expected.tensor(expected.inputs[0]).quant
    assert from_onnx(path, list(data[:8])).ops  # an iterable of NCHW samples too
    write_tflite(int8, tmp_path / "m.tflite")
    back = read_tflite(tmp_path / "m.tflite")
    assert [op.kind for op in back.ops] == [op.kind for op in int8.ops]
    for x in onnx_calibration_inputs(int8, data[:3]):
        codes = quantize_input(int8, x)
        assert np.array_equal(Interpreter(back).invoke([codes])[0],
                              Interpreter(int8).invoke([codes])[0])


def test_nhwc_calibration_data_is_refused_in_one_line(tmp_path, capsys):
    """Calibration data must be in the ONNX model's layout (NCHW); NHWC data is refused."""
    path = _saved(tmp_path, convnet(0))
    nhwc = _data(8, 0).transpose(0, 2, 3, 1)
    with pytest.raises(McuforgeError, match=r"\[8, 16, 16, 3\] .*\[N, 3, 16, 16\].*NCHW"):
        from_onnx(path, nhwc)
    npy = tmp_path / "nhwc.npy"
    np.save(npy, nhwc)
    out = str(tmp_path / "m.tflite")
    assert main(["import", str(path), "-o", out, "--calibration", str(npy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NCHW" in err
    assert main(["import", str(path), "-o", str(tmp_path / "m.tflite")]) == 2
    assert "--calibration" in capsys.readouterr().err
    assert main(["compile", str(path), "-o", str(tmp_path / "c"), "--no-measure"]) == 2
    err = capsys.readouterr().err
    assert "float model" in err and "--calibration" in err and "--dataset" in err
    assert err.count("\n") == 1


def test_qdq_model_is_written_without_calibration(tmp_path, capsys):
    """A QDQ model (quantize_static) is already int8: `mcuforge import` writes it as read."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.data = iter([{"x": x[None]} for x in _data(16, 5)])

        def get_next(self):
            return next(self.data, None)

    float_path, q_path = _saved(tmp_path, convnet(3)), tmp_path / "q.onnx"
    quantize_static(str(float_path), str(q_path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
    out = tmp_path / "q.tflite"
    assert main(["import", str(q_path), "-o", str(out)]) == 0
    assert "as quantised in the QDQ model" in capsys.readouterr().out
    written = read_tflite(out)
    assert [op.kind for op in written.ops] == [op.kind for op in from_onnx(q_path).ops]
    for x in onnx_calibration_inputs(written, _data(2, 9)):
        assert_matches_tflm(written, [x])
    np.save(tmp_path / "c.npy", _data(4, 0))
    assert main(["import", str(q_path), "-o", str(out), "--calibration",
                 str(tmp_path / "c.npy")]) == 0
    assert "not used" in capsys.readouterr().out


def test_models_the_pipeline_cannot_take_are_refused_in_one_line(tmp_path, capsys):
    """An ONNX op with no converter, a model with two inputs (post-training quantisation takes
    one), and a max pool padded other than SAME/VALID (TFLite's pools have no explicit pads)."""
    npy = tmp_path / "calib.npy"
    np.save(npy, _data(4, 0))
    out = str(tmp_path / "m.tflite")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)
    sigmoid = _model([helper.make_node("Sigmoid", ["x"], ["y"], name="gate")], [x], "y", SHAPE, [])
    assert main(["import", str(_saved(tmp_path, sigmoid, "sigmoid")), "-o", out, "--calibration",
                 str(npy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unsupported ONNX op Sigmoid at node #0 (gate)" in err
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, SHAPE)
    two = _model([helper.make_node("Add", ["x", "z"], ["y"], name="sum")], [x, z], "y", SHAPE, [])
    assert main(["import", str(_saved(tmp_path, two, "two")), "-o", out, "--calibration",
                 str(npy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 inputs" in err and "takes one" in err
    torch_pool = _saved(tmp_path, convnet(0, max_pads=(1, 1, 1, 1)), "torch_pool")
    assert main(["import", str(torch_pool), "-o", out, "--calibration", str(npy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "maxpool" in err


def test_import_command_calibrates_on_an_image_folder(tmp_path, capsys):
    """--dataset gives NCHW images of the model's size, as for a .pt2."""
    write_image_folder(tmp_path / "images", per_class=3)
    out = tmp_path / "model.tflite"
    assert main(["import", str(_saved(tmp_path, convnet(4))), "-o", str(out), "--dataset",
                 str(tmp_path / "images"), "--samples", "5"]) == 0
    assert "calibrated on 5 samples" in capsys.readouterr().out
    graph = read_tflite(out)
    assert_matches_tflm(graph, [np.zeros(graph.tensor(graph.inputs[0]).shape, np.int8)])


def test_standalone_relu6_keeps_its_input_quantisation(tmp_path):
    """A Clip(0, 6) that cannot be fused (it reads the graph input) keeps its input's quantisation,
    since TFLite Micro's int8 RELU6 clamps codes without rescaling; one fused into the Conv before
    it takes the clamped range. The int8 graph stays close to the float one and matches TFLM."""
    rng = np.random.default_rng(0)
    inits = [_init(rng, "w", (4, 3, 3, 3)), _init(rng, "b", (4,), 0.1),
             numpy_helper.from_array(np.array(0, np.float32), "zero"),
             numpy_helper.from_array(np.array(6, np.float32), "six")]
    nodes = [helper.make_node("Clip", ["x", "zero", "six"], ["c0"], name="clip_in"),
             helper.make_node("Conv", ["c0", "w", "b"], ["c1"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c1", "zero", "six"], ["y"], name="clip_out")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)
    path = _saved(tmp_path, _model(nodes, [x], "y", (1, 4, 16, 16), inits))
    data = _data(32, 0) * 3
    int8 = from_onnx(path, data)
    assert [op.kind for op in int8.ops] == [OpKind.RELU6, OpKind.CONV_2D]
    relu6, conv = int8.ops
    assert int8.tensor(relu6.outputs[0]).quant == int8.tensor(int8.inputs[0]).quant
    assert conv.attrs.clamp == (0.0, 6.0)
    float_graph = from_onnx(path)
    # The error stays at the level of the coarse input step (the RELU6 rescaled as if its output had
    # its own quantisation would be off by about 100 output steps, about 2.4).
    tolerance = 3 * int8.tensor(int8.inputs[0]).quant.scale[0]
    for x in onnx_calibration_inputs(int8, data[:4]):
        codes = quantize_input(int8, x)
        got = assert_matches_tflm(int8, [codes])
        want = evaluate_float(float_graph, [x])[0]
        assert np.max(np.abs(dequantize_output(int8, got).reshape(want.shape) - want)) < tolerance


def se_net(seed: int = 0, alpha: float = 1.0 / 6.0) -> onnx.ModelProto:
    """MobileNetV3's ops as torch.onnx.export writes them (opset 14): conv + HardSwish, a
    squeeze-excite gate (GlobalAveragePool, 1x1 conv + Relu, 1x1 conv, HardSigmoid(1/6, 0.5), Mul
    broadcast over H and W), and a bias shared through an Identity node (the exporter's
    deduplication of equal initializers), then global pool, Flatten and Gemm."""
    rng = np.random.default_rng(seed)
    inits = [_init(rng, "w1", (8, 3, 3, 3)), _init(rng, "b1", (8,), 0.1),
             _init(rng, "w2", (4, 8, 1, 1)), _init(rng, "b2", (4,), 0.1),
             _init(rng, "w3", (8, 4, 1, 1), 0.5), _init(rng, "b3", (8,), 0.5),
             _init(rng, "w4", (4, 8, 1, 1)), _init(rng, "wf", (10, 4), 0.5),
             _init(rng, "bf", (10,), 0.1)]
    nodes = [
        helper.make_node("Identity", ["b2"], ["b2_shared"], name="shared_bias"),
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="stem", pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("HardSwish", ["c1"], ["h1"], name="hswish"),
        helper.make_node("GlobalAveragePool", ["h1"], ["s"], name="se_pool"),
        helper.make_node("Conv", ["s", "w2", "b2"], ["s1"], name="se_reduce"),
        helper.make_node("Relu", ["s1"], ["s2"], name="se_relu"),
        helper.make_node("Conv", ["s2", "w3", "b3"], ["s3"], name="se_expand"),
        helper.make_node("HardSigmoid", ["s3"], ["gate"], name="hsigmoid", alpha=alpha, beta=0.5),
        helper.make_node("Mul", ["h1", "gate"], ["m"], name="se_gate"),
        helper.make_node("Conv", ["m", "w4", "b2_shared"], ["c4"], name="project"),
        helper.make_node("GlobalAveragePool", ["c4"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], name="fc", transB=1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)
    graph = helper.make_graph(nodes, "se_net", [x], [helper.make_tensor_value_info(
        "logits", TensorProto.FLOAT, (1, 10))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_mobilenet_v3_ops_float_and_qdq(tmp_path):
    """HardSwish, HardSigmoid (-> ADD 3 with RELU6, MUL 1/6), the squeeze-excite Mul and a bias
    shared through Identity: the float graph equals onnxruntime; float -> PTQ and the QDQ model of
    quantize_static (per-channel; ORT leaves HardSwish/HardSigmoid between a DQ and a Q, and
    quantises the shared bias for its first reader) are bit-exact with TFLM and their C, and the
    QDQ graph stays within a few output steps of onnxruntime's own int8 run."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    path = _saved(tmp_path, se_net(0))
    data, held_out = _data(32, 0), _data(16, 3)
    float_graph = read_onnx(path)
    assert {OpKind.HARD_SWISH, OpKind.MUL, OpKind.ADD, OpKind.MEAN} <= {op.kind for op in float_graph.ops}
    inputs = onnx_calibration_inputs(float_graph, held_out)
    ours = np.concatenate([evaluate_float(float_graph, [x])[0] for x in inputs])
    assert np.max(np.abs(ours - _ort_float(path, held_out))) < 1e-5
    int8 = from_onnx(path, data)
    for x in inputs[:3]:
        assert_matches_tflm(int8, [quantize_input(int8, x)])
    assert differential_run(int8, tmp_path / "ptq", qemu=False, target="host") == {"host-asan": 0}

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": x[None]} for x in data])

        def get_next(self):
            return next(self.items, None)

    q_path = tmp_path / "q.onnx"
    quantize_static(str(path), str(q_path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
    qdq = from_onnx(q_path)
    assert qdq.metadata["quantisation"] == "qdq"
    for x in inputs[:3]:
        assert_matches_tflm(qdq, [x])
    theirs = _ort_float(q_path, held_out)
    interpreter = Interpreter(qdq)
    mine = np.concatenate([interpreter.invoke([x])[0] for x in inputs])
    step = qdq.tensor(qdq.ops[-1].inputs[0]).quant.scale[0]
    assert np.max(np.abs(mine - theirs)) <= 4 * step
    assert differential_run(qdq, tmp_path / "qdq", qemu=False, target="host") == {"host-asan": 0}


def test_hard_sigmoid_other_than_torch_is_refused_in_one_line(tmp_path, capsys):
    """HardSigmoid is taken with PyTorch's alpha 1/6 (ONNX's default 0.2 has no RELU6 form)."""
    npy = tmp_path / "calib.npy"
    np.save(npy, _data(4, 0))
    path = _saved(tmp_path, se_net(0, alpha=0.2))
    assert main(["import", str(path), "-o", str(tmp_path / "m.tflite"), "--calibration",
                 str(npy)]) == 2
    line = one_error_line(capsys)
    assert "HardSigmoid with alpha 0.2" in line and "hsigmoid" in line
