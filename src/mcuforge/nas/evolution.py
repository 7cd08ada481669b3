"""Evolutionary search over a space's architectures under hard constraints (once-for-all's search).

Every candidate is drawn by *constraint-checked sampling*: a random architecture, mutation or crossover
is redrawn until ``feasible(arch)`` holds (at most ``max_tries`` times), so the population only ever
holds networks that fit the SRAM / Flash / latency limits. One generation: the best
``parent_ratio * population`` candidates survive as parents; ``mutate_ratio * population`` children
are mutations of random parents (each kernel, expansion and depth gene is resampled with probability
``mutation_prob``); the rest are crossovers of two random parents (each gene from either parent).
Children are redrawn until they are new (not evaluated before, not a sibling), so every generation
spends its evaluations on new candidates.

Fitness is whatever the caller gives (the search uses a subnet's held-out accuracy after BN
recalibration); it is cached by architecture, and ``evaluations`` counts distinct fitness calls, which
is the budget `random_search` is given for a fair comparison.

The state (generation, population, fitness cache, history, generator state) is written atomically to a
JSON file after every generation; ``resume`` continues from it and gives the same result as an
uninterrupted run.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..atomic import write_json_atomic
from ..errors import McuforgeError
from .space import ArchConfig, SearchSpace

Fitness = Callable[[ArchConfig], float]
Feasible = Callable[[ArchConfig], bool]


@dataclass(frozen=True)
class EvolutionConfig:
    """Settings of the evolutionary search."""

    population: int = 20
    generations: int = 10
    parent_ratio: float = 0.25
    mutate_ratio: float = 0.5
    mutation_prob: float = 0.1
    max_tries: int = 2000
    seed: int = 0


@dataclass
class SearchState:
    """Everything a search needs to continue; JSON-serialisable through `to_dict`."""

    generation: int = 0
    population: list[ArchConfig] = field(default_factory=list)
    cache: dict[str, float] = field(default_factory=dict)
    archs: dict[str, ArchConfig] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    rng_state: object = None

    @property
    def evaluations(self) -> int:
        """Distinct architectures whose fitness was computed."""
        return len(self.cache)

    def best(self) -> tuple[ArchConfig, float]:
        """The fittest architecture evaluated so far."""
        key = max(self.cache, key=lambda k: self.cache[k])
        return self.archs[key], self.cache[key]

    def to_dict(self) -> dict:
        """JSON-ready form."""
        version, internal, gauss = self.rng_state
        return {"generation": self.generation, "population": [a.to_dict() for a in self.population],
                "cache": self.cache, "archs": {k: a.to_dict() for k, a in self.archs.items()},
                "history": self.history, "rng_state": [version, list(internal), gauss]}

    @classmethod
    def from_dict(cls, values: dict) -> "SearchState":
        """Inverse of `to_dict`."""
        version, internal, gauss = values["rng_state"]
        return cls(values["generation"], [ArchConfig.from_dict(a) for a in values["population"]],
                   dict(values["cache"]), {k: ArchConfig.from_dict(a) for k, a in values["archs"].items()},
                   list(values["history"]), (version, tuple(internal), gauss))


def constrained(draw: Callable[[], ArchConfig], feasible: Feasible, max_tries: int) -> ArchConfig:
    """Redraw until ``feasible`` holds (constraint-checked sampling)."""
    for _ in range(max_tries):
        arch = draw()
        if feasible(arch):
            return arch
    raise McuforgeError(f"no feasible architecture in {max_tries} tries: the constraints leave (almost) "
                        "nothing of this space; pick another space or relax the limits")


def mutate(space: SearchSpace, arch: ArchConfig, prob: float, rng: random.Random) -> ArchConfig:
    """Resample each gene of ``arch`` with probability ``prob``."""
    kernels = tuple(rng.choice(space.kernels) if rng.random() < prob else k for k in arch.kernels)
    expands = tuple(rng.choice(space.expands) if rng.random() < prob else e for e in arch.expands)
    depths = tuple(rng.choice(space.depths) if rng.random() < prob else d for d in arch.depths)
    return ArchConfig(kernels, expands, depths)


def crossover(first: ArchConfig, second: ArchConfig, rng: random.Random) -> ArchConfig:
    """Each gene from either parent with equal probability."""
    def pick(a, b):
        return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))
    return ArchConfig(pick(first.kernels, second.kernels), pick(first.expands, second.expands),
                      pick(first.depths, second.depths))


def _score(state: SearchState, arch: ArchConfig, fitness: Fitness) -> float:
    key = arch.key()
    if key not in state.cache:
        state.cache[key] = float(fitness(arch))
        state.archs[key] = arch
    return state.cache[key]


def _novel_child(draw: Callable[[], ArchConfig], feasible: Feasible, state: SearchState,
                 siblings: list[ArchConfig], max_tries: int) -> ArchConfig:
    """A feasible child not evaluated before and not among its siblings (so every child is a new
    candidate); when the neighbourhood is exhausted, any feasible child."""
    known = set(state.cache) | {a.key() for a in siblings}
    try:
        return constrained(draw, lambda arch: arch.key() not in known and feasible(arch), max_tries)
    except McuforgeError:
        return constrained(draw, feasible, max_tries)


def evolve(space: SearchSpace, fitness: Fitness, feasible: Feasible, config: EvolutionConfig = EvolutionConfig(),
           state_path: str | Path | None = None, resume: bool = False,
           on_generation: Callable[[dict], None] | None = None,
           time_limit_s: float | None = None) -> SearchState:
    """Run the evolutionary search (module doc) and return its final state (``state.best()``).
    With ``time_limit_s`` no new generation starts once that many seconds (of this call) are
    spent; the children already bred are still scored."""
    started = time.perf_counter()
    rng = random.Random(config.seed)
    state = SearchState()
    if resume and state_path is not None and Path(state_path).exists():
        try:
            state = SearchState.from_dict(json.loads(Path(state_path).read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
            raise McuforgeError(f"{state_path}: corrupt evolution checkpoint; delete it to restart the search") from None
        rng.setstate(state.rng_state)
    if not state.population:
        state.population = [constrained(lambda: space.sample(rng), feasible, config.max_tries)
                            for _ in range(config.population)]
    parents_count = max(1, round(config.parent_ratio * config.population))
    mutations = round(config.mutate_ratio * config.population)
    while state.generation < config.generations:
        if time_limit_s is not None and time.perf_counter() - started >= time_limit_s and state.history:
            break
        scored = sorted(state.population, key=lambda a: -_score(state, a, fitness))
        parents = scored[:parents_count]
        best_arch, best_fitness = state.best()
        record = {"generation": state.generation + 1, "best_fitness": best_fitness, "best": best_arch.key(),
                  "population_mean": sum(state.cache[a.key()] for a in scored) / len(scored),
                  "evaluations": state.evaluations}
        state.history.append(record)
        def mutant() -> ArchConfig:
            return mutate(space, rng.choice(parents), config.mutation_prob, rng)

        def cross() -> ArchConfig:
            return crossover(rng.choice(parents), rng.choice(parents), rng)

        children: list[ArchConfig] = []
        for index in range(config.population - parents_count):
            draw = mutant if index < mutations else cross
            children.append(_novel_child(draw, feasible, state, children, config.max_tries))
        state.population = parents + children
        state.generation += 1
        state.rng_state = rng.getstate()
        if state_path is not None:
            write_json_atomic(state_path, state.to_dict())
        if on_generation is not None:
            on_generation(record)
    # The last generation's children are scored too, so every generation's offspring counts.
    for arch in state.population:
        _score(state, arch, fitness)
    state.rng_state = rng.getstate()
    if state_path is not None:
        write_json_atomic(state_path, state.to_dict())
    return state


def random_search(space: SearchSpace, fitness: Fitness, feasible: Feasible, evaluations: int,
                  seed: int = 0, max_tries: int = 2000) -> SearchState:
    """The baseline: ``evaluations`` distinct feasible random architectures, the best kept."""
    rng = random.Random(seed + 7919)
    state = SearchState()
    draws = 0
    while state.evaluations < evaluations and draws < evaluations * 50:
        _score(state, constrained(lambda: space.sample(rng), feasible, max_tries), fitness)
        draws += 1
    state.rng_state = rng.getstate()
    return state
