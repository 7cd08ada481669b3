"""Fashion-MNIST, MobileNetV2-w0.35 at 32x32, on the CPU: test accuracy within 10 epochs.

    python benchmarks/train_fashion_mnist.py [--epochs 10] [--threads 2] [--out runs/bench-fmnist]

Trains the zoo's ``mobilenet-v2`` at width 0.35 and resolution 32 with one input channel (the data
are 28x28 gray, resized to 32x32) and 10 classes, with the defaults of `mcuforge train` (SGD with
Nesterov momentum, lr 0.1, cosine schedule with half an epoch of warm-up, label smoothing 0.1,
random horizontal flips), and prints the per-epoch figures, the final test accuracy and the time.
``--resume`` continues a run killed part way. The issue's target: >= 90 % in <= 10 epochs.

Measured with seed 0 and 1 thread on a 2-core machine shared with other jobs: flips only (the
default) 91.04 % after 10 epochs, 45-280 s per epoch depending on the load; no augmentation
91.17 %; random crop + flips 89.41 %. `mcuforge train mobilenet-v2 -w 0.35 -r 32 --threads 1`,
killed with SIGKILL in epoch 4 and resumed with --resume, ended with weights bit-identical to this
script's uninterrupted run (all 314 state tensors). Under heavy CPU contention use ``--threads 1``:
two threads fighting other processes ran about 20x slower per step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from mcuforge.data.registry import load_dataset
from mcuforge.models.zoo import get_spec
from mcuforge.train.config import TrainConfig
from mcuforge.train.loop import TrainHooks
from mcuforge.train.run import train_spec

TARGET_ACCURACY = 0.90


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when the target accuracy is reached, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-fmnist-mbv2-w0.35-r32"))
    parser.add_argument("--crop", action="store_true", help="add a random crop to the flips")
    parser.add_argument("--no-augment", action="store_true", help="no augmentation at all")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    train_set = load_dataset("fashion-mnist", "train")
    test_set = load_dataset("fashion-mnist", "test")
    spec = get_spec("mobilenet-v2", width=0.35, resolution=32, num_classes=10, in_channels=1)
    config = TrainConfig(resolution=32, in_channels=1, epochs=args.epochs, batch_size=args.batch_size,
                         optimizer=args.optimizer, seed=args.seed, threads=args.threads,
                         random_crop=args.crop, augment=not args.no_augment,
                         progress=not args.quiet)
    print(f"model: {spec.to_string()}", flush=True)
    print(f"torch {torch.__version__}, {args.threads} threads, {len(train_set):,} train / {len(test_set):,} test",
          flush=True)
    started = time.perf_counter()
    hooks = TrainHooks(on_epoch_end=lambda stats, model: print(
        f"epoch {stats.epoch:2d}: train loss {stats.train_loss:.4f} acc {stats.train_accuracy:.4f}  "
        f"test acc {stats.test_accuracy:.4f}  {stats.seconds:.1f} s", flush=True))
    _, result = train_spec(spec, train_set, test_set, config, args.out, resume=args.resume, hooks=hooks,
                           dataset_name="fashion-mnist")
    wall = time.perf_counter() - started
    summary = {
        "model": "mobilenet-v2 w0.35 r32 in1", "epochs": len(result.history),
        "optimizer": args.optimizer, "augmentation": "none" if args.no_augment else
        ("crop+flip" if args.crop else "flip"),
        "test_accuracy": result.test_accuracy,
        "epoch_seconds": [round(s.seconds, 1) for s in result.history],
        "training_seconds": round(sum(s.seconds for s in result.history), 1),
        "wall_seconds_this_process": round(wall, 1), "threads": args.threads,
        "target": TARGET_ACCURACY, "reached": result.test_accuracy >= TARGET_ACCURACY,
    }
    print(json.dumps(summary, indent=2))
    return 0 if summary["reached"] else 1


if __name__ == "__main__":
    sys.exit(main())
