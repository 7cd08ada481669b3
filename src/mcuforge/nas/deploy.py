"""From a float network to a measured MCU build: train (or fine-tune), quantise, score int8, compile.

Used for the searched winner (fine-tuned from its inherited supernet weights) and for baselines
(trained from scratch) alike, so both go through exactly the same steps:

1. `train.train` with checkpoints in ``run_dir/train`` (resumable), test accuracy of the float model;
2. post-training int8 quantisation (`quant.ptq.quantize_spec_net`, per-channel weights, min/max
   ranges over ``calibration_samples`` training images);
3. int8 accuracy on the test set by the bit-exact reference runtime (`quant.inference.int8_logits`);
4. C code generation, Cortex-M build and measurement (`codegen.project.compile_model`): measured SRAM
   = arena + .data + .bss + stack high-water, Flash from the ELF.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.dataset import ArrayDataset
from ..data.transforms import eval_batch
from ..errors import McuforgeError
from ..quant.inference import int8_accuracy
from ..models.dsl import NetSpec
from ..stages import Run
from ..train.checkpoint import checkpoint_path
from ..train.config import TrainConfig
from ..train.loop import train
from ..train.run import save_trained_model


@dataclass(frozen=True)
class DeployResult:
    """Figures of a deployed network."""

    spec: str
    float_accuracy: float
    int8_accuracy: float
    int8_test_samples: int
    train_seconds: float
    epochs: int
    compile_report: dict | None

    def to_dict(self) -> dict:
        """JSON-ready form (the compile report trimmed to its figures)."""
        keys = ("arena_bytes", "peak_activation_bytes", "scratch_bytes", "measured_sram_bytes", "flash_bytes",
                "stack_high_water_bytes", "instructions", "instructions_target", "macs", "target", "sram_formula")
        report = {k: self.compile_report[k] for k in keys if k in self.compile_report} if self.compile_report else None
        return {"spec": self.spec, "float_accuracy": self.float_accuracy, "int8_accuracy": self.int8_accuracy,
                "int8_test_samples": self.int8_test_samples, "train_seconds": self.train_seconds,
                "epochs": self.epochs, "compile": report}


def calibration_batches(dataset: ArrayDataset, spec: NetSpec, samples: int, seed: int,
                        batch: int = 100) -> list[torch.Tensor]:
    """Float inputs of ``samples`` seeded training images, for activation-range calibration."""
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(dataset), size=min(samples, len(dataset)), replace=False))
    out = []
    for first in range(0, len(picked), batch):
        images, _ = dataset.batch(picked[first:first + batch])
        out.append(eval_batch(images, spec.resolution, spec.in_channels))
    return out


def deploy(model: nn.Module, spec: NetSpec, train_set: ArrayDataset, test_set: ArrayDataset,
           config: TrainConfig, run_dir: str | Path, *, target_core: str | None, sram_bytes: int | None,
           resume: bool = False, calibration_samples: int = 500, int8_test_samples: int | None = None,
           dataset_name: str = "", patch: bool = False, log=print) -> DeployResult:
    """Train ``model`` (its spec is ``spec``) and take it through steps 1-4 (module doc); the compile step
    is skipped when ``target_core`` is None. With ``patch`` the C runs the patch schedule that
    ``--patch auto`` picks under ``sram_bytes`` (`codegen.patch_emit.resolve_c_patch`). A network
    the C cannot build (no schedule it runs fits, or an op without a kernel) is logged with the
    reason and left uncompiled (``compile_error`` in deploy.json). The results are the ``deploy``
    stage of a `mcuforge.stages.Run` in ``run_dir`` (``run_dir/deploy.json``), reused on ``resume``
    when they are of the same spec; the training checkpoints are in ``run_dir/train``."""
    run_dir = Path(run_dir)
    run = Run(run_dir, log=log)
    saved = run.load("deploy") if resume else None
    if saved is not None and saved.get("spec") == spec.to_string():
        log(f"  (reusing {run.result_path('deploy')})")
        return DeployResult(saved["spec"], saved["float_accuracy"], saved["int8_accuracy"],
                            saved["int8_test_samples"], saved["train_seconds"], saved["epochs"],
                            saved["compile_report"])
    train_dir = run_dir / "train"
    started = time.perf_counter()
    if config.epochs > 0:
        result = train(model, train_set, config, checkpoint_dir=train_dir,
                       resume=resume and checkpoint_path(train_dir).exists(), eval_dataset=test_set,
                       metadata={"spec": spec.to_string(), "dataset": dataset_name})
        float_acc = float(result.test_accuracy)
        save_trained_model(run_dir / "model.pt", model, spec, config, train_set.class_names, dataset_name, result)
    else:
        raise McuforgeError("deploy needs at least one training epoch")
    model = model.to(memory_format=torch.contiguous_format).eval()
    train_seconds = time.perf_counter() - started
    from ..quant.ptq import quantize_spec_net

    graph = quantize_spec_net(model, calibration_batches(train_set, spec, calibration_samples, config.seed))
    from ..frontends.tflite_writer import write_tflite

    write_tflite(graph, run_dir / "model_int8.tflite")
    acc8, scored = int8_accuracy(graph, test_set, spec.resolution, spec.in_channels, int8_test_samples)
    log(f"  float test accuracy {float_acc:.2%}, int8 {acc8:.2%} ({scored} test images, reference runtime)")
    report, compile_error = None, None
    if target_core is not None:
        from ..codegen.patch_emit import resolve_c_patch
        from ..codegen.project import compile_model

        try:
            schedule = resolve_c_patch(graph, "auto", sram_bytes) if patch else None
            report = compile_model(graph, run_dir / "c", target_core, sram_bytes, source=spec.to_string(),
                                   patch=schedule)
        except McuforgeError as error:
            compile_error = str(error)
            log(f"  not compiled: {compile_error}")
        else:
            log(f"  compiled for {target_core} ({report.get('schedule', 'layer')}): measured SRAM "
                f"{report.get('measured_sram_bytes', 0):,} B (arena {report['arena_bytes']:,} B), "
                f"Flash {report.get('flash_bytes', 0):,} B")
    out = DeployResult(spec.to_string(), float_acc, acc8, scored, train_seconds, config.epochs, report)
    run.save("deploy", {**out.to_dict(), "compile_report": report, "compile_error": compile_error})
    return out
