"""Evolutionary search: constraint-checked sampling, beating random search on a synthetic fitness at
the same number of evaluations, and checkpoint/resume of the search state."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from mcuforge.errors import McuforgeError
from mcuforge.nas.evolution import EvolutionConfig, constrained, crossover, evolve, mutate, random_search
from mcuforge.nas.space import ArchConfig, SearchSpace

SPACE = SearchSpace(0.3, 48, in_channels=1, num_classes=10)


def synthetic_fitness(arch: ArchConfig) -> float:
    """Prefers big kernels early and small expansions late, and a particular depth pattern."""
    active_k = arch.active(arch.kernels)
    active_e = arch.active(arch.expands)
    score = sum(k / 7 for k in active_k[:6]) - sum(e / 6 for e in active_e[-6:])
    score -= sum(abs(d - target) for d, target in zip(arch.depths, (4, 2, 4, 2, 3)))
    return score


def feasible(arch: ArchConfig) -> bool:
    """A stand-in for the memory constraint: not too many blocks."""
    return sum(arch.depths) <= 15


def test_constrained_sampling_only_yields_feasible_architectures():
    rng = random.Random(0)
    for _ in range(50):
        assert feasible(constrained(lambda: SPACE.sample(rng), feasible, 1000))
    with pytest.raises(McuforgeError, match="no feasible"):
        constrained(lambda: SPACE.sample(rng), lambda arch: False, 10)


def test_mutation_and_crossover_stay_in_the_space():
    rng = random.Random(1)
    a, b = SPACE.sample(rng), SPACE.sample(rng)
    for _ in range(20):
        SPACE.check(mutate(SPACE, a, 0.3, rng))
        child = crossover(a, b, rng)
        SPACE.check(child)
        assert all(x in (p, q) for x, p, q in zip(child.kernels, a.kernels, b.kernels))
    assert mutate(SPACE, a, 0.0, rng) == a


def test_evolution_beats_random_search_at_the_same_number_of_evaluations():
    config = EvolutionConfig(population=20, generations=8, seed=0)
    wins, evolved, randoms = 0, [], []
    for seed in range(5):
        state = evolve(SPACE, synthetic_fitness, feasible, EvolutionConfig(**{**config.__dict__, "seed": seed}))
        baseline = random_search(SPACE, synthetic_fitness, feasible, state.evaluations, seed=seed)
        assert baseline.evaluations == state.evaluations
        evolved.append(state.best()[1])
        randoms.append(baseline.best()[1])
        wins += state.best()[1] > baseline.best()[1]
        assert all(feasible(arch) for arch in state.archs.values())
    assert wins >= 4, (evolved, randoms)
    assert statistics.fmean(evolved) > statistics.fmean(randoms)


def test_search_state_checkpoint_and_resume(tmp_path):
    config = EvolutionConfig(population=12, generations=6, seed=3)
    calls = []

    def counted(arch):
        calls.append(arch.key())
        return synthetic_fitness(arch)

    uninterrupted = evolve(SPACE, counted, feasible, config)
    path = tmp_path / "search_state.json"
    partial_config = EvolutionConfig(**{**config.__dict__, "generations": 3})
    evolve(SPACE, synthetic_fitness, feasible, partial_config, state_path=path)
    saved = json.loads(path.read_text())
    assert saved["generation"] == 3
    calls.clear()
    resumed = evolve(SPACE, counted, feasible, config, state_path=path, resume=True)
    assert resumed.best() == uninterrupted.best()
    assert resumed.history == uninterrupted.history
    assert resumed.evaluations == uninterrupted.evaluations
    # Cached fitness values are not recomputed after a resume.
    assert len(calls) == len(set(calls)) and len(calls) < uninterrupted.evaluations


def test_evolution_starts_no_generation_after_its_time_limit():
    config = EvolutionConfig(population=8, generations=50, seed=0)
    state = evolve(SPACE, synthetic_fitness, feasible, config, time_limit_s=0.0)
    assert len(state.history) == 1  # the first generation always runs
    assert state.evaluations == 8 + 6  # the first population and the one bred from it
