"""torchvision's MobileNetV3-Small through every import path: PyTorch (torch.export) and ONNX, float
and QDQ-quantised, each to an int8 graph checked bit for bit against TFLite Micro and its generated C.

Runs where torchvision imports (it does not beside the project's torch 2.13.0 wheel; a side venv
with ``torch==2.14.1 torchvision==0.29.1`` and mcuforge's other dependencies works, with
``PYTHONPATH=src``); elsewhere it says so in one line and exits 0.

The model: ``torchvision.models.mobilenet_v3_small(num_classes=10)``, torchvision's own random
initialisation (``torch.manual_seed(seed)``), eval mode. torchvision initialises batch norms to
mean 0 / variance 1, which, with its conv init, shrinks the logits to ~1e-10 and makes any
comparison meaningless; so the batch norms first take the statistics of one batch of images, as a
trained network's would (`mcuforge.quant.calibrate.batch_norm_statistics`; ``--raw-batch-norms``
keeps torchvision's). Data: seeded smooth random images (8x8 uniform noise, bilinearly resized),
normalised with ImageNet's mean and std, NCHW;
calibration, held-out and batch-norm images are three different draws.

1. **torch.export**: ``mcuforge.from_torch(model, x, calibration=...)`` (graph PTQ) -> int8 graph;
   ``mcuforge compile model.pt2 --calibration calib.npy`` must give the same int8 model.
2. **float ONNX**: ``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``: the dynamo one
   needs onnxscript) -> ``mcuforge import model.onnx --calibration calib.npy``.
3. **QDQ ONNX**: ``onnxruntime.quantization.quantize_static`` (QDQ, int8 activations and weights,
   per-channel, calibrated on the same images) -> ``mcuforge import q.onnx`` (no calibration).

For each int8 graph: our reference runtime against the tflite-micro interpreter on ``--tflm``
held-out inputs (every output byte equal), the generated C against the reference runtime on
``--c-inputs`` held-out inputs (host build, and the Cortex-M4 build under QEMU when the Arm toolchain
is there), and agreement on ``--held-out`` inputs: argmax agreement and largest absolute difference
of dequantised outputs against the float model (paths 1, 2: torch, onnxruntime's float run) and,
for QDQ, against onnxruntime's own int8 execution of the QDQ model.

``PYTHONPATH=src /tmp/tvvenv/bin/python benchmarks/torchvision_models.py`` (torch 2.14.1+cu130 on
the CPU, torchvision 0.29.1, onnxruntime 1.32.0; 64x64 input; 2026-12-06) printed::

    mcuforge compile model.pt2 --calibration calib.npy --core host: exit 0, its model.tflite is byte for byte the from_torch graph
    path                             ops  TFLM            C == reference                    against             argmax max abs diff    span
    torch.export -> graph PTQ        117  bit-exact (10)  host equal, QEMU M4 equal (5)     torch float          81.0%       0.1134  0.2918
    float ONNX -> mcuforge import    117  bit-exact (10)  host equal, QEMU M4 equal (5)     onnxruntime float    86.0%       0.1121  0.2918
    QDQ ONNX -> mcuforge import      119  bit-exact (10)  host equal, QEMU M4 equal (5)     onnxruntime int8     89.0%      0.02226  0.1576
    (onnxruntime int8 itself)          -  -               -                                 torch float          80.0%        0.109  0.2918

in 6 min 39 s on the shared 2-core machine (later runs: 5 min 48 s, 4 min 16 s; same figures).
The QDQ row's C ran the QDQ graph's int8 core (its float input QUANTIZE and output DEQUANTIZE are
the caller's edges). The last row puts onnxruntime's own int8 model against the float model: its
error is the size of ours, so the gap is this random network's sensitivity to int8 rounding rather
than a weakness of our quantiser (the hand-written MobileNetV3-Small of tests/torch_models.py, with
PyTorch's default initialisation, agrees 100 % in tests/test_torch_import.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PathResult:
    """The figures of one import path."""

    path: str
    ops: int
    tflm: str
    c: str
    against: str
    argmax_agreement: float
    max_abs_diff: float
    output_span: float


def smooth_images(count: int, seed: int, resolution: int):
    """Seeded smooth random images, ImageNet-normalised, NCHW float32 (a torch tensor)."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    low = torch.rand(count, 3, 8, 8, generator=generator)
    x = F.interpolate(low, size=(resolution, resolution), mode="bilinear", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).float()


