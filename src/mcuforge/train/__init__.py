"""Training: `train(model, dataset, config, checkpoint_dir, resume)` with exact resume (see loop.py)."""

from .config import EpochStats, TrainConfig, TrainResult
from .loop import StepInfo, TrainHooks, TrainingStopped, evaluate, train

__all__ = ["EpochStats", "StepInfo", "TrainConfig", "TrainHooks", "TrainResult", "TrainingStopped", "evaluate", "train"]
