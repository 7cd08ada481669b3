"""The whole TinyNAS run behind `mcuforge search`, as a sequence of named stages (`mcuforge.stages`).

Each stage saves its result as ``<stage>.json`` in the run folder and is skipped on ``resume`` once
that file is there; long stages keep checkpoints in their own folder and continue from them:

1. ``stage1``    search-space optimisation (+ ``space_cdf.png``);
2. ``supernet``  the supernet, trained with the sandwich rule (checkpoint ``supernet/supernet.pt``,
                 resumes mid-epoch);
3. ``plan``      under a time budget only: population and generations for the search's share, from
                 the fitness cost measured on the trained supernet;
4. ``evolution`` the evolutionary search (checkpoint ``evolution/state.json`` after every generation);
5. ``random``    random search with as many evaluations, both winners scored on held-out images
                 neither search used (unless ``compare_random`` is off);
6. ``verified``  when the winner runs layer by layer and is compiled: the best candidates built as
                 generated C until one measures within the limits;
7. ``winner``    the winner's final training, int8 quantisation and C build (folder ``winner/``:
                 training checkpoint, ``model.pt``, ``model_int8.tflite``, ``deploy.json``, ``c/``);
8. ``report``    ``report.json`` / ``report.md`` (rebuilt on every run).

``settings.json`` (checked on resume) and ``latency_model.json`` (the calibration cache, with a
latency limit) sit beside them. Under torchrun only the supernet training is distributed; ranks other
than 0 stop after it and write nothing. The objects the stages share are in `search_context`.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import torch

from ..models.spec_torch import build_torch
from ..stages import Run, Stage
from ..train.config import TrainConfig
from .deploy import deploy
from .evolution import EvolutionConfig, evolve, random_search
from .fitness import SubnetScorer
from .sandwich import SupernetTrainConfig, init_distributed, supernet_checkpoint_path, train_supernet
from .search_context import FeasibilityCache, SearchContext, check_resumable, share_seconds
from .settings import SearchSettings, evolution_seconds, plan_search
from .space import DEFAULT_WIDTHS, SearchSpace, default_resolutions
from .space_opt import plot_cdfs, rank_spaces
from .supernet import SuperNet
from .winner import final_training_samples, verify_on_device_build


def space_stage(ctx: SearchContext) -> dict:
    """Stage 1, search-space optimisation: rank every (width, resolution) space by the MACs of its
    sampled networks that fit; plots their CDFs (space_cdf.png)."""
    settings, log = ctx.settings, ctx.log
    widths = settings.widths or DEFAULT_WIDTHS
    resolutions = settings.resolutions or default_resolutions(max(ctx.train_full.image_size))
    spaces = [SearchSpace(w, r, ctx.train_full.channels, ctx.train_full.num_classes)
              for w in widths for r in resolutions]
    started = time.perf_counter()
    log(f"stage 1: profiling {len(spaces)} spaces x {settings.space_samples} samples "
        f"({'with' if settings.patch else 'without'} patch schedules)")
    ranked = rank_spaces(spaces, ctx.constraints, settings.space_samples, settings.seed, latency_model=ctx.latency,
                         target=ctx.target)
    seconds = time.perf_counter() - started
    for stats in ranked[:5]:
        log(f"  {stats.space.name:>10}: {stats.fit_fraction:6.1%} fit, mean {stats.mean_macs / 1e6:6.2f} MMACs"
            + (f" ({stats.patched_fraction:.1%} need a patch schedule)" if stats.patched_fraction else ""))
    per_sample_ms = seconds / (len(spaces) * settings.space_samples) * 1000
    log(f"  {seconds:.1f} s ({per_sample_ms:.2f} ms per sampled network); chosen {ranked[0].space.name}")
    plot_cdfs(ranked, ctx.run.folder / "space_cdf.png",
              f"FLOPs CDF of satisfying samples ({ctx.constraints.sram_bytes // 1024} kB SRAM, "
              f"{ctx.constraints.flash_bytes // 1024} kB Flash{', patch' if settings.patch else ''})")
    return {"chosen": ranked[0].space.to_dict(), "seconds": seconds, "ms_per_sample": per_sample_ms,
            "spaces": [s.to_dict() for s in ranked],
            "fitting_macs": {s.space.name: sorted(s.fitting_macs) for s in ranked}}


def supernet_stage(ctx: SearchContext) -> dict:
    """Stage 2: train the chosen space's supernet with the sandwich rule (resumes from its checkpoint)."""
    settings, space = ctx.settings, ctx.space
    torch.manual_seed(settings.seed)
    supernet = SuperNet(space)
    # Warm up over a tenth of the run (at most half an epoch): a one-epoch supernet otherwise spends
    # half its steps below the peak learning rate.
    config = SupernetTrainConfig(epochs=settings.supernet_epochs, batch_size=settings.batch_size,
                                 warmup_epochs=min(0.5, 0.1 * settings.supernet_epochs),
                                 time_limit_s=share_seconds(settings, "supernet"),
                                 train_samples=settings.supernet_train_samples, seed=settings.seed,
                                 threads=settings.threads, progress=settings.progress)
    train_samples = min(len(ctx.train_part), config.train_samples or len(ctx.train_part))
    ctx.log(f"stage 2: supernet of {space.name} (sandwich rule, {config.epochs} epochs on {train_samples} images)")
    quiet_epoch = None if settings.progress else (
        lambda r: ctx.log(f"  supernet epoch {r['epoch']}: largest subnet train accuracy "
                          f"{r['train_accuracy_largest']:.2%}, {r['seconds']:.0f} s"))
    folder = ctx.run.stage_dir("supernet")
    history = train_supernet(supernet, ctx.train_part, config, folder,
                             resume=ctx.resume and supernet_checkpoint_path(folder).exists(), on_epoch=quiet_epoch)
    ctx.supernet = supernet
    return {"history": history, "epochs": config.epochs, "train_samples": train_samples}