def tflm_check(graph, inputs: list[np.ndarray]) -> str:
    """Our reference runtime vs the tflite-micro interpreter on ``inputs`` (the graph's own input
    dtype): 'bit-exact (N)' or how many outputs differ."""
    from tflite_micro.python.tflite_micro import runtime

    from mcuforge.frontends.tflite_writer import serialize_tflite
    from mcuforge.runtime.reference import Interpreter

    ours = Interpreter(graph)
    model_bytes = serialize_tflite(graph)
    tflm = runtime.Interpreter.from_bytes(model_bytes, arena_size=16 * 1024 * 1024)
    differ = 0
    for x in inputs:
        tflm.set_input(x, 0)
        tflm.invoke()
        differ += int(not np.array_equal(tflm.get_output(0), ours.invoke([x])[0]))
    del tflm, model_bytes
    return f"bit-exact ({len(inputs)})" if differ == 0 else f"{differ} of {len(inputs)} differ"


def c_check(graph, float_inputs: list[np.ndarray], workdir: Path, qemu: bool) -> str:
    """The generated C (host build; Cortex-M4 under QEMU when ``qemu``) vs the reference runtime on
    ``float_inputs`` (NHWC), quantised to the int8 graph's input codes."""
    from mcuforge.codegen.build import build, run_host
    from mcuforge.codegen.edges import strip_edge_conversions
    from mcuforge.codegen.emit import generate, write_project
    from mcuforge.codegen.qemu import run_qemu
    from mcuforge.codegen.targets import TARGETS
    from mcuforge.quant.graph_ptq import quantize_input
    from mcuforge.runtime.reference import Interpreter

    int8 = strip_edge_conversions(graph).graph
    codes = [quantize_input(int8, x) for x in float_inputs]
    interpreter = Interpreter(int8)
    expected = b"".join(np.asarray(interpreter.invoke([c])[0]).tobytes() for c in codes)
    packed = b"".join(c.tobytes() for c in codes)
    out_size = len(expected) // len(codes)
    target = TARGETS["cortex-m4"]
    project = workdir / "project"
    write_project(generate(int8, target), project)
    runs = {"host": run_host(build(project, "host"), packed, out_size, len(codes))}
    if qemu:
        runs["QEMU M4"] = run_qemu(build(project, "cortex-m4"), target, packed, out_size,
                                   len(codes)).outputs
    parts = []
    for runner, produced in runs.items():
        differ = int(np.count_nonzero(np.frombuffer(produced, np.int8) != np.frombuffer(expected, np.int8)))
        parts.append(f"{runner} {'equal' if differ == 0 else f'{differ} B differ'}")
    return f"{', '.join(parts)} ({len(codes)})"


def agreement(reference: list[np.ndarray], ours: list[np.ndarray]) -> tuple[float, float, float]:
    """(argmax agreement, max abs difference, reference output span) of two output lists."""
    agree = np.mean([np.argmax(r) == np.argmax(o) for r, o in zip(reference, ours)])
    diff = max(float(np.max(np.abs(np.ravel(r) - np.ravel(o)))) for r, o in zip(reference, ours))
    span = float(max(np.max(r) for r in reference) - min(np.min(r) for r in reference))
    return float(agree), diff, span


