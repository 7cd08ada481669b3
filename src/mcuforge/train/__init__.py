"""Training: `train(model, dataset, config, checkpoint_dir, resume)` with exact resume and hooks
(`loop`), its settings and results (`config`), checkpoints (`checkpoint`), progress display
(`progress`) and the `mcuforge train` job (`run`).

May import: every layer below it in `mcuforge.layers` (errors, the foundation modules (atomic,
reference, targets, layers), stages, arith, ir, ops, models, analysis, planner, patch, runtime,
codegen, frontends, rivals, data); not quant (its peer in the same layer), report or anything
above."""

from .config import EpochStats, TrainConfig, TrainResult
from .loop import StepInfo, TrainHooks, TrainingStopped, evaluate, train

__all__ = ["EpochStats", "StepInfo", "TrainConfig", "TrainHooks", "TrainResult", "TrainingStopped", "evaluate", "train"]
