"""What the stages of a search (`nas.pipeline`) share: settings, run folder, data, and the objects
earlier stages' results define (the chosen space, the trained supernet, the scorer, the constraint
check), built on first use and from the saved results when a resumed run skipped those stages.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from ..atomic import write_json_atomic
from ..data.registry import load_dataset
from ..errors import McuforgeError
from ..stages import Run
from ..targets import get_board
from .constraints import Constraints, Measurement, measure
from .evolution import SearchState
from .fitness import SubnetScorer, split_holdout
from .latency import LatencyModel, tflm_linear_model
from .sandwich import load_supernet, supernet_checkpoint_path
from .settings import RESUME_FREE, SHARES, SearchSettings
from .space import DEFAULT_WIDTHS, ArchConfig, SearchSpace
from .supernet import SuperNet


class FeasibilityCache:
    """``feasible(arch)`` for the search: constraint check of the arch's spec, cached by architecture."""

    def __init__(self, space: SearchSpace, constraints: Constraints, latency: LatencyModel | None, target):
        self.space, self.constraints, self.latency, self.target = space, constraints, latency, target
        self.results: dict[str, Measurement] = {}

    def measurement(self, arch: ArchConfig) -> Measurement:
        """The constraint check of ``arch`` (computed once)."""
        key = arch.key()
        if key not in self.results:
            self.results[key] = measure(self.space.spec(arch), self.constraints, self.latency, self.target)
        return self.results[key]

    def __call__(self, arch: ArchConfig) -> bool:
        """Whether ``arch`` meets every constraint."""
        return self.measurement(arch).fits


class SearchContext:
    """What the stages of one search share: the settings, the run folder, the data, and the objects
    that earlier stages' results define (built on first use, from the saved results on a resumed run)."""

    def __init__(self, settings: SearchSettings, run: Run, resume: bool, is_main: bool, log: Callable[[str], None]):
        self.settings, self.run, self.resume, self.is_main, self.log = settings, run, resume, is_main, log
        self.started = time.perf_counter()
        self.target = get_board(settings.target)
        self.constraints = Constraints(settings.sram_bytes, settings.flash_bytes, settings.latency_ms, settings.patch)
        self.latency = _latency_model(settings, self.target, run.folder, log) if settings.latency_ms is not None else None
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.train_full = load_dataset(settings.dataset, "train")
        self.test_set = load_dataset(settings.dataset, "test")
        self.train_part, held_out = split_holdout(self.train_full, settings.holdout, settings.seed)
        fitness_count = min(settings.fitness_samples, len(held_out))
        self.holdout = held_out.subset(list(range(fitness_count)))
        # The rest of the held-out split confirms the search's comparison on images it never scored.
        self.confirmation = held_out.subset(list(range(fitness_count, len(held_out)))) \
            if len(held_out) - fitness_count >= 500 else None
        self.supernet: SuperNet | None = None  # set by the supernet stage, else loaded from its checkpoint
        self.fitness_cache: dict[str, float] = {}
        self._space: SearchSpace | None = None
        self._scorer: SubnetScorer | None = None
        self._feasible: FeasibilityCache | None = None

    @property
    def space(self) -> SearchSpace:
        """The space stage 1 chose."""
        if self._space is None:
            self._space = SearchSpace.from_dict(self.run.result("stage1")["chosen"])
        return self._space

    @property
    def planned(self) -> SearchSettings:
        """The settings with the population and generations of the ``plan`` stage (under a time budget)."""
        if self.settings.time_budget_s is None:
            return self.settings
        plan = self.run.result("plan")
        return replace(self.settings, population=plan["population"], generations=plan["generations"])

    def trained_supernet(self) -> SuperNet:
        """The supernet the ``supernet`` stage trained (loaded from its checkpoint on a resumed run)."""
        if self.supernet is None:
            self.supernet, _ = load_supernet(supernet_checkpoint_path(self.run.stage_dir("supernet")))
            self.supernet.set_max_net()
        return self.supernet

    @property
    def scorer(self) -> SubnetScorer:
        """Held-out accuracy of a subnet with inherited weights (BN recalibrated)."""
        if self._scorer is None:
            self._scorer = SubnetScorer.from_data(self.trained_supernet(), self.train_part, self.holdout,
                                                  self.settings.recalibration_samples, self.settings.seed)
        return self._scorer

    @property
    def feasible(self) -> FeasibilityCache:
        """The constraint check of an architecture of the chosen space."""
        if self._feasible is None:
            self._feasible = FeasibilityCache(self.space, self.constraints, self.latency, self.target)
        return self._feasible

    def fitness(self, arch: ArchConfig) -> float:
        """The scorer's fitness of ``arch``, computed once per architecture across the searches."""
        if arch.key() not in self.fitness_cache:
            self.fitness_cache[arch.key()] = self.scorer(arch)
        return self.fitness_cache[arch.key()]

    def evolution_state(self) -> SearchState:
        """The evolutionary search's final state."""
        return SearchState.from_dict(self.run.result("evolution")["state"])

    def needs_device_check(self) -> bool:
        """Whether the winner is checked on a real build: it is compiled and runs layer by layer."""
        best_arch, _ = self.evolution_state().best()
        return self.settings.compile and self.feasible.measurement(best_arch).schedule == "layer-based"

    def winner(self) -> tuple[ArchConfig, float]:
        """The winner (the first candidate that fits once built, where checked) and its fitness."""
        state = self.evolution_state()
        if not self.needs_device_check():
            return state.best()
        arch = ArchConfig.from_dict(self.run.result("verified")["arch"])
        return arch, state.cache[arch.key()]


