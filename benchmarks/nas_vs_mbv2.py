"""TinyNAS vs MobileNetV2 on Fashion-MNIST under 64 kB SRAM / 256 kB Flash (STM32F412 core).

    .venv/bin/python benchmarks/nas_vs_mbv2.py                 # the full comparison (40-min search budget)
    .venv/bin/python benchmarks/nas_vs_mbv2.py --short         # a few minutes: same steps, less training
    .venv/bin/python benchmarks/nas_vs_mbv2.py --resume        # continue an interrupted run

Both networks go through the same steps (`nas.deploy`): training, int8 post-training quantisation,
int8 test accuracy with the bit-exact reference runtime, C generation and a Cortex-M4 build whose SRAM
is measured (arena + .data + .bss + painted-stack high-water under QEMU). The baseline is MobileNetV2
scaled (width, resolution) to the largest MACs that meet the same constraints as the search's
candidates, trained from scratch with the same recipe, on the same training images and for as many
epochs as the searched network's final training (which starts from scratch too: the supernet only
ranks architectures; ``--baseline-epochs total`` adds the supernet epochs to the baseline's). The search's evolutionary result is compared
with random search at the same number of evaluated candidates. Last, stage 1 is run with and without
patch schedules to show which larger spaces patch-based execution opens up (``--patch-search`` also
runs a quick search with ``--patch`` and reports whether its winner fits layer by layer).
Bytes; 1 kB = 1024 B.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from mcuforge.data.registry import load_dataset
from mcuforge.errors import McuforgeError
from mcuforge.models.spec_torch import build_torch
from mcuforge.models.zoo import get_spec
from mcuforge.nas.constraints import Constraints, measure
from mcuforge.nas.deploy import deploy
from mcuforge.nas.pipeline import run_search
from mcuforge.nas.settings import SearchSettings, preset_settings
from mcuforge.nas.space import DEFAULT_WIDTHS, SearchSpace
from mcuforge.nas.space_opt import rank_spaces
from mcuforge.targets import get_board
from mcuforge.train.config import TrainConfig

SRAM, FLASH = 64 * 1024, 256 * 1024
FULL = {"supernet_epochs": 1, "supernet_train_samples": None, "finetune_epochs": 3, "population": 16,
        "generations": 6, "space_samples": 1000, "holdout": 5000, "fitness_samples": 2000,
        "recalibration_samples": 1000, "int8_test_samples": None, "finetune_train_samples": None}
SHORT = {"supernet_epochs": 1, "supernet_train_samples": 8000, "finetune_epochs": 1, "population": 8,
         "generations": 3, "space_samples": 200, "holdout": 2000, "fitness_samples": 1000,
         "recalibration_samples": 500, "int8_test_samples": 2000, "finetune_train_samples": 12000}


def scaled_mobilenet_v2(constraints: Constraints, in_channels: int, classes: int,
                        resolutions: tuple[int, ...]) -> tuple[float, int, object]:
    """(width, resolution, spec) of the MobileNetV2 with the most MACs that meets ``constraints``."""
    best = None
    for width in [w / 100 for w in range(10, 101, 5)]:
        for resolution in resolutions:
            try:
                spec = get_spec("mobilenet-v2", resolution=resolution, width=width, num_classes=classes,
                                in_channels=in_channels)
            except McuforgeError:
                continue
            result = measure(spec, constraints)
            if result.fits and (best is None or result.macs > best[0]):
                best = (result.macs, width, resolution, spec)
    if best is None:
        raise McuforgeError("no MobileNetV2 width/resolution fits the limits")
    return best[1], best[2], best[3]


def patch_stage_one(samples: int, seed: int) -> None:
    """Stage 1 with and without patch schedules over a wider resolution range."""
    spaces = [SearchSpace(w, r, 1, 10) for w in DEFAULT_WIDTHS[:4] for r in (48, 64, 80, 96, 112)]
    for patch in (False, True):
        started = time.perf_counter()
        ranked = rank_spaces(spaces, Constraints(SRAM, FLASH, patch=patch), samples, seed)
        top = ranked[0]
        print(f"stage 1 {'with' if patch else 'without'} patch schedules: chosen {top.space.name} "
              f"(fit {top.fit_fraction:.0%}, mean {top.mean_macs / 1e6:.2f} MMACs"
              + (f", {top.patched_fraction:.0%} of samples need patches" if patch else "")
              + f"), {time.perf_counter() - started:.0f} s")


def _row(name: str, row: dict, macs: int, peak: int) -> str:
    compiled = row.get("compile") or {}

    def size(key: str) -> str:
        return f"{compiled[key]:,} B" if key in compiled else "n/a"

    return (f"| {name} | {macs / 1e6:.2f} | {peak:,} B | {size('measured_sram_bytes')} | {size('flash_bytes')} | "
            f"{row['float_accuracy']:.2%} | {row['int8_accuracy']:.2%} |")


def main() -> None:
    """Run the comparison and print both networks' figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="a few-minute version (less training)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-nas-vs-mbv2"))
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-budget", type=float, default=40.0,
                        help="minutes for the whole search (full version; 0: the fixed FULL amounts): the "
                             "supernet, search and final training stop at their shares of it (nas.settings)")
    parser.add_argument("--patch-search", action="store_true", help="also run a quick search with --patch")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--train-samples", type=int, help="cap the supernet and fine-tuning (and baseline) "
                        "training sets at N images")
    parser.add_argument("--int8-test-samples", type=int, help="score int8 accuracy on the first N test images")
    parser.add_argument("--baseline-epochs", choices=("final", "total"), default="final",
                        help="MobileNetV2's epochs: as many as the winner's final training (final: both trained "
                             "from scratch with the same recipe) or its supernet + final epochs (total)")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    amounts = dict(SHORT if args.short else FULL)
    if args.train_samples:
        amounts["supernet_train_samples"] = amounts["finetune_train_samples"] = args.train_samples
    if args.int8_test_samples:
        amounts["int8_test_samples"] = args.int8_test_samples
    target = get_board("stm32f412")
    settings = SearchSettings(SRAM, FLASH, dataset="fashion-mnist", target=target.name, seed=args.seed,
                              threads=args.threads, progress=False, compile=not args.no_compile,
                              resolutions=(32, 48, 64),
                              time_budget_s=args.time_budget * 60 if args.time_budget and not args.short else None,
                              **amounts)
    print(f"TinyNAS vs MobileNetV2, Fashion-MNIST, {SRAM // 1024} kB SRAM / {FLASH // 1024} kB Flash, "
          f"{target.name} ({target.core}), {args.threads} threads{' (short version)' if args.short else ''}")
    report = run_search(settings, args.out / "nas", resume=args.resume, log=print)
    nas = report["deploy"]
    print(f"search (stage 1 to the compiled winner) took {report['seconds'] / 60:.1f} min")

    constraints = Constraints(SRAM, FLASH)
    width, resolution, spec = scaled_mobilenet_v2(constraints, 1, 10, (32, 48, 64, 80, 96))
    epochs = settings.finetune_epochs + (settings.supernet_epochs if args.baseline_epochs == "total" else 0)
    print(f"the winner was trained {settings.finetune_epochs} epochs from {settings.winner_init}; "
          f"MobileNetV2 gets {epochs}")
    train_set = load_dataset("fashion-mnist", "train")
    test_set = load_dataset("fashion-mnist", "test")
    if report["final_training_samples"] < len(train_set):  # the images the winner was trained on
        train_set = train_set.subset(list(range(report["final_training_samples"])))
    print(f"baseline: MobileNetV2 w{width} r{resolution} ({measure(spec, constraints).macs / 1e6:.2f} MMACs), "
          f"{epochs} epochs from scratch on {len(train_set)} images")
    torch.manual_seed(args.seed)
    config = TrainConfig(resolution=resolution, in_channels=1, epochs=epochs, batch_size=128, seed=args.seed,
                         threads=args.threads, progress=False)
    mbv2 = deploy(build_torch(spec), spec, train_set, test_set, config, args.out / "mbv2",
                  target_core=None if args.no_compile else target.core, sram_bytes=SRAM, resume=args.resume,
                  int8_test_samples=settings.int8_test_samples, dataset_name="fashion-mnist", log=print)
    mbv2 = mbv2.to_dict()

    print("\n| model | MMACs | analytic peak | measured SRAM (C) | Flash (C) | float acc | int8 acc |")
    print("|---|---|---|---|---|---|---|")
    mbv2_measure = measure(spec, constraints)
    print(_row("TinyNAS", nas, report["winner"]["macs"], report["winner"]["peak_sram_bytes"]))
    print(_row(f"MobileNetV2 w{width} r{resolution}", mbv2, mbv2_measure.macs, mbv2_measure.peak_sram_bytes))
    for name, row in (("TinyNAS", nas), ("MobileNetV2", mbv2)):
        built = row.get("compile") or {}
        sram, flash = built.get("measured_sram_bytes"), built.get("flash_bytes")
        verdict = "fits" if sram is not None and sram <= SRAM and flash is not None and flash <= FLASH \
            else "does NOT fit (or was not built)"
        print(f"{name}: measured SRAM of the generated C {sram} B (limit {SRAM}), Flash {flash} B "
              f"(limit {FLASH}) -> {verdict}")
    print(f"int8 accuracy: TinyNAS {nas['int8_accuracy']:.2%} vs MobileNetV2 {mbv2['int8_accuracy']:.2%} "
          f"({nas['int8_test_samples']} test images) -> "
          f"{'TinyNAS better' if nas['int8_accuracy'] > mbv2['int8_accuracy'] else 'TinyNAS NOT better'}")
    evo, rnd = report["evolution"], report["random_search"]
    print(f"search: evolution best held-out {evo['best_fitness']:.2%} vs random search {rnd['best_fitness']:.2%} "
          f"at {rnd['evaluations']} evaluated candidates each -> "
          f"{'evolution better' if evo['best_fitness'] > rnd['best_fitness'] else 'evolution NOT better'}")
    if rnd.get("confirmation"):
        c = rnd["confirmation"]
        print(f"  confirmed on {c['images']} held-out images the search never scored: evolution {c['evolution']:.2%}, "
              f"random {c['random']:.2%}")
    patch_stage_one(100 if args.short else 300, args.seed)
    if args.patch_search:
        patch_settings = preset_settings("quick", sram_bytes=SRAM, flash_bytes=FLASH, patch=True,
                                         resolutions=(64, 80, 96), widths=(0.2, 0.3), threads=args.threads,
                                         progress=False, compile=False, seed=args.seed)
        patched = run_search(patch_settings, args.out / "nas-patch", resume=args.resume, log=print)
        winner = patched["winner"]
        print(f"--patch winner: {patched['space']['name']}, layer-based peak {winner['peak_layer_bytes']:,} B, "
              f"with schedule {winner['schedule']} {winner['peak_sram_bytes']:,} B (activation budget "
              f"{patched['constraints']['sram_bytes'] - patched['constraints']['sram_reserve_bytes']:,} B) -> "
              f"{'layer-based could NOT fit it' if not winner['layer_based_fits'] else 'fits layer-based too'}")
    print(f"\ntotal {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
