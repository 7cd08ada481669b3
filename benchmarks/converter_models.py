"""Converter-made int8 models, as users bring them: does mcuforge run them bit-exact with TensorFlow
Lite Micro, or refuse them in one line, and how much SRAM does it plan against TFLite Micro's arena?

With TensorFlow installed (an optional extra, never a runtime dependency of mcuforge) the script
builds ordinary Keras models with random weights, converts each with
``tf.lite.TFLiteConverter.from_keras_model`` and int8 post-training quantisation (a representative
dataset of random data, ``inference_input_type``/``inference_output_type`` int8, Keras' default
dynamic batch kept), and writes them to ``--out`` (default: a temporary folder): MobileNet V1, V2 and
V3-Small (small input, small width), a DS-CNN keyword model, a Conv1D audio net, a tiny YOLO-style
detector, a small U-Net, an MLP, a model of mixed layers and an LSTM (batch 1; as
UNIDIRECTIONAL_SEQUENCE_LSTM and unrolled). Random weights: batch norms take the statistics of one
random batch (`normalise_batch_norms`), so that deep models keep usable activation scales. Without TensorFlow it says so
in one line and exits 0. ``--models DIR`` takes every .tflite under DIR instead (no TensorFlow
needed), e.g. the reference models: ``.venv/bin/python benchmarks/converter_models.py --models
../shared/reference/models``.

Per model: read and check it (`mcuforge.ops.support`: the op kinds, dtypes and shapes mcuforge can
run and compile); run ``--inputs`` random inputs (int8 uniform over the full range; float inputs
uniform in [-1.1, 1.1]) in our reference runtime and in the tflite-micro pip interpreter (in a
child process, so that a crash of the C++ interpreter names the model instead of ending the run)
and compare every output bit for bit; our planned arena (`planner.arena.plan_arena`, the default
plan the C uses; with ``--measure`` also the measured SRAM of the Cortex-M7 build: arena + .data +
.bss + stack high-water under QEMU, which needs the Arm toolchain and QEMU) against TFLite Micro's
arena (`rivals.tflm.measure_tflm_arena`: total = head + tail). 1 kB = 1024 B.

Output, one line per model, then a summary line (``--json FILE`` keeps the figures). A run with
TensorFlow 2.21 (tensorflow-cpu, Keras 3.15), random weights, 5 random inputs per model::

    model                           result                         ours kB  TFLM kB  TFLM/ours
    mobilenet_v1                    bit-exact (5 inputs)              45.0    101.8      2.26x
    mobilenet_v2                    bit-exact (5 inputs)             110.2    205.3      1.86x
    mobilenet_v3_small              bit-exact (5 inputs)              63.0    157.4      2.50x
    ds_cnn_kws                      bit-exact (5 inputs)               8.3     23.7      2.85x
    conv1d_audio                    bit-exact (5 inputs)               4.0      9.0      2.24x
    tiny_yolo                       error (TFLite Micro could not run .../tiny_yolo.tflite: Didn't find op for builtin opcode 'TILE')       44.0        -          -
    small_unet                      bit-exact (5 inputs)              32.0     57.1      1.79x
    mlp                             bit-exact (5 inputs)               0.2      3.3     17.75x
    mixed_layers                    bit-exact (5 inputs)               8.0     16.8      2.10x
    lstm                            not converted: the converter crashed (exit status -11)
    lstm_unrolled                   bit-exact (5 inputs)               0.6     37.7     61.90x
    11 models: 9 bit-exact, 0 differ, 0 refused, 1 errors, 1 not converted

``ours kB`` is the planned arena (``measured kB`` with ``--measure``); ``TFLM kB`` is TFLite Micro's
total arena (its planned tensors plus its persistent tail, which dominates on tiny models); a
refused model shows the one line that `mcuforge compile` prints for it (the error text of the
check, or of the reader/value checks when the file itself is refused), ``differ`` how many output
values differed, ``not converted`` the converter's own error (or its crash). tiny_yolo runs in
mcuforge (its UpSampling2D is EXPAND_DIMS -> TILE -> RESHAPE; the reference runtime's TILE equals
TFLite's, the C equals the reference runtime: ``mcuforge verify``), but TFLite Micro has no TILE
kernel, so there is no TFLite Micro output or arena to compare with.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mcuforge.errors import McuforgeError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.ir import DType, Graph
from mcuforge.ops.support import refusal
from mcuforge.planner.arena import plan_arena
from mcuforge.rivals.tflm import failure_reason, measure_tflm_arena

_TFLM_CHILD = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
path, inputs_path, outputs_path = sys.argv[1:4]
cases = np.load(inputs_path)
interpreter = runtime.Interpreter.from_file(path, arena_size=64 * 1024 * 1024)
results = {}
n_cases, n_inputs = (int(v) for v in cases["counts"])
for case in range(n_cases):
    for index in range(n_inputs):
        interpreter.set_input(cases[f"{case}_{index}"], index)
    interpreter.invoke()
    for index in range(int(cases["n_outputs"])):
        results[f"{case}_{index}"] = interpreter.get_output(index).copy()
np.savez(outputs_path, **results)
"""


