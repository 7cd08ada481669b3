"""Fashion-MNIST, MobileNetV2-w0.35 at 32x32: float vs int8 vs int4, reference runtime vs TFLite Micro.

    python benchmarks/quant_fashion_mnist.py [--model runs/.../model.pt] [--epochs 10]
        [--qat-epochs 1] [--int4-qat-epochs 1] [--out runs/quant-fmnist]

1. The float model: loaded from a ``model.pt`` that `mcuforge train` (or
   benchmarks/train_fashion_mnist.py) wrote, or trained here with the same loop and defaults.
2. Post-training quantisation (`mcuforge.quant.ptq`): BN folding, per-channel int8 weights, int8
   activations calibrated (min/max) on ``--calibration`` random training images.
3. Accuracy on the whole test set (10,000 images): float (torch) and int8 (the reference runtime,
   fed ``quantize_input`` of the same float inputs).
4. The int8 graph written with `write_tflite` runs in TFLite Micro on the whole test set; its
   outputs must equal the reference runtime's, image by image.
5. The generated C (`mcuforge.codegen`, Cortex-M7 project): the host build runs the whole test set
   and the Cortex-M7 build runs the first ``--qemu-images`` (1,000) under QEMU (mps2-an500); both
   must reproduce the reference runtime's int8 outputs. ``--no-c`` skips this step.
6. Int4 weights (int8 activations): Flash (`analysis.cost.graph_cost`, same model) and accuracy
   after PTQ, and after ``--int4-qat-epochs`` of quantisation-aware training.
7. Optional int8 QAT (``--qat-epochs``) from the float model.

Writes to ``--out``: ``model_int8.tflite``, ``model_int4.tflite``, ``test_inputs_int8.npy`` (the
first ``--export-images`` test images as int8 NHWC model input), ``test_labels.npy``,
``reference_outputs_int8.npy`` (the reference runtime's int8 logits for them: what generated C
under QEMU must reproduce), the C project ``c_cortex_m7/`` and ``quant_summary.json``. Exit status
0 when float accuracy >= 90 %, int8 is within 0.5 points of float, and TFLite Micro and the
generated C agree with the reference runtime on every image.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mcuforge.analysis.cost import graph_cost
from mcuforge.data.registry import load_dataset
from mcuforge.data.transforms import eval_batch
from mcuforge.frontends.tflite_writer import serialize_tflite, write_tflite
from mcuforge.models.zoo import get_spec
from mcuforge.quant.inference import int8_logits, quantize_input
from mcuforge.quant.ptq import quantize_spec_net
from mcuforge.quant.qat import prepare_qat
from mcuforge.train.config import TrainConfig
from mcuforge.train.loop import TrainHooks, train
from mcuforge.train.run import load_trained_model, train_spec

FLOAT_TARGET = 0.90
INT8_MAX_DROP_POINTS = 0.5


def log(message: str) -> None:
    """Print a line now."""
    print(message, flush=True)


def float_model(args: argparse.Namespace, train_set, test_set):
    """The trained float model: loaded, or trained here."""
    if args.model is not None:
        model, spec, saved = load_trained_model(args.model)
        log(f"loaded {args.model} (recorded test accuracy {saved.get('test_accuracy')})")
        return model, spec
    spec = get_spec("mobilenet-v2", width=0.35, resolution=32, num_classes=10, in_channels=1)
    config = TrainConfig(resolution=32, in_channels=1, epochs=args.epochs, threads=args.threads,
                         seed=args.seed, progress=False)
    log(f"training {spec.to_string()} for {args.epochs} epochs on {args.threads} threads")
    started = time.perf_counter()
    hooks = TrainHooks(
        on_step_end=lambda step: step.step_in_epoch % 100 == 0 and log(
            f"  epoch {step.epoch + 1} step {step.step_in_epoch} loss {step.loss:.3f} "
            f"({time.perf_counter() - started:.0f} s)"),
        on_epoch_end=lambda stats, _model: log(
            f"  epoch {stats.epoch}: test accuracy {stats.test_accuracy:.4f} ({stats.seconds:.0f} s)"))
    model, result = train_spec(spec, train_set, test_set, config, args.out / "float",
                               resume=(args.out / "float" / "checkpoint.pt").exists(), hooks=hooks,
                               dataset_name="fashion-mnist")
    log(f"float training: {result.seconds:.0f} s, test accuracy {result.test_accuracy:.4f}")
    return model.eval(), spec


def float_inputs(dataset, spec, indices: np.ndarray) -> torch.Tensor:
    """Model input (float NCHW) of the given samples."""
    images, _ = dataset.batch(indices)
    return eval_batch(images, spec.resolution, spec.in_channels)


@torch.no_grad()
def float_predictions(model, dataset, spec) -> np.ndarray:
    """Float predictions of the whole data set."""
    model.eval()
    predictions = []
    for first in range(0, len(dataset), 1000):
        x = float_inputs(dataset, spec, np.arange(first, min(first + 1000, len(dataset))))
        predictions.append(model(x).argmax(1).numpy())
    return np.concatenate(predictions)


def int8_test_inputs(graph, dataset, spec) -> np.ndarray:
    """The whole data set as int8 NHWC graph input."""
    chunks = []
    for first in range(0, len(dataset), 1000):
        x = float_inputs(dataset, spec, np.arange(first, min(first + 1000, len(dataset))))
        chunks.append(quantize_input(graph, x))
    return np.concatenate(chunks)


def tflm_logits(graph, images: np.ndarray) -> np.ndarray:
    """Every image through TFLite Micro (the pip interpreter), one invoke per image."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(serialize_tflite(graph), arena_size=4 << 20)
    outputs = np.empty((len(images),) + tuple(graph.tensor(graph.outputs[0]).shape[1:]), np.int8)
    for index, image in enumerate(images):
        interpreter.set_input(image[None], 0)
        interpreter.invoke()
        outputs[index] = np.array(interpreter.get_output(0))[0]
    return outputs