def check_resumable(run_dir: Path, settings: SearchSettings, resume: bool) -> None:
    """Refuse a fresh search over an earlier one, or a resumption with other settings (those in
    ``RESUME_FREE`` may change); then record the settings in ``settings.json``."""
    path = run_dir / "settings.json"
    if path.exists():
        if not resume:
            raise McuforgeError(f"{run_dir} holds an earlier search: resume it (--resume) or use another folder")
        try:
            saved = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise McuforgeError(f"{path}: corrupt settings file; delete the run folder to start afresh") from None
        differing = [k for k, v in settings.to_dict().items()
                     if k not in RESUME_FREE and json.loads(json.dumps(v)) != saved.get(k)]
        if differing:
            raise McuforgeError(f"{run_dir}: settings differ from the earlier run's ({', '.join(differing)})")
    write_json_atomic(path, settings.to_dict())


def _latency_model(settings: SearchSettings, target, run_dir: Path, log) -> LatencyModel:
    """The latency model the settings ask for: calibrated on generated code (cached in the run folder),
    falling back to the TFLite Micro linear model when the Cortex-M toolchain is missing."""
    if settings.latency_model == "tflm":
        model = tflm_linear_model()
    elif settings.latency_model == "codegen":
        from .latency_calibration import codegen_latency_model

        widths = settings.widths or DEFAULT_WIDTHS
        resolutions = settings.resolutions or (48,)
        reference = SearchSpace(sorted(widths)[len(widths) // 2], sorted(resolutions)[len(resolutions) // 2])
        log(f"latency model: calibrating on generated {target.core} code (unicorn counts)")
        try:
            model = codegen_latency_model(reference, target.core, run_dir / "latency_model.json")
        except McuforgeError as exc:
            log(f"  calibration failed ({exc}); using the TFLite Micro linear model")
            model = tflm_linear_model()
    else:
        raise McuforgeError(f"unknown latency model {settings.latency_model!r} (codegen or tflm)")
    rates = ", ".join(f"{name} {rate:.3f}" for name, rate in model.macs_per_instruction.items())
    log(f"latency model: {model.source} (MACs per instruction: {rates})")
    return model


def share_seconds(settings: SearchSettings, stage: str) -> float | None:
    """Seconds of the time budget that ``stage`` may take (None without a budget)."""
    return None if settings.time_budget_s is None else SHARES[stage] * settings.time_budget_s
