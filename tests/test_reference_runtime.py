"""The int8 reference runtime on the real reference models, against TensorFlow Lite Micro.

For every reference .tflite model: `read_tflite` + `Interpreter` must give outputs bit-identical to
the tflite-micro pip interpreter on seeded random inputs (20 per model; mcunet-in3, the heaviest at
82M MACs, runs 5 by default and 20 under ``-m slow``), and on the real samples: person.bmp /
no_person.bmp on person_detect (classified as person / no person) and windows of the MLPerf Tiny
anomaly-detection log-mel sample on ad01. Also the `mcuforge run` command and input validation.

Reader issues found while writing these tests: none (every model reads and runs bit-exactly).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import require_reference_file
from mcuforge.cli import main
from mcuforge.errors import UnsupportedOpError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.ir import DType, Graph, Op, OpKind, QuantParams, ReshapeAttrs, Tensor
from mcuforge.runtime.reference import Interpreter, RuntimeInputError, run_op

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

# model path -> random inputs checked by default; the slow test raises every model to 20.
MODELS = {
    "mlperf_tiny/vww_96_int8.tflite": 20,
    "mlperf_tiny/kws_ref_model.tflite": 20,
    "mlperf_tiny/pretrainedResnet_quant.tflite": 20,
    "mlperf_tiny/ad01_int8.tflite": 20,
    "tflite_micro/person_detect.tflite": 20,
    "tflite_micro/hello_world_int8.tflite": 20,
    "tflite_micro/micro_speech_quantized.tflite": 20,
    "mcunet/mcunet-320kb-1mb_imagenet.tflite": 5,
    "tinyengine/vww.tflite": 20,
}
SLOW_COUNT = 20

_CACHE: dict[str, tuple[Graph, Interpreter, object, bytes]] = {}


def loaded(relative: str) -> tuple[Graph, Interpreter, object]:
    """(graph, our interpreter, TFLM interpreter) for a reference model, built once per session."""
    if relative not in _CACHE:
        path = require_reference_file(f"models/{relative}")
        graph = read_tflite(path)
        # The TFLM wrapper reads the model lazily: keep its bytes referenced with it.
        model_bytes = path.read_bytes()
        tflm = runtime.Interpreter.from_bytes(model_bytes, arena_size=16 * 1024 * 1024)
        _CACHE[relative] = (graph, Interpreter(graph), tflm, model_bytes)
    graph, ours, tflm, _ = _CACHE[relative]
    return graph, ours, tflm


def tflm_invoke(tflm, inputs: list[np.ndarray], outputs: int) -> list[np.ndarray]:
    for index, array in enumerate(inputs):
        tflm.set_input(array, index)
    tflm.invoke()
    return [tflm.get_output(index).copy() for index in range(outputs)]


def random_inputs(graph: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    """Uniform int8 over the full range; float inputs uniform over the int8 input's real range
    (slightly beyond it, so the edge QUANTIZE saturates sometimes)."""
    arrays = []
    for name in graph.inputs:
        tensor = graph.tensor(name)
        if tensor.dtype is DType.INT8:
            arrays.append(rng.integers(-128, 128, size=tensor.shape, dtype=np.int8))
        else:
            arrays.append(rng.uniform(-1.1, 1.1, size=tensor.shape).astype(np.float32))
    return arrays


def check_random_inputs(relative: str, count: int) -> None:
    graph, ours, tflm = loaded(relative)
    rng = np.random.default_rng(2024)
    distinct = set()
    for trial in range(count):
        inputs = random_inputs(graph, rng)
        got = ours.invoke(inputs)
        expected = tflm_invoke(tflm, inputs, len(graph.outputs))
        for index, (a, b) in enumerate(zip(got, expected)):
            assert a.dtype == b.dtype and a.shape == b.shape
            differ = int(np.sum(a != b))
            assert differ == 0, f"{relative} input #{trial} output {index}: {differ} values differ"
        distinct.add(got[0].tobytes())
    if count > 1:
        assert len(distinct) > 1, f"{relative}: every input gave the same output"


@pytest.mark.parametrize("relative", list(MODELS))
def test_bit_exact_with_tflm_on_random_inputs(relative):
    check_random_inputs(relative, MODELS[relative])


@pytest.mark.slow
@pytest.mark.parametrize("relative", [m for m, n in MODELS.items() if n < SLOW_COUNT])
def test_bit_exact_with_tflm_on_random_inputs_full(relative):
    check_random_inputs(relative, SLOW_COUNT)


def read_gray_bmp(path: Path) -> np.ndarray:
    """Pixels of an 8-bit BMP with a grey palette as uint8 [rows, cols], top row first (BMP
    stores rows bottom-up when the height is positive; rows are padded to 4 bytes)."""
    data = path.read_bytes()
    assert data[:2] == b"BM"
    pixel_offset = struct.unpack_from("<I", data, 10)[0]
    header_size, width, height, _, bits = struct.unpack_from("<IiiHH", data, 14)
    assert bits == 8
    palette = np.frombuffer(data, np.uint8, 4 * 256, 14 + header_size).reshape(256, 4)
    assert np.array_equal(palette[:, 0], np.arange(256)), "palette is not the grey ramp"
    row_bytes = (width + 3) // 4 * 4
    rows = np.frombuffer(data, np.uint8, row_bytes * abs(height), pixel_offset)
    rows = rows.reshape(abs(height), row_bytes)[:, :width]
    return rows[::-1] if height > 0 else rows


@pytest.mark.parametrize("sample, expected_class", [("person.bmp", 1), ("no_person.bmp", 0)])
def test_person_detect_samples(sample, expected_class):
    """TFLM's person_detection test copies the image bytes (PIL order: top row first) into the
    int8 input unchanged; class 0 is "no person", class 1 "person"."""
    graph, ours, tflm = loaded("tflite_micro/person_detect.tflite")
    pixels = read_gray_bmp(require_reference_file(f"models/tflite_micro/{sample}"))
    x = pixels.view(np.int8).reshape(1, 96, 96, 1)
    got = ours.invoke([x])[0]
    assert np.array_equal(got, tflm_invoke(tflm, [x], 1)[0])
    assert int(np.argmax(got[0])) == expected_class
    assert got[0, expected_class] > got[0, 1 - expected_class]


def test_anomaly_detection_sample_windows():
    """ad01 takes 5 consecutive log-mel slices (640 floats) quantised with its input parameters."""
    graph, ours, tflm = loaded("mlperf_tiny/ad01_int8.tflite")
    features = np.fromfile(
        require_reference_file("models/mlperf_tiny/normal_id_01_00000000_hist_librosa.bin"),
        dtype="<f4").reshape(200, 128)
    quant = graph.tensor(graph.inputs[0]).quant
    scale, zero_point = np.float32(quant.scale[0]), quant.zero_point[0]
    starts = list(range(0, 196, 5))
    assert len(starts) >= 36
    errors = []
    for start in starts:
        window = features[start:start + 5].reshape(1, 640)
        scaled = window / scale
        q = np.clip(np.copysign(np.floor(np.abs(scaled) + 0.5), scaled) + zero_point, -128, 127)
        x = q.astype(np.int8)
        got = ours.invoke([x])[0]
        assert np.array_equal(got, tflm_invoke(tflm, [x], 1)[0]), f"window at slice {start}"
        out_q = graph.tensor(graph.outputs[0]).quant
        reconstruction = (got.astype(np.float64) - out_q.zero_point[0]) * out_q.scale[0]
        errors.append(float(np.mean((reconstruction - window) ** 2)))
    # A normal clip reconstructs well: every window's error is a small part of the features'
    # variance (measured: MSE 8.3 to 12.0 against a variance of 125).
    assert max(errors) < 0.2 * float(features.var())


# --- interface -------------------------------------------------------------------------------------

def test_invoke_validates_inputs():
    _, ours, _ = loaded("tflite_micro/hello_world_int8.tflite")
    with pytest.raises(RuntimeInputError, match="takes 1 input"):
        ours.invoke([])
    with pytest.raises(RuntimeInputError, match="needs dtype int8"):
        ours.invoke([np.zeros((1, 1), np.float32)])
    with pytest.raises(RuntimeInputError, match=r"shape \[1, 1\]"):
        ours.invoke([np.zeros((1, 2), np.int8)])


def test_float_ops_are_rejected_with_the_op_named():
    tensors = {"x": Tensor("x", (1, 4), DType.FLOAT32), "y": Tensor("y", (1, 4), DType.FLOAT32)}
    graph = Graph("g", tensors, (Op("act", OpKind.HARD_SWISH, ("x",), ("y",)),), ("x",), ("y",))
    with pytest.raises(UnsupportedOpError, match=r"HARD_SWISH at operator #0 .*float32"):
        Interpreter(graph).invoke([np.zeros((1, 4), np.float32)])


def test_run_op_writes_output_into_env():
    quant = QuantParams.per_tensor(0.1, 0)
    tensors = {"x": Tensor("x", (1, 2, 2, 1), DType.INT8, quant),
               "y": Tensor("y", (1, 4), DType.INT8, quant)}
    op = Op("r", OpKind.RESHAPE, ("x",), ("y",), ReshapeAttrs((1, 4)))
    graph = Graph("g", tensors, (op,), ("x",), ("y",))
    env = {"x": np.arange(4, dtype=np.int8).reshape(1, 2, 2, 1)}
    run_op(graph, op, env)
    assert env["y"].tolist() == [[0, 1, 2, 3]]


def test_invoke_all_exposes_intermediates():
    graph, ours, _ = loaded("mlperf_tiny/kws_ref_model.tflite")
    x = np.zeros(graph.tensor(graph.inputs[0]).shape, np.int8)
    env = ours.invoke_all([x])
    for op in graph.ops:
        tensor = graph.tensor(op.outputs[0])
        assert env[op.outputs[0]].shape == tuple(tensor.shape)
        assert env[op.outputs[0]].dtype == tensor.dtype.numpy


def test_cli_run_writes_the_reference_output(tmp_path, capsys):
    relative = "tflite_micro/person_detect.tflite"
    graph, ours, _ = loaded(relative)
    model = require_reference_file(f"models/{relative}")
    x = np.random.default_rng(5).integers(-128, 128, size=(1, 96, 96, 1), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    assert main(["run", str(model), "--input", str(tmp_path / "x.npy"), "--output", str(out)]) == 0
    assert np.array_equal(np.load(out), ours.invoke([x])[0])
    assert "argmax" in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("make_input, message", [
    (lambda p: np.save(p, np.zeros((1, 96, 96, 1), np.float32)), "needs dtype int8"),
    (lambda p: np.save(p, np.zeros((96, 96), np.int8)), "shape [1, 96, 96, 1]"),
    (lambda p: p.write_bytes(b"not a numpy file"), "not a readable .npy"),
    (lambda p: None, "no such input file"),
])
def test_cli_run_rejects_bad_inputs(tmp_path, capsys, make_input, message):
    model = require_reference_file("models/tflite_micro/person_detect.tflite")
    x_path = tmp_path / "x.npy"
    make_input(x_path)
    out = tmp_path / "y.npy"
    assert main(["run", str(model), "--input", str(x_path), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_run_rejects_non_tflite_model(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 1), np.int8))
    assert main(["run", str(tmp_path / "x.npy"), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 2
    assert ".tflite" in capsys.readouterr().err