def c_outputs(graph, tflite_path: Path, images: np.ndarray, out_dir: Path, qemu_count: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """(host-build outputs of every image, QEMU Cortex-M7 outputs of the first ``qemu_count``)."""
    from mcuforge.codegen.build import build, run_host
    from mcuforge.codegen.project import compile_model
    from mcuforge.codegen.qemu import run_qemu
    from mcuforge.codegen.targets import get_core

    compile_model(graph, out_dir, "cortex-m7", source=str(tflite_path), measure=False)
    out_bytes = graph.tensor(graph.outputs[0]).nbytes
    host = run_host(build(out_dir, "host"), images.tobytes(), out_bytes, len(images), timeout_s=1800)
    elf = build(out_dir, "cortex-m7")
    run = run_qemu(elf, get_core("cortex-m7"), images[:qemu_count].tobytes(), out_bytes,
                   qemu_count, timeout_s=3600)
    shape = (-1, out_bytes)
    return (np.frombuffer(host, np.int8).reshape(shape),
            np.frombuffer(run.outputs, np.int8).reshape(shape))


def weight_bytes(graph) -> int:
    """Bytes of the conv/FC weight tensors alone (int4 packed two per byte)."""
    return sum(graph.tensor(op.inputs[1]).nbytes for op in graph.ops
               if op.kind.value in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"))


def calibration_batches(train_set, spec, count: int, seed: int) -> list[torch.Tensor]:
    """``count`` random training images (eval transform) in batches of 128."""
    order = np.random.default_rng(seed).permutation(len(train_set))[:count]
    return [float_inputs(train_set, spec, order[i:i + 128]) for i in range(0, count, 128)]


def qat(model, spec, train_set, test_set, calibration, epochs: int, bits: int, args) -> object:
    """A copy of ``model`` fine-tuned ``epochs`` with fake quantisation (``bits``-bit weights)."""
    qat_model = prepare_qat(copy.deepcopy(model), calibration, weight_bits=bits)
    if args.qat_train_limit:
        order = np.random.default_rng(args.seed + 2).permutation(len(train_set))
        train_set = train_set.subset(order[:args.qat_train_limit])
    config = TrainConfig(resolution=spec.resolution, in_channels=spec.in_channels, epochs=epochs,
                         lr=args.qat_lr, warmup_epochs=0.0, threads=args.threads, seed=args.seed + 1,
                         progress=False)
    result = train(qat_model, train_set, config, eval_dataset=test_set)
    log(f"QAT int{bits} x{epochs} epochs: {result.seconds:.0f} s, fake-quant test accuracy "
        f"{result.test_accuracy:.4f}")
    return qat_model.eval()


def accuracy_of(graph, test_set, spec) -> tuple[float, np.ndarray]:
    """(accuracy, int8 logits) of ``graph`` in the reference runtime, on the test set quantised with
    the graph's own input quantisation (QAT learns it, so it differs between graphs)."""
    images = int8_test_inputs(graph, test_set, spec)
    labels = test_set.labels
    logits = int8_logits(graph, images, batch_size=500)
    return float((logits.argmax(1) == labels).mean()), logits


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a trained model.pt (default: train one)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibration", type=int, default=512)
    parser.add_argument("--qat-epochs", type=int, default=0)
    parser.add_argument("--int4-qat-epochs", type=int, default=1)
    parser.add_argument("--qat-lr", type=float, default=0.005)
    parser.add_argument("--qat-train-limit", type=int,
                        help="fine-tune QAT on the first N (shuffled) training images only")
    parser.add_argument("--export-images", type=int, default=1000)
    parser.add_argument("--qemu-images", type=int, default=1000)
    parser.add_argument("--no-c", action="store_true", help="skip the generated-C step")
    parser.add_argument("--limit-test", type=int, help="use only the first N test images (smoke runs)")
    parser.add_argument("--out", type=Path, default=Path("runs/quant-fmnist"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    train_set = load_dataset("fashion-mnist", "train")
    test_set = load_dataset("fashion-mnist", "test")
    if args.limit_test:
        test_set = test_set.subset(np.arange(min(args.limit_test, len(test_set))))
    labels = test_set.labels
    model, spec = float_model(args, train_set, test_set)
    float_pred = float_predictions(model, test_set, spec)
    float_acc = float((float_pred == labels).mean())
    log(f"float  accuracy {float_acc:.4f}  ({len(labels):,} test images)")

    calibration = calibration_batches(train_set, spec, args.calibration, args.seed)
    graph8 = quantize_spec_net(model, calibration)
    images = int8_test_inputs(graph8, test_set, spec)
    int8_acc, logits8 = accuracy_of(graph8, test_set, spec)
    log(f"int8   accuracy {int8_acc:.4f}  (PTQ, reference runtime; drop "
        f"{100 * (float_acc - int8_acc):+.2f} points; same prediction as float on "
        f"{(logits8.argmax(1) == float_pred).mean():.2%})")

    t0 = time.perf_counter()
    tflm = tflm_logits(graph8, images)
    same_outputs = int((tflm == logits8).all(axis=1).sum())
    same_predictions = int((tflm.argmax(1) == logits8.argmax(1)).sum())
    log(f"TFLite Micro vs reference runtime: identical int8 outputs on {same_outputs:,}/{len(images):,} "
        f"images, identical predictions on {same_predictions:,} ({time.perf_counter() - t0:.0f} s)")

    write_tflite(graph8, args.out / "model_int8.tflite")
    c_ok = True
    if not args.no_c:
        t0 = time.perf_counter()
        qemu_count = min(args.qemu_images, len(images))
        host, qemu = c_outputs(graph8, args.out / "model_int8.tflite", images,
                               args.out / "c_cortex_m7", qemu_count)
        host_same = int((host == logits8).all(axis=1).sum())
        qemu_same = int((qemu == logits8[:qemu_count]).all(axis=1).sum())
        c_ok = host_same == len(images) and qemu_same == qemu_count
        log(f"generated C vs reference runtime: host build identical on {host_same:,}/{len(images):,} "
            f"images, Cortex-M7 under QEMU identical on {qemu_same:,}/{qemu_count:,} "
            f"({time.perf_counter() - t0:.0f} s)")

    graph4 = quantize_spec_net(model, calibration, weight_bits=4)
    int4_acc, _ = accuracy_of(graph4, test_set, spec)
    cost8, cost4 = graph_cost(graph8), graph_cost(graph4)
    log(f"Flash  int8 {cost8.flash_bytes:,} B  int4 {cost4.flash_bytes:,} B  ratio "
        f"{cost4.flash_bytes / cost8.flash_bytes:.3f} (graph_cost: weights + int32 biases + "
        f"requantisation data); weights alone {weight_bytes(graph8):,} B vs {weight_bytes(graph4):,} B "
        f"(ratio {weight_bytes(graph4) / weight_bytes(graph8):.3f}; the int8 classifier is kept); "
        f".tflite files {len(serialize_tflite(graph8)):,} B vs {len(serialize_tflite(graph4)):,} B")
    log(f"int4   accuracy {int4_acc:.4f}  (PTQ; drop vs float {100 * (float_acc - int4_acc):+.2f} points)")
    summary: dict[str, object] = {
        "spec": spec.to_string(), "float_accuracy": float_acc, "int8_ptq_accuracy": int8_acc,
        "int8_drop_points": 100 * (float_acc - int8_acc), "tflm_identical_outputs": same_outputs,
        "tflm_identical_predictions": same_predictions, "test_images": len(images),
        "int8_flash_bytes": cost8.flash_bytes, "int4_flash_bytes": cost4.flash_bytes,
        "int8_weight_bytes": weight_bytes(graph8), "int4_weight_bytes": weight_bytes(graph4),
        "int4_ptq_accuracy": int4_acc, "calibration_images": args.calibration,
    }
    if not args.no_c:
        summary.update({"c_host_identical_outputs": host_same, "c_qemu_identical_outputs": qemu_same,
                        "c_qemu_images": qemu_count})
    if args.int4_qat_epochs:
        qat4 = qat(model, spec, train_set, test_set, calibration, args.int4_qat_epochs, 4, args)
        graph4 = quantize_spec_net(qat4)
        int4_qat_acc, _ = accuracy_of(graph4, test_set, spec)
        log(f"int4   accuracy {int4_qat_acc:.4f}  (QAT {args.int4_qat_epochs} epoch(s); drop vs float "
            f"{100 * (float_acc - int4_qat_acc):+.2f} points)")
        summary["int4_qat_accuracy"] = int4_qat_acc
        summary["int4_qat_epochs"] = args.int4_qat_epochs
    if args.qat_epochs:
        qat8 = qat(model, spec, train_set, test_set, calibration, args.qat_epochs, 8, args)
        int8_qat_acc, _ = accuracy_of(quantize_spec_net(qat8), test_set, spec)
        log(f"int8   accuracy {int8_qat_acc:.4f}  (QAT {args.qat_epochs} epoch(s))")
        summary["int8_qat_accuracy"] = int8_qat_acc

    write_tflite(graph4, args.out / "model_int4.tflite")
    count = min(args.export_images, len(images))
    np.save(args.out / "test_inputs_int8.npy", images[:count])
    np.save(args.out / "test_labels.npy", labels[:count])
    np.save(args.out / "reference_outputs_int8.npy", logits8[:count])
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "quant_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(json.dumps(summary, indent=2))
    ok = (float_acc >= FLOAT_TARGET and 100 * (float_acc - int8_acc) <= INT8_MAX_DROP_POINTS
          and same_outputs == len(images) and c_ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
