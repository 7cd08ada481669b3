"""Models mcuforge cannot run get one line and exit code 2 from every command that would use them:
a float32 model and an int16 (16x8) model written by our writer, an op no module implements, control
flow (WHILE) and a dynamic shape hand-built with the flatbuffer builder. `profile` refuses them too
unless asked for the analytic figures (``--analytic-only``); zoo specs are still profiled
analytically. The decision is `mcuforge.ops.support`, from the op registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tflite.BuiltinOperator import BuiltinOperator as B
from tflite.TensorType import TensorType as T

from conftest import one_error_line, require_reference_file
from tflite_build_support import build_model
from mcuforge.cli import main
from mcuforge.errors import UnsupportedOpError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_writer import write_tflite
from mcuforge.ir import DType, FullyConnectedAttrs, Graph, NoAttrs, Op, OpKind, QuantParams, Tensor
from mcuforge.ops import find_op_def, implemented_kinds
from mcuforge.ops.support import refusal, require_executable
from mcuforge.runtime.reference import Interpreter

Q = (0.05, 0)


def relu_int16_graph() -> Graph:
    """x -> RELU -> y in int16: an op without a 16x8 kernel."""
    x = Tensor("x", (1, 8), DType.INT16, QuantParams.per_tensor(1 / 4096, 0))
    y = Tensor("y", (1, 8), DType.INT16, QuantParams.per_tensor(1 / 4096, 0))
    op = Op("relu", OpKind.RELU, ("x",), ("y",), NoAttrs())
    return Graph("relu", {"x": x, "y": y}, (op,), ("x",), ("y",))


def fc_graph(activations: DType) -> Graph:
    """x -> FULLY_CONNECTED -> y with float32 or int16 (16x8: int8 weights, int64 bias) tensors."""
    rng = np.random.default_rng(0)
    if activations is DType.FLOAT32:
        x, y = Tensor("x", (1, 8), DType.FLOAT32), Tensor("y", (1, 4), DType.FLOAT32)
        w = Tensor("w", (4, 8), DType.FLOAT32, None, True,
                   rng.normal(size=(4, 8)).astype(np.float32))
        b = Tensor("b", (4,), DType.FLOAT32, None, True, np.zeros(4, np.float32))
    else:
        x = Tensor("x", (1, 8), DType.INT16, QuantParams.per_tensor(1 / 4096, 0))
        y = Tensor("y", (1, 4), DType.INT16, QuantParams.per_tensor(1 / 2048, 0))
        w = Tensor("w", (4, 8), DType.INT8, QuantParams.per_tensor(0.01, 0), True,
                   rng.integers(-127, 128, (4, 8)).astype(np.int8))
        b = Tensor("b", (4,), DType.INT64, QuantParams.per_tensor(0.01 / 4096, 0), True,
                   np.zeros(4, np.int64))
    op = Op("fc", OpKind.FULLY_CONNECTED, ("x", "w", "b"), ("y",), FullyConnectedAttrs())
    return Graph("fc", {t.name: t for t in (x, w, b, y)}, (op,), ("x",), ("y",))


def _relu_then(code: int, second_shape=(1, 4)) -> bytes:
    """int8 x -> RELU -> h -> (op ``code``) -> y, hand-built."""
    tensors = [("x", (1, 4), T.INT8, Q, None), ("h", (1, 4), T.INT8, Q, None),
               ("y", second_shape, T.INT8, Q, None)]
    ops = [(B.RELU, ["x"], ["h"], 0, None), (code, ["h"], ["y"], 0, None)]
    return build_model(tensors, ops, ["x"], ["y"])


def _dynamic() -> bytes:
    """int8 x [-1, 4] -> RELU -> y: a dynamic dimension that no folding removes."""
    tensors = [("x", (-1, 4), T.INT8, Q, None), ("y", (-1, 4), T.INT8, Q, None)]
    return build_model(tensors, [(B.RELU, ["x"], ["y"], 0, None)], ["x"], ["y"])


FLOAT_LINE = ("FULLY_CONNECTED at operator #0 (tensor y): input x is float32, FULLY_CONNECTED "
              "takes int16/int8")
INT16_LINE = "RELU at operator #0 (tensor y): input x is int16, RELU takes int8"
# name -> (how to write the model, the text of its one line)
CASES = {
    "float32": (lambda p: write_tflite(fc_graph(DType.FLOAT32), p), FLOAT_LINE),
    "int16": (lambda p: write_tflite(relu_int16_graph(), p), INT16_LINE),
    "missing_op": (lambda p: p.write_bytes(_relu_then(B.GATHER_ND)),
                   "unsupported op GATHER_ND at operator #1 (tensor y)"),
    "while": (lambda p: p.write_bytes(_relu_then(B.WHILE)),
              "unsupported op WHILE at operator #1 (tensor y): control flow is not supported"),
    "dynamic": (lambda p: p.write_bytes(_dynamic()),
                "dynamic shape: tensor x of RELU at operator #0 has shape [-1, 4]"),
}


@pytest.fixture()
def model_file(request, tmp_path: Path):
    """The .tflite of case ``request.param`` and its expected line."""
    write, line = CASES[request.param]
    path = tmp_path / f"{request.param}.tflite"
    write(path)
    return path, line


def _commands(path: Path, tmp_path: Path) -> dict[str, list[str]]:
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 8), np.float32))
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "report.json").write_text(json.dumps({"source": str(path)}))
    return {
        "profile": ["profile", str(path)],
        "profile --json": ["profile", str(path), "--json"],
        "bench": ["bench", str(path)],
        "run": ["run", str(path), "--input", str(x), "--output", str(tmp_path / "y.npy")],
        "compile": ["compile", str(path), "-o", str(tmp_path / "out"), "--core", "host",
                    "--no-measure"],
        "verify": ["verify", str(project), "--no-qemu"],
    }


@pytest.mark.parametrize("model_file", list(CASES), indirect=True)
def test_every_command_refuses_in_one_line(model_file, tmp_path: Path, capsys) -> None:
    path, expected = model_file
    for name, argv in _commands(path, tmp_path).items():
        assert main(argv) == 2, name
        line = one_error_line(capsys)
        assert expected in line, (name, line)
        assert capsys.readouterr().out == "", name
    assert not (tmp_path / "out").exists() and not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("case", ["float32", "int16"])
def test_refusal_says_what_is_supported(case: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / f"{case}.tflite"
    CASES[case][0](path)
    assert main(["profile", str(path)]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {path}: cannot compile: ")
    assert "float32 only as a QUANTIZE input or DEQUANTIZE output" in line
    assert ("quantise the model to int8 first" if case == "float32" else "int16 (16x8)") in line
    assert line.endswith("(--analytic-only prints the analytic figures anyway)")


@pytest.mark.parametrize("case", ["float32", "int16"])
def test_profile_analytic_only_prints_the_figures(case: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / f"{case}.tflite"
    CASES[case][0](path)
    assert main(["profile", str(path), "--analytic-only", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["macs"] == (32 if case == "float32" else 0)  # FULLY_CONNECTED 8x4 / RELU


def test_zoo_models_are_still_profiled_analytically(capsys) -> None:
    assert main(["profile", "mobilenet-v2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["macs"] > 0


def test_an_analytic_zoo_graph_cannot_be_run_or_compiled() -> None:
    # `mcuforge compile ZOO-NAME` builds the int8 model with weights first (test_compile_models.py);
    # the analytic graph itself, without weights, is refused.
    from mcuforge.frontends.load import load_graph
    with pytest.raises(UnsupportedOpError, match=r"weight b0.weight has no values \(an analytic graph"):
        require_executable(load_graph("mcunet-in1"), "mcunet-in1", c_code=True)


def test_reference_models_pass_the_check() -> None:
    for relative in ("models/tflite_micro/hello_world_int8.tflite", "models/tinyengine/vww.tflite",
                     "models/mlperf_tiny/kws_ref_model.tflite"):
        graph = read_tflite(require_reference_file(relative))
        assert refusal(graph, c_code=True) is None, relative
        assert require_executable(graph) is graph


def test_float_io_edges_are_supported_and_float_inside_is_not() -> None:
    """QUANTIZE takes float32 and DEQUANTIZE gives it (a float-I/O model's edges); everything else
    is int8, as the registry's per-op dtypes say."""
    quantize, dequantize = find_op_def(OpKind.QUANTIZE), find_op_def(OpKind.DEQUANTIZE)
    assert DType.FLOAT32 in quantize.input_dtypes and dequantize.output_dtypes == {DType.FLOAT32}
    wide = {OpKind.CONV_2D, OpKind.DEPTHWISE_CONV_2D, OpKind.FULLY_CONNECTED, OpKind.ADD, OpKind.MUL,
            OpKind.AVERAGE_POOL_2D, OpKind.MAX_POOL_2D, OpKind.RESHAPE, OpKind.LOGISTIC, OpKind.TANH,
            OpKind.SOFTMAX, OpKind.SUB, OpKind.LEAKY_RELU, OpKind.TILE}  # 16x8 kernels too
    for kind in implemented_kinds():
        if kind not in (OpKind.QUANTIZE, OpKind.DEQUANTIZE):
            expected = {DType.INT8, DType.INT16} if kind in wide else {DType.INT8}
            assert find_op_def(kind).input_dtypes == expected, kind
            assert find_op_def(kind).output_dtypes == expected, kind


def test_interpreter_uses_the_same_check() -> None:
    with pytest.raises(UnsupportedOpError, match="input x is int16, RELU takes int8"):
        Interpreter(relu_int16_graph())
    Interpreter(fc_graph(DType.INT16))  # a 16x8 FULLY_CONNECTED runs
    assert refusal(fc_graph(DType.FLOAT32), c_code=False).startswith(FLOAT_LINE)


def test_audio_preprocessor_custom_op_is_refused(capsys) -> None:
    path = require_reference_file("models/tflite_micro/audio_preprocessor_float.tflite")
    assert main(["bench", str(path)]) == 2
    assert "unsupported op CUSTOM(SignalWindow) at operator #0" in one_error_line(capsys)


def test_an_op_without_c_kernel_runs_but_is_not_compiled(tmp_path: Path, capsys) -> None:
    """int8 x -> DEQUANTIZE -> float32 h -> QUANTIZE -> int8 y: the reference runtime runs it, the
    generated C has no DEQUANTIZE inside a graph (only at a float output, left to the caller)."""
    quant = QuantParams.per_tensor(0.05, 0)
    tensors = {"x": Tensor("x", (1, 4), DType.INT8, quant), "h": Tensor("h", (1, 4), DType.FLOAT32),
               "y": Tensor("y", (1, 4), DType.INT8, quant)}
    ops = (Op("dq", OpKind.DEQUANTIZE, ("x",), ("h",)), Op("q", OpKind.QUANTIZE, ("h",), ("y",)))
    graph = Graph("g", tensors, ops, ("x",), ("y",))
    assert refusal(graph, c_code=False) is None
    assert refusal(graph).startswith("unsupported op DEQUANTIZE at operator #0 (tensor h): no C kernel")
    path = tmp_path / "dq.tflite"
    write_tflite(graph, path)
    x = np.arange(-2, 2, dtype=np.int8).reshape(1, 4)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "y.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), x)
    capsys.readouterr()
    assert main(["compile", str(path), "-o", str(tmp_path / "out"), "--core", "host",
                 "--no-measure"]) == 2
    assert "DEQUANTIZE at operator #0 (tensor h): no C kernel" in one_error_line(capsys)
