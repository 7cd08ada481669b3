"""Settings of a TinyNAS run, the "quick" and "full" presets, and the time-budget planner.

``quick`` searches a Fashion-MNIST-size problem in a few minutes on two CPU cores (small supernet
training subset, small population); ``full`` is MCUNet's recipe scaled to a CPU (1000 samples per space,
more supernet epochs, population 20 x 10 generations). With ``time_budget_s`` the amounts of work are
shared out as deadlines: supernet training 35% (it trains on the settings' images and epochs and
stops at its deadline, its learning rate following the clock), search 30% (split between evolution and,
when compared, random search; `plan_search` sizes the population from the fitness cost measured on
the trained supernet, and no generation starts after the deadline), the winner's final training 25%
(its images re-planned from the time left and the step cost measured just before it), and the rest
for quantisation, int8 scoring and compilation. Costs are measured when each stage starts because
the load of a shared machine changes during a run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import McuforgeError


# How the winner's final training starts: from fresh weights ("scratch", the default: with the short
# supernet training a CPU affords, inherited weights train worse: on Fashion-MNIST, 20,000 training
# images, one winner reached 78.5% float after 1 supernet epoch + 2 fine-tuning epochs from its
# supernet weights (`benchmarks/nas_vs_mbv2.py --train-samples 20000` before this default), and
# 87.2% after 3 epochs from scratch (`mcuforge train SPEC -e 3 --limit-train 20000`)), or from the
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


# Shares of a time budget (module doc); the rest is for quantisation, scoring and the build.
SHARES = {"supernet": 0.35, "search": 0.30, "final_training": 0.25}
RESERVE_SHARE = 1.0 - sum(SHARES.values())
MIN_GENERATIONS, MIN_POPULATION = 3, 8


def evolution_seconds(settings: SearchSettings, search_s: float) -> float:
    """The evolution's part of ``search_s`` seconds of search: half when random search is compared
    at the same number of evaluations, all of it otherwise."""
    return search_s / (2 if settings.compare_random else 1)


def plan_search(settings: SearchSettings, search_s: float, fitness_s: float) -> tuple[int, int]:
    """(population, generations) for ``search_s`` seconds of search at ``fitness_s`` seconds per
    fitness evaluation (measured on the trained supernet), half of it for the random-search
    comparison when that runs. Several generations matter more than a wide population (evolution
    with one generation is hardly more than random sampling): the settings' population is kept only
    when it leaves MIN_GENERATIONS; otherwise it shrinks, down to MIN_POPULATION. Both stay within the
    settings' amounts; the evolution's deadline still holds if the costs grow."""
    evaluations = evolution_seconds(settings, search_s) / max(fitness_s, 1e-6)
    population = max(MIN_POPULATION, min(settings.population, int(evaluations // (MIN_GENERATIONS + 1))))
    generations = max(1, min(settings.generations, int(evaluations // population) - 1))
    return population, generations