@dataclass
class Row:
    """One model's result: ``status`` is bit-exact, differ, refused, error (TFLite Micro or the
    measurement failed) or not converted (the TensorFlow converter failed or crashed)."""

    model: str
    status: str
    detail: str
    ours_bytes: int | None = None
    measured_sram_bytes: int | None = None
    tflm_total_bytes: int | None = None
    tflm_head_bytes: int | None = None


def random_inputs(graph: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    """int8 inputs uniform over the full range; float inputs uniform in [-1.1, 1.1]."""
    arrays = []
    for name in graph.inputs:
        tensor = graph.tensor(name)
        if tensor.dtype is DType.INT8:
            arrays.append(rng.integers(-128, 128, size=tensor.shape, dtype=np.int8))
        else:
            arrays.append(rng.uniform(-1.1, 1.1, size=tensor.shape).astype(tensor.dtype.numpy))
    return arrays


def tflm_outputs(path: Path, cases: list[list[np.ndarray]], n_outputs: int) -> list[list[np.ndarray]]:
    """The outputs of the tflite-micro interpreter on each case, run in a child process."""
    with tempfile.TemporaryDirectory() as folder:
        inputs_path, outputs_path = Path(folder) / "in.npz", Path(folder) / "out.npz"
        arrays = {f"{c}_{i}": a for c, case in enumerate(cases) for i, a in enumerate(case)}
        np.savez(inputs_path, counts=np.array([len(cases), len(cases[0])]),
                 n_outputs=np.array(n_outputs), **arrays)
        result = subprocess.run([sys.executable, "-c", _TFLM_CHILD, str(path), str(inputs_path),
                                 str(outputs_path)], capture_output=True, text=True, timeout=600)
        if result.returncode != 0 or not outputs_path.exists():
            raise McuforgeError("TFLite Micro could not run it: "
                                f"{failure_reason(result.stderr, result.returncode)}")
        saved = np.load(outputs_path)
        return [[saved[f"{c}_{i}"] for i in range(n_outputs)] for c in range(len(cases))]


def measured_sram(graph: Graph, source: Path) -> int:
    """Arena + .data + .bss + stack high-water of the Cortex-M7 build (`mcuforge compile`)."""
    from mcuforge.codegen.project import compile_model
    with tempfile.TemporaryDirectory() as folder:
        report = compile_model(graph, Path(folder) / "project", "cortex-m7", source=str(source))
    return int(report["measured_sram_bytes"])


def bench_model(path: Path, n_inputs: int, measure: bool, seed: int = 0) -> Row:
    """Check, run and measure one .tflite file."""
    from mcuforge.runtime.reference import Interpreter
    name = path.stem
    try:
        graph = read_tflite(path)
        why = refusal(graph, c_code=True)
    except McuforgeError as exc:
        return Row(name, "refused", str(exc).splitlines()[0])
    if why is not None:
        return Row(name, "refused", why)
    row = Row(name, "bit-exact", f"{n_inputs} inputs", ours_bytes=plan_arena(graph).arena_bytes)
    try:
        arena = measure_tflm_arena(path)
        row.tflm_total_bytes, row.tflm_head_bytes = arena.total, arena.head
        rng = np.random.default_rng(seed)
        cases = [random_inputs(graph, rng) for _ in range(n_inputs)]
        interpreter = Interpreter(graph)
        ours = [interpreter.invoke(case) for case in cases]
        theirs = tflm_outputs(path, cases, len(graph.outputs))
        differing = total = 0
        for a_case, b_case in zip(ours, theirs):
            for a, b in zip(a_case, b_case):
                total += a.size
                differing += a.size if a.shape != b.shape or a.dtype != b.dtype else int(np.sum(a != b))
        if differing:
            row.status, row.detail = "differ", f"{differing} of {total} output values"
        if measure:
            row.measured_sram_bytes = measured_sram(graph, path)
    except McuforgeError as exc:
        row.status, row.detail = "error", str(exc).splitlines()[0]
    return row


def print_rows(rows: list[Row], measure: bool) -> None:
    """The table of the module docstring."""
    ours_label = "measured kB" if measure else "ours kB"
    print(f"{'model':<32}{'result':<27}{ours_label:>11}{'TFLM kB':>9}{'TFLM/ours':>11}")
    for row in rows:
        if row.status in ("refused", "not converted"):
            print(f"{row.model:<32}{row.status}: {row.detail}")
            continue
        ours = row.measured_sram_bytes if measure else row.ours_bytes
        result = f"{row.status} ({row.detail})"
        cells = [f"{ours / 1024:.1f}" if ours else "-",
                 f"{row.tflm_total_bytes / 1024:.1f}" if row.tflm_total_bytes else "-",
                 f"{row.tflm_total_bytes / ours:.2f}x" if ours and row.tflm_total_bytes else "-"]
        print(f"{row.model:<32}{result:<27}{cells[0]:>11}{cells[1]:>9}{cells[2]:>11}")
    counts = {s: sum(r.status == s for r in rows)
              for s in ("bit-exact", "differ", "refused", "error", "not converted")}
    print(f"{len(rows)} models: {counts['bit-exact']} bit-exact, {counts['differ']} differ, "
          f"{counts['refused']} refused" + "".join(f", {counts[s]} {label}" for s, label in
                                                   (("error", "errors"), ("not converted",
                                                    "not converted")) if counts[s]))


# --- the Keras models (TensorFlow only from here on) -------------------------------------------

def keras_models(tf) -> dict:
    """name -> function building the Keras model (random weights, seeded)."""
    layers, apps = tf.keras.layers, tf.keras.applications

    def ds_cnn():
        x = inputs = layers.Input((49, 10, 1))
        x = layers.Conv2D(64, (10, 4), strides=(2, 2), padding="same")(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        for _ in range(4):
            x = layers.DepthwiseConv2D(3, padding="same")(x)
            x = layers.ReLU()(layers.BatchNormalization()(x))
            x = layers.Conv2D(64, 1)(x)
            x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.GlobalAveragePooling2D()(x)
        return tf.keras.Model(inputs, layers.Softmax()(layers.Dense(12)(x)))

    def conv1d_audio():
        x = inputs = layers.Input((128, 16))
        for filters in (16, 32, 32):
            x = layers.Conv1D(filters, 5, padding="same", activation="relu")(x)
            x = layers.MaxPooling1D(2)(x)
        x = layers.Flatten()(x)
        return tf.keras.Model(inputs, layers.Dense(8, activation="softmax")(x))

    def tiny_yolo():
        x = inputs = layers.Input((64, 64, 3))
        skips = []
        for filters in (8, 16, 32):
            x = layers.LeakyReLU(0.1)(layers.Conv2D(filters, 3, padding="same")(x))
            skips.append(x)
            x = layers.MaxPooling2D(2)(x)
        x = layers.LeakyReLU(0.1)(layers.Conv2D(32, 3, padding="same")(x))
        coarse = layers.Conv2D(3 * 6, 1)(x)
        x = layers.UpSampling2D(2)(layers.Conv2D(16, 1)(x))
        x = layers.Concatenate()([x, skips[-1]])
        fine = layers.Conv2D(3 * 6, 1)(layers.LeakyReLU(0.1)(layers.Conv2D(32, 3, padding="same")(x)))
        return tf.keras.Model(inputs, [layers.Reshape((-1, 6))(coarse), layers.Reshape((-1, 6))(fine)])

    def small_unet():
        x = inputs = layers.Input((32, 32, 1))
        skips = []
        for filters in (8, 16):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            skips.append(x)
            x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
        for filters, skip in zip((16, 8), reversed(skips)):
            x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same")(x)
            x = layers.Concatenate()([x, skip])
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        return tf.keras.Model(inputs, layers.Conv2D(2, 1, activation="sigmoid")(x))

    def mlp():
        x = inputs = layers.Input((64,))
        for units in (128, 64):
            x = layers.Dense(units, activation="relu")(x)
        return tf.keras.Model(inputs, layers.Dense(10, activation="softmax")(x))

    def mixed_layers():
        x = inputs = layers.Input((32, 32, 3))
        x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(x)
        y = layers.DepthwiseConv2D(3, padding="same")(x)
        x = layers.Add()([x, layers.BatchNormalization()(y)])
        gate = layers.Dense(16, activation="sigmoid")(layers.GlobalAveragePooling2D()(x))
        x = layers.Multiply()([x, layers.Reshape((1, 1, 16))(gate)])
        x = layers.AveragePooling2D(2)(layers.Activation("tanh")(x))
        x = layers.ZeroPadding2D(1)(x)
        x = layers.LeakyReLU(0.2)(layers.Conv2D(8, 3)(x))
        x = layers.Flatten()(layers.MaxPooling2D(2)(x))
        return tf.keras.Model(inputs, layers.Dense(5, activation="softmax")(layers.Dropout(0.1)(x)))

    def lstm(unroll: bool):
        # A fixed batch of 1: with Keras' dynamic batch the converter cannot lower the LSTM's
        # tensor lists to builtin ops. unroll=False gives UNIDIRECTIONAL_SEQUENCE_LSTM; unroll=True
        # the per-step FULLY_CONNECTED/SPLIT/LOGISTIC/TANH/MUL/ADD ops.
        x = inputs = layers.Input((12, 8), batch_size=1)
        x = layers.LSTM(16, unroll=unroll)(x)
        return tf.keras.Model(inputs, layers.Dense(4, activation="softmax")(x))

    return {
        "mobilenet_v1": lambda: apps.MobileNet((96, 96, 3), alpha=0.25, weights=None, classes=10),
        "mobilenet_v2": lambda: apps.MobileNetV2((96, 96, 3), alpha=0.35, weights=None, classes=10),
        "mobilenet_v3_small": lambda: apps.MobileNetV3Small(
            (96, 96, 3), alpha=0.75, weights=None, classes=10, include_preprocessing=False),
        "ds_cnn_kws": ds_cnn, "conv1d_audio": conv1d_audio, "tiny_yolo": tiny_yolo,
        "small_unet": small_unet, "mlp": mlp, "mixed_layers": mixed_layers,
        "lstm": lambda: lstm(False), "lstm_unrolled": lambda: lstm(True),
    }


def normalise_batch_norms(tf, model, seed: int = 0) -> None:
    """Set every BatchNormalization's moving statistics to those of one random batch (momentum 0,
    one training-mode call), so that activations keep unit scale through a deep random-weight
    network instead of collapsing towards zero (which leaves scales TFLite's SOFTMAX refuses)."""
    norms = [layer for layer in model._flatten_layers()
             if isinstance(layer, tf.keras.layers.BatchNormalization)]
    if not norms:
        return
    rng = np.random.default_rng(seed)
    shape = tuple(d or 8 for d in model.inputs[0].shape)
    for layer in norms:
        layer.momentum = 0.0
    model(rng.uniform(-1, 1, size=(8, *shape[1:])).astype(np.float32), training=True)


def convert_int8(tf, model, samples: int = 32, seed: int = 0) -> bytes:
    """``from_keras_model`` + int8 post-training quantisation on random representative data, int8
    input and output."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(d or 1 for d in t.shape) for t in model.inputs]

    def representative():
        for _ in range(samples):
            yield [rng.uniform(-1, 1, size=s).astype(np.float32) for s in shapes]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def convert_one(name: str, out: Path) -> int:
    """Build and convert the Keras model ``name`` into ``out/name.tflite`` (the child process of
    `build_all`); a converter error is one line on stderr and exit status 3."""
    import tensorflow as tf
    tf.keras.utils.set_random_seed(0)
    try:
        model = keras_models(tf)[name]()
        normalise_batch_norms(tf, model)
        data = convert_int8(tf, model)
    except Exception as exc:  # the converter's own refusal: report it
        message = next((line for line in str(exc).splitlines() if line.strip()), repr(exc))
        print(f"{type(exc).__name__}: {message[:200]}", file=sys.stderr)
        return 3
    (out / f"{name}.tflite").write_bytes(data)
    return 0


KERAS_MODELS = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "ds_cnn_kws", "conv1d_audio",
                "tiny_yolo", "small_unet", "mlp", "mixed_layers", "lstm", "lstm_unrolled")


def build_all(out: Path, only: set[str] | None) -> list[Path | Row]:
    """Build and convert every Keras model (or those in ``only``) into ``out``, each in a child
    process (the converter can crash: a segfault then names the model); a model that is not
    converted is a ``not converted`` `Row` in the list, in its place."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    paths = []
    for name in KERAS_MODELS:
        if only is not None and name not in only:
            continue
        result = subprocess.run([sys.executable, __file__, "--convert-one", name, "--out", str(out)],
                                capture_output=True, text=True, env=env, timeout=1200)
        path = out / f"{name}.tflite"
        if result.returncode == 0 and path.exists():
            paths.append(path)
            continue
        if result.returncode == 3:
            why = result.stderr.strip().splitlines()[-1]
        else:
            why = f"the converter crashed (exit status {result.returncode})"
        paths.append(Row(name, "not converted", why))
    return paths


def main(argv: list[str] | None = None) -> int:
    """Build (or take) the models, bench each, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="Bench every .tflite under this folder "
                                                    "instead of building Keras models.")
    parser.add_argument("--out", type=Path, help="Where the converted models are written.")
    parser.add_argument("--only", help="Comma-separated model names (Keras models or file stems).")
    parser.add_argument("--inputs", type=int, default=5, help="Random inputs per model.")
    parser.add_argument("--measure", action="store_true",
                        help="Also build for Cortex-M7 and measure the SRAM under QEMU.")
    parser.add_argument("--json", type=Path, help="Write the rows to this JSON file.")
    parser.add_argument("--convert-one", help=argparse.SUPPRESS)  # build_all's child process
    args = parser.parse_args(argv)
    if args.convert_one:
        return convert_one(args.convert_one, args.out)
    only = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory() as scratch:
        if args.models is not None:
            if not args.models.is_dir():
                print(f"{args.models}: not a folder", file=sys.stderr)
                return 2
            paths = sorted(args.models.rglob("*.tflite"))
        else:
            if importlib.util.find_spec("tensorflow") is None:  # optional: only to build models
                print("TensorFlow is not installed; nothing to convert (pip install "
                      "tensorflow-cpu, or give --models DIR)")
                return 0
            out = args.out or Path(scratch)
            paths = build_all(out, only)
        if only is not None:
            paths = [p for p in paths if isinstance(p, Row) or p.stem in only]
        rows = [path if isinstance(path, Row) else bench_model(path, args.inputs, args.measure)
                for path in paths]
    print_rows(rows, args.measure)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