def plan_stage(ctx: SearchContext) -> dict:
    """Under a time budget: the population and generations `plan_search` gives for the search's share
    at the fitness cost measured now on the trained supernet."""
    settings, space = ctx.settings, ctx.space
    rng = random.Random(settings.seed)
    ctx.scorer(space.sample(rng))  # warm-up
    started = time.perf_counter()
    ctx.scorer(space.sample(rng))
    seconds = time.perf_counter() - started
    population, generations = plan_search(settings, share_seconds(settings, "search"), seconds)
    ctx.log(f"time budget {settings.time_budget_s / 60:.0f} min: {seconds:.1f} s per fitness evaluation "
            f"-> population {population} x {generations} generations")
    return {"seconds_per_fitness": seconds, "population": population, "generations": generations}


def evolution_stage(ctx: SearchContext) -> dict:
    """The evolutionary search under the constraints (resumes from its per-generation checkpoint)."""
    settings = ctx.planned
    config = EvolutionConfig(population=settings.population, generations=settings.generations, seed=settings.seed)
    ctx.log(f"evolutionary search: population {config.population}, {config.generations} generations")
    started = time.perf_counter()
    search_s = share_seconds(settings, "search")
    state = evolve(ctx.space, ctx.fitness, ctx.feasible, config, ctx.run.stage_dir("evolution") / "state.json",
                   ctx.resume, time_limit_s=None if search_s is None else evolution_seconds(settings, search_s),
                   on_generation=lambda r: ctx.log(f"  generation {r['generation']}: best {r['best_fitness']:.2%}, "
                                                   f"mean {r['population_mean']:.2%}, {r['evaluations']} evaluated"))
    return {"state": state.to_dict(), "seconds": time.perf_counter() - started}


