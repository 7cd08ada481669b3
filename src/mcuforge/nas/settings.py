"""Settings of a TinyNAS run, the "quick" and "full" presets, and the time-budget planner.

``quick`` searches a Fashion-MNIST-size problem in a few minutes on two CPU cores (small supernet
training subset, small population); ``full`` is MCUNet's recipe scaled to a CPU (1000 samples per space,
more supernet epochs, population 20 x 10 generations). With ``time_budget_s`` the amounts of work are
derived from measured costs instead (`plan_for_budget`): the budget is shared out as supernet training
35%, search 30% (split between evolution and, when compared, random search: enough evaluations for
several generations), the winner's final training 25%, and the rest for quantisation, int8 scoring
and compilation. The shares are also deadlines (`pipeline.run_search`), since costs measured at the
start do not hold on a machine whose load changes: the supernet training stops at its share, no
new generation starts after the evolution's, and the final training's images are re-planned from
the time left and the step cost measured just before it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..errors import McuforgeError


# How the winner's final training starts: from fresh weights ("scratch", the default: with the short
# supernet training a CPU affords, inherited weights train worse: on Fashion-MNIST the same winner
# reached 78.2% after 2 epochs from its supernet weights and 87.2% after 3 from scratch), or from the
# weights it inherits from the supernet ("supernet", once-for-all's fine-tuning).
WINNER_INITS = ("scratch", "supernet")


@dataclass(frozen=True)
class SearchSettings:
    """Everything that decides a search run (limits in bytes, 1 kB = 1024 B)."""

    sram_bytes: int
    flash_bytes: int
    dataset: str = "fashion-mnist"
    target: str = "stm32f412"
    latency_ms: float | None = None
    latency_model: str = "codegen"
    patch: bool = False
    widths: tuple[float, ...] | None = None
    resolutions: tuple[int, ...] | None = None
    space_samples: int = 1000
    supernet_epochs: int = 4
    supernet_train_samples: int | None = None
    batch_size: int = 128
    population: int = 20
    generations: int = 10
    holdout: int = 5000
    fitness_samples: int = 2000
    recalibration_samples: int = 1000
    finetune_epochs: int = 4
    finetune_train_samples: int | None = None
    winner_init: str = "scratch"
    compare_random: bool = True
    compile: bool = True
    int8_test_samples: int | None = None
    time_budget_s: float | None = None
    seed: int = 0
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.winner_init not in WINNER_INITS:
            raise McuforgeError(f"winner_init must be one of {', '.join(WINNER_INITS)}, "
                                f"not {self.winner_init!r}")

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "SearchSettings":
        """Inverse of `to_dict` (unknown keys ignored; lists become tuples)."""
        known = {f.name for f in fields(cls)}
        clean = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in known}
        return cls(**clean)


PRESETS = {
    "quick": {"space_samples": 300, "supernet_epochs": 1, "supernet_train_samples": 6000, "population": 8,
              "generations": 3, "holdout": 2000, "fitness_samples": 1000, "recalibration_samples": 500,
              "finetune_epochs": 1, "finetune_train_samples": 10000, "compare_random": False,
              "int8_test_samples": 1000, "resolutions": (32, 48)},
    "full": {},
}

# Settings that may change between a run and its resumption.
RESUME_FREE = frozenset({"threads", "progress", "compile", "int8_test_samples"})


def preset_settings(name: str, **overrides) -> SearchSettings:
    """The settings of preset ``name`` ("quick" or "full") with ``overrides`` (None values ignored)."""
    if name not in PRESETS:
        raise McuforgeError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    values = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return SearchSettings(**values)


@dataclass(frozen=True)
class BudgetPlan:
    """Amounts of work that fit a time budget, with the measured costs they come from."""

    supernet_train_samples: int
    population: int
    generations: int
    finetune_train_samples: int
    seconds_per_sandwich_step: float
    seconds_per_fitness: float
    seconds_per_train_step: float

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    def apply(self, settings: SearchSettings) -> SearchSettings:
        """``settings`` with the planned amounts."""
        return replace(settings, supernet_train_samples=self.supernet_train_samples, population=self.population,
                       generations=self.generations, finetune_train_samples=self.finetune_train_samples)


# Shares of a time budget (module doc); the remaining 10% is for quantisation, scoring and the build.
SHARES = {"supernet": 0.35, "search": 0.30, "final_training": 0.25}
RESERVE_SHARE = 1.0 - sum(SHARES.values())
MIN_GENERATIONS, MIN_POPULATION = 3, 8


def plan_for_budget(settings: SearchSettings, budget_s: float, train_size: int, sandwich_step_s: float,
                    fitness_s: float, train_step_s: float) -> BudgetPlan:
    """Share ``budget_s`` seconds out (module doc) given the measured cost of one sandwich step (global
    batch), one fitness evaluation and one plain training step."""
    batch = settings.batch_size
    supernet_steps = SHARES["supernet"] * budget_s / max(sandwich_step_s, 1e-6)
    supernet_samples = int(min(train_size, supernet_steps * batch / settings.supernet_epochs))
    evaluations = SHARES["search"] * budget_s / max(fitness_s, 1e-6) / (2 if settings.compare_random else 1)
    # Several generations matter more than a wide population: evolution with one generation is
    # hardly more than random sampling. Aim for the settings' population; when the evaluations do
    # not allow MIN_GENERATIONS of it, shrink the population (down to MIN_POPULATION) first.
    population = max(MIN_POPULATION, min(settings.population,
                                         int(evaluations // (MIN_GENERATIONS + 1))))
    generations = max(1, min(settings.generations, int(evaluations // population) - 1))
    finetune_steps = SHARES["final_training"] * budget_s / max(train_step_s, 1e-6)
    finetune_samples = int(min(train_size, finetune_steps * batch / settings.finetune_epochs))
    return BudgetPlan(max(batch, supernet_samples), population, generations, max(batch, finetune_samples),
                      sandwich_step_s, fitness_s, train_step_s)