def int8_outputs(graph, float_inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Dequantised outputs of the int8 graph (reference runtime) on NHWC float inputs; a float-I/O
    graph (QDQ) takes the floats itself."""
    from mcuforge.ir import DType
    from mcuforge.quant.graph_ptq import dequantize_output, quantize_input
    from mcuforge.runtime.reference import Interpreter

    interpreter = Interpreter(graph)
    float_io = graph.tensor(graph.inputs[0]).dtype is DType.FLOAT32
    outputs = []
    for x in float_inputs:
        if float_io:
            outputs.append(np.asarray(interpreter.invoke([x.astype(np.float32)])[0], np.float64))
        else:
            outputs.append(dequantize_output(graph, interpreter.invoke([quantize_input(graph, x)])[0]))
    return outputs


def graph_inputs(graph, nhwc: list[np.ndarray]) -> list[np.ndarray]:
    """What the graph's input takes: int8 codes, or the floats of a float-I/O graph."""
    from mcuforge.ir import DType
    from mcuforge.quant.graph_ptq import quantize_input

    if graph.tensor(graph.inputs[0]).dtype is DType.FLOAT32:
        return [x.astype(np.float32) for x in nhwc]
    return [quantize_input(graph, x) for x in nhwc]


def check_graph(name: str, graph, held_nhwc, reference, against: str, args, workdir: Path
                ) -> PathResult:
    """TFLM, C and agreement figures of one int8 graph."""
    print(f"[{name}] TFLite Micro ...", file=sys.stderr, flush=True)
    tflm = tflm_check(graph, graph_inputs(graph, held_nhwc[:args.tflm]))
    print(f"[{name}] generated C ...", file=sys.stderr, flush=True)
    workdir.mkdir(parents=True, exist_ok=True)
    c = c_check(graph, held_nhwc[:args.c_inputs], workdir, args.qemu)
    print(f"[{name}] agreement on {len(held_nhwc)} inputs ...", file=sys.stderr, flush=True)
    agree, diff, span = agreement(reference, int8_outputs(graph, held_nhwc))
    return PathResult(name, len(graph.ops), tflm, c, against, agree, diff, span)


def cli(argv: list[str]) -> int:
    """Run one mcuforge command in this process; its output goes to stderr (progress)."""
    import contextlib

    from mcuforge.cli import main as mcuforge
    print(f"$ mcuforge {' '.join(argv)}", file=sys.stderr, flush=True)
    with contextlib.redirect_stdout(sys.stderr):
        return mcuforge(argv)


def run(args) -> list[PathResult]:
    """All three paths; the table rows."""
    import onnxruntime as ort
    import torch
    import torchvision

    from mcuforge.frontends.tflite import read_tflite
    from mcuforge.frontends.tflite_writer import serialize_tflite
    from mcuforge.quant.calibrate import batch_norm_statistics
    from mcuforge.quant.onnx_ptq import from_onnx
    from mcuforge.quant.torch_import import from_torch, to_ir_layout

    out = Path(args.out)
    torch.manual_seed(args.seed)
    model = torchvision.models.mobilenet_v3_small(num_classes=10).eval()
    r = args.resolution
    calib = smooth_images(args.calibration, args.seed + 1, r)
    held = smooth_images(args.held_out, args.seed + 2, r)
    if not args.raw_batch_norms:
        batch_norm_statistics(model, [smooth_images(64, args.seed + 3, r)])
    np.save(out / "calib.npy", calib.numpy())
    with torch.no_grad():
        torch_out = [y[None] for y in model(held).numpy()]
    rows = []

    print("[torch.export] from_torch + graph PTQ ...", file=sys.stderr, flush=True)
    int8 = from_torch(model, calib[:1], calibration=calib, name="mobilenet_v3_small")
    held_nhwc = to_ir_layout(int8, held)
    rows.append(check_graph("torch.export -> graph PTQ", int8, held_nhwc, torch_out, "torch float",
                            args, out / "c_torch"))
    pt2 = out / "mobilenet_v3_small.pt2"
    torch.export.save(torch.export.export(model, (calib[:1],)), str(pt2))
    code = cli(["compile", str(pt2), "--calibration", str(out / "calib.npy"), "--samples",
                str(args.calibration), "-o", str(out / "compiled_pt2"), "--core", "host"])
    same = code == 0 and (out / "compiled_pt2" / "model.tflite").read_bytes() == serialize_tflite(int8)
    compile_line = (f"mcuforge compile model.pt2 --calibration calib.npy --core host: exit {code}, "
                    f"its model.tflite is {'byte for byte' if same else 'NOT'} the from_torch graph")

    print("[onnx] torch.onnx.export (TorchScript exporter) ...", file=sys.stderr, flush=True)
    onnx_path = out / "mobilenet_v3_small.onnx"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(model, (calib[:1],), str(onnx_path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["logits"])
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_float = [session.run(None, {"x": x[None].numpy()})[0] for x in held]
    tflite_path = out / "mobilenet_v3_small_onnx.tflite"
    code = cli(["import", str(onnx_path), "-o", str(tflite_path), "--calibration",
                     str(out / "calib.npy"), "--samples", str(args.calibration)])
    if code != 0:
        raise SystemExit(f"mcuforge import {onnx_path} failed (exit {code})")
    rows.append(check_graph("float ONNX -> mcuforge import", read_tflite(tflite_path), held_nhwc,
                            ort_float, "onnxruntime float", args, out / "c_onnx"))

    print("[qdq] onnxruntime quantize_static (QDQ, per-channel) ...", file=sys.stderr, flush=True)
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": x[None].numpy()} for x in calib])

        def get_next(self):
            return next(self.items, None)

    qdq_path = out / "mobilenet_v3_small_qdq.onnx"
    quantize_static(str(onnx_path), str(qdq_path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
    q_session = ort.InferenceSession(str(qdq_path), providers=["CPUExecutionProvider"])
    ort_int8 = [q_session.run(None, {"x": x[None].numpy()})[0] for x in held]
    qdq_tflite = out / "mobilenet_v3_small_qdq.tflite"
    code = cli(["import", str(qdq_path), "-o", str(qdq_tflite)])
    if code != 0:
        raise SystemExit(f"mcuforge import {qdq_path} failed (exit {code})")
    qdq_graph = from_onnx(qdq_path)
    rows.append(check_graph("QDQ ONNX -> mcuforge import", qdq_graph, held_nhwc, ort_int8,
                            "onnxruntime int8", args, out / "c_qdq"))
    float_agree = agreement(torch_out, ort_int8)
    rows.append(PathResult("(onnxruntime int8 itself)", 0, "-", "-", "torch float", *float_agree))
    print(compile_line)
    return rows


def print_table(rows: list[PathResult]) -> None:
    """The table of the docstring."""
    print(f"{'path':<31} {'ops':>4}  {'TFLM':<15} {'C == reference':<33} {'against':<18} "
          f"{'argmax':>7} {'max abs diff':>12} {'span':>7}")
    for r in rows:
        print(f"{r.path:<31} {r.ops or '-':>4}  {r.tflm:<15} {r.c:<33} {r.against:<18} "
              f"{r.argmax_agreement:>7.1%} {r.max_abs_diff:>12.4g} {r.output_span:>7.4g}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the three paths and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--calibration", type=int, default=64, help="calibration images")
    parser.add_argument("--held-out", type=int, default=100, help="images for the agreement")
    parser.add_argument("--tflm", type=int, default=10, help="held-out images run in TFLite Micro")
    parser.add_argument("--c-inputs", type=int, default=5, help="held-out images run in the C")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-qemu", dest="qemu", action="store_false",
                        help="only the host build of the C (default: also Cortex-M4 under QEMU "
                             "when arm-none-eabi-gcc and qemu-system-arm are installed)")
    parser.add_argument("--raw-batch-norms", action="store_true",
                        help="keep torchvision's batch-norm statistics (mean 0, variance 1)")
    parser.add_argument("--out", default=None, help="folder for the models and projects "
                                                    "(default: a temporary folder)")
    args = parser.parse_args(argv)
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # ImportError, or the RuntimeError of a mismatched torch
        print(f"torchvision is not importable here ({type(exc).__name__}: "
              f"{str(exc).splitlines()[0] if str(exc) else ''}); see the module doc for a venv "
              "where it is; nothing measured")
        return 0
    args.qemu = args.qemu and bool(shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"))
    with tempfile.TemporaryDirectory(prefix="mcuforge-tv-") as tmp:
        if args.out is None:
            args.out = tmp
        Path(args.out).mkdir(parents=True, exist_ok=True)
        print_table(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