def random_stage(ctx: SearchContext) -> dict:
    """Random search with the evolution's number of evaluations, and both winners scored on held-out
    images neither search used (when there are enough)."""
    state = ctx.evolution_state()
    ctx.fitness_cache.update(state.cache)  # the candidates both searches draw are scored once
    best_arch, best_fitness = state.best()
    rivals = random_search(ctx.space, ctx.fitness, ctx.feasible, state.evaluations, ctx.settings.seed)
    baseline = {"evaluations": rivals.evaluations, "best_fitness": rivals.best()[1], "best": rivals.best()[0].key(),
                "curve": _best_curve(rivals)}
    ctx.log(f"random search, same {rivals.evaluations} evaluations: best {baseline['best_fitness']:.2%} "
            f"(evolution {best_fitness:.2%})")
    if ctx.confirmation is not None:
        confirm = SubnetScorer.from_data(ctx.trained_supernet(), ctx.train_part, ctx.confirmation,
                                         ctx.settings.recalibration_samples, ctx.settings.seed)
        baseline["confirmation"] = {"images": len(confirm.holdout_labels), "evolution": confirm(best_arch),
                                    "random": confirm(rivals.best()[0])}
        c = baseline["confirmation"]
        ctx.log(f"  the two winners on {c['images']} other held-out images: evolution {c['evolution']:.2%}, "
                f"random {c['random']:.2%}")
    return baseline


def verified_stage(ctx: SearchContext) -> dict:
    """Build the best layer-based candidates as generated C until one measures within the limits."""
    state, feasible = ctx.evolution_state(), ctx.feasible
    ranked = sorted((a for a in state.archs.values() if feasible(a)
                     and feasible.measurement(a).schedule == "layer-based"),
                    key=lambda a: -state.cache[a.key()])
    ctx.log("checking the best candidates on a real build (generated C, arm-none-eabi-gcc, QEMU)")
    arch, tried = verify_on_device_build(ranked, ctx.space, ctx.scorer, ctx.train_part, ctx.planned,
                                         ctx.target.core, ctx.log)
    return {"arch": arch.to_dict(), "attempts": tried}


def winner_stage(ctx: SearchContext) -> dict:
    """The winner's final training (from scratch or its supernet weights), int8 quantisation and C build."""
    settings, space, log = ctx.planned, ctx.space, ctx.log
    best_arch, best_fitness = ctx.winner()
    winner_spec = space.spec(best_arch)
    winner_measure = ctx.feasible.measurement(best_arch)
    log(f"winner {winner_spec.to_string()}\n  held-out accuracy (supernet weights) {best_fitness:.2%}, "
        f"{winner_measure.macs / 1e6:.2f} MMACs, peak SRAM {winner_measure.peak_sram_bytes:,} B "
        f"({winner_measure.schedule}), Flash {winner_measure.flash_bytes:,} B")
    from_supernet = settings.winner_init == "supernet"
    if from_supernet:
        model = ctx.scorer.subnet(best_arch)
    else:
        torch.manual_seed(settings.seed)
        model = build_torch(winner_spec)
    train_set = ctx.train_full
    samples = final_training_samples(settings, model, ctx.train_full, space.resolution, space.in_channels,
                                     time.perf_counter() - ctx.started, log)
    if samples and samples < len(ctx.train_full):
        train_set = ctx.train_full.subset(list(range(samples)))
    config = TrainConfig(resolution=space.resolution, in_channels=space.in_channels,
                         epochs=settings.finetune_epochs, batch_size=settings.batch_size,
                         warmup_epochs=0.3 if from_supernet else 0.5,
                         seed=settings.seed, threads=settings.threads, progress=settings.progress)
    log(f"training the winner for {config.epochs} epochs from "
        f"{'its supernet weights' if from_supernet else 'scratch'} on {len(train_set)} images, then int8 + compile")
    deployed = deploy(model, winner_spec, train_set, ctx.test_set, config, ctx.run.stage_dir("winner"),
                      target_core=ctx.target.core if settings.compile else None, sram_bytes=settings.sram_bytes,
                      resume=ctx.resume, int8_test_samples=settings.int8_test_samples, dataset_name=settings.dataset,
                      patch=winner_measure.schedule != "layer-based", log=log)
    return {"deploy": deployed.to_dict(), "final_training_samples": len(train_set)}


def report_stage(ctx: SearchContext) -> dict:
    """Everything the run found, in one dict; also written as report.md and search_curve.png."""
    from .search_report import write_report

    run, state, space = ctx.run, ctx.evolution_state(), ctx.space
    best_arch, best_fitness = ctx.winner()
    measured = ctx.feasible.measurement(best_arch)
    evolution = run.result("evolution")
    report = {
        "settings": ctx.planned.to_dict(), "target": ctx.target.name, "constraints": ctx.constraints.to_dict(),
        "latency_model": ctx.latency.to_dict() if ctx.latency else None,
        "space": space.to_dict() | {"name": space.name},
        "stage1": run.result("stage1"),
        "supernet": run.result("supernet"),
        "evolution": {"history": state.history, "evaluations": state.evaluations, "best_fitness": state.best()[1],
                      "best": state.best()[0].key(), "seconds": evolution["seconds"], "curve": _best_curve(state),
                      "candidates": _candidate_points(state, ctx.feasible)},
        "random_search": run.load("random") if ctx.settings.compare_random else None,
        "winner": {"spec": space.spec(best_arch).to_string(), "arch": best_arch.to_dict(),
                   "held_out_accuracy": best_fitness, **measured.to_dict(),
                   "layer_based_fits": measured.peak_layer_bytes <= ctx.constraints.activation_budget_bytes},
        "device_check": run.result("verified") if ctx.needs_device_check() else None,
        "deploy": run.result("winner")["deploy"],
        "final_training_samples": run.result("winner")["final_training_samples"],
        "seconds": time.perf_counter() - ctx.started,
    }
    if run.writes:
        write_report(report, run.folder)
    return report


def _main_only(ctx: SearchContext) -> bool:
    return ctx.is_main


# The search, in order (module doc). Ranks other than 0 of a distributed run stop after the supernet.
SEARCH_STAGES: tuple[Stage[SearchContext], ...] = (
    Stage("stage1", space_stage),
    Stage("supernet", supernet_stage),
    Stage("plan", plan_stage, needed=lambda ctx: ctx.is_main and ctx.settings.time_budget_s is not None),
    Stage("evolution", evolution_stage, needed=_main_only),
    Stage("random", random_stage, needed=lambda ctx: ctx.is_main and ctx.settings.compare_random),
    Stage("verified", verified_stage, needed=lambda ctx: ctx.is_main and ctx.needs_device_check()),
    Stage("winner", winner_stage, needed=_main_only),
    Stage("report", report_stage, always_runs=True, needed=_main_only),
)


def run_search(settings: SearchSettings, run_dir: str | Path, resume: bool = False, log=print) -> dict | None:
    """Run the whole search (module doc); returns the report (None on ranks other than 0)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    distributed = init_distributed()
    if distributed.is_main:
        check_resumable(run_dir, settings, resume)
    log = log if distributed.is_main else (lambda *a, **k: None)
    run = Run(run_dir, writes=distributed.is_main, log=log)
    ctx = SearchContext(settings, run, resume, distributed.is_main, log)
    results = run.run_stages(SEARCH_STAGES, ctx)
    return results.get("report")


def _candidate_points(state, feasible: FeasibilityCache) -> list[dict]:
    """Every evaluated candidate's held-out accuracy beside its peak SRAM and MACs (for the report's
    accuracy-memory plot)."""
    points = []
    for key, fitness in state.cache.items():
        measurement = feasible.measurement(state.archs[key])
        points.append({"arch": key, "fitness": fitness, "peak_sram_bytes": measurement.peak_sram_bytes,
                       "macs": measurement.macs, "schedule": measurement.schedule})
    return points


def _best_curve(state) -> list[float]:
    """Best fitness after each evaluation, in evaluation order."""
    best, curve = float("-inf"), []
    for value in state.cache.values():
        best = max(best, value)
        curve.append(best)
    return curve
