"""The whole TinyNAS run behind `mcuforge search`: stage 1, supernet, evolution, deployment, report.

Every stage leaves its result in the run folder and is skipped on ``resume`` when that result is
there: ``latency_model.json`` (with a latency limit), ``stage1.json`` (+ ``space_cdf.png``),
``supernet.pt`` (resumes mid-epoch), ``plan.json`` (population and generations under a time
budget), ``evolution.json`` (resumes mid-search), ``random.json``, ``winner/`` (training
checkpoint, ``model.pt``, ``deploy.json``, the C project ``c/``), and finally ``report.json`` /
``report.md``. Under torchrun only the supernet training is distributed; ranks other than 0 stop
after it.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..data.registry import load_dataset
from ..errors import McuforgeError
from ..models.spec_torch import build_torch
from ..targets import get_target
from ..train.config import TrainConfig
from .constraints import Constraints, Measurement, measure
from .deploy import deploy
from ..atomic import write_json_atomic
from .evolution import EvolutionConfig, evolve, random_search
from .fitness import SubnetScorer, split_holdout
from .latency import LatencyModel, tflm_linear_model
from .sandwich import SupernetTrainConfig, init_distributed, supernet_checkpoint_path, train_supernet
from .settings import RESERVE_SHARE, RESUME_FREE, SHARES, SearchSettings, evolution_seconds, plan_search
from .space import DEFAULT_WIDTHS, ArchConfig, SearchSpace, default_resolutions
from .space_opt import plot_cdfs, rank_spaces


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


def _check_resumable(run_dir: Path, settings: SearchSettings, resume: bool) -> None:
    path = run_dir / "settings.json"
    if path.exists():
        if not resume:
            raise McuforgeError(f"{run_dir} holds an earlier search: resume it (--resume) or use another folder")
        saved = json.loads(path.read_text())
        differing = [k for k, v in settings.to_dict().items()
                     if k not in RESUME_FREE and json.loads(json.dumps(v)) != saved.get(k)]
        if differing:
            raise McuforgeError(f"{run_dir}: settings differ from the earlier run's ({', '.join(differing)})")
    write_json_atomic(path, settings.to_dict())


def stage_one(settings: SearchSettings, constraints: Constraints, in_channels: int, num_classes: int,
              image_side: int, latency, target, run_dir: Path, resume: bool, log) -> SearchSpace:
    """Search-space optimisation; writes stage1.json and space_cdf.png and returns the chosen space."""
    path = run_dir / "stage1.json"
    if resume and path.exists():
        chosen = SearchSpace.from_dict(json.loads(path.read_text())["chosen"])
        log(f"stage 1: reusing {path}: space {chosen.name}")
        return chosen
    widths = settings.widths or DEFAULT_WIDTHS
    resolutions = settings.resolutions or default_resolutions(image_side)
    spaces = [SearchSpace(w, r, in_channels, num_classes) for w in widths for r in resolutions]
    started = time.perf_counter()
    log(f"stage 1: profiling {len(spaces)} spaces x {settings.space_samples} samples "
        f"({'with' if settings.patch else 'without'} patch schedules)")
    ranked = rank_spaces(spaces, constraints, settings.space_samples, settings.seed, latency_model=latency,
                         target=target)
    seconds = time.perf_counter() - started
    for stats in ranked[:5]:
        log(f"  {stats.space.name:>10}: {stats.fit_fraction:6.1%} fit, mean {stats.mean_macs / 1e6:6.2f} MMACs"
            + (f" ({stats.patched_fraction:.1%} need a patch schedule)" if stats.patched_fraction else ""))
    per_sample_ms = seconds / (len(spaces) * settings.space_samples) * 1000
    log(f"  {seconds:.1f} s ({per_sample_ms:.2f} ms per sampled network); chosen {ranked[0].space.name}")
    plot_cdfs(ranked, run_dir / "space_cdf.png",
              f"FLOPs CDF of satisfying samples ({constraints.sram_bytes // 1024} kB SRAM, "
              f"{constraints.flash_bytes // 1024} kB Flash{', patch' if settings.patch else ''})")
    write_json_atomic(path, {"chosen": ranked[0].space.to_dict(), "seconds": seconds, "ms_per_sample": per_sample_ms,
                       "spaces": [s.to_dict() for s in ranked],
                       "fitting_macs": {s.space.name: sorted(s.fitting_macs) for s in ranked}})
    return ranked[0].space


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


def _search_plan(settings: SearchSettings, scorer: SubnetScorer, space: SearchSpace, run_dir: Path,
                 resume: bool, log) -> SearchSettings:
    """Under a time budget: ``settings`` with the population and generations `plan_search` gives for
    the search's share at the fitness cost measured now (plan.json, reused on resume)."""
    if settings.time_budget_s is None:
        return settings
    path = run_dir / "plan.json"
    if resume and path.exists():
        plan = json.loads(path.read_text())
    else:
        rng = random.Random(settings.seed)
        scorer(space.sample(rng))  # warm-up
        started = time.perf_counter()
        scorer(space.sample(rng))
        seconds = time.perf_counter() - started
        population, generations = plan_search(settings, _share(settings, "search"), seconds)
        plan = {"seconds_per_fitness": seconds, "population": population, "generations": generations}
        write_json_atomic(path, plan)
    log(f"time budget {settings.time_budget_s / 60:.0f} min: {plan['seconds_per_fitness']:.1f} s per "
        f"fitness evaluation -> population {plan['population']} x {plan['generations']} generations")
    return replace(settings, population=plan["population"], generations=plan["generations"])


def _share(settings: SearchSettings, stage: str) -> float | None:
    """Seconds of the time budget that ``stage`` may take (None without a budget)."""
    return None if settings.time_budget_s is None else SHARES[stage] * settings.time_budget_s


def _final_training_samples(settings: SearchSettings, model: torch.nn.Module, data, resolution: int,
                            in_channels: int, elapsed_s: float, log) -> int | None:
    """Under a time budget: the planned final-training samples, fewer when the time left (less the
    last tenth of the budget, kept for quantisation, scoring and the build) would not train them
    all at the training-step cost measured now on ``model``. None (all) without a budget."""
    planned = settings.finetune_train_samples
    if settings.time_budget_s is None:
        return planned
    from ..data.transforms import train_batch

    images, labels = data.batch(list(range(min(settings.batch_size, len(data)))))
    x = train_batch(images, resolution, in_channels, torch.Generator().manual_seed(0))
    probe = copy.deepcopy(model).train()
    seconds = []
    for _ in range(2):  # the first step warms up
        started = time.perf_counter()
        torch.nn.functional.cross_entropy(probe(x), labels).backward()
        seconds.append(time.perf_counter() - started)
    left = settings.time_budget_s * (1 - RESERVE_SHARE) - elapsed_s
    affordable = int(max(0.0, left) / max(seconds[-1], 1e-6) * settings.batch_size / settings.finetune_epochs)
    samples = max(settings.batch_size, min(planned or len(data), affordable))
    if planned is None or samples < planned:
        log(f"  time left {left / 60:.1f} min: the final training uses {samples} images "
            f"({seconds[-1]:.2f} s per step now)")
    return samples


def search_stage(settings: SearchSettings, space: SearchSpace, scorer: SubnetScorer, feasible: FeasibilityCache,
                 confirm: SubnetScorer | None, run_dir: Path, resume: bool, log):
    """Evolutionary search (evolution.json), then random search with as many evaluations (random.json)
    and both winners scored on held-out images neither search used. Returns (evolution state, its
    seconds, the random-search summary or None)."""
    cache: dict[str, float] = {}

    def fitness(arch: ArchConfig) -> float:
        if arch.key() not in cache:
            cache[arch.key()] = scorer(arch)
        return cache[arch.key()]

    config = EvolutionConfig(population=settings.population, generations=settings.generations, seed=settings.seed)
    log(f"evolutionary search: population {config.population}, {config.generations} generations")
    started = time.perf_counter()
    search_s = _share(settings, "search")
    state = evolve(space, fitness, feasible, config, run_dir / "evolution.json", resume,
                   time_limit_s=None if search_s is None else evolution_seconds(settings, search_s),
                   on_generation=lambda r: log(f"  generation {r['generation']}: best {r['best_fitness']:.2%}, "
                                               f"mean {r['population_mean']:.2%}, {r['evaluations']} evaluated"))
    seconds = time.perf_counter() - started
    if not settings.compare_random:
        return state, seconds, None
    best_arch, best_fitness = state.best()
    rivals = random_search(space, fitness, feasible, state.evaluations, settings.seed)
    baseline = {"evaluations": rivals.evaluations, "best_fitness": rivals.best()[1], "best": rivals.best()[0].key(),
                "curve": _best_curve(rivals)}
    log(f"random search, same {rivals.evaluations} evaluations: best {baseline['best_fitness']:.2%} "
        f"(evolution {best_fitness:.2%})")
    if confirm is not None:
        baseline["confirmation"] = {"images": len(confirm.holdout_labels), "evolution": confirm(best_arch),
                                    "random": confirm(rivals.best()[0])}
        c = baseline["confirmation"]
        log(f"  the two winners on {c['images']} other held-out images: evolution {c['evolution']:.2%}, "
            f"random {c['random']:.2%}")
    write_json_atomic(run_dir / "random.json", baseline)
    return state, seconds, baseline


def verify_on_device_build(candidates: list[ArchConfig], space: SearchSpace, scorer: SubnetScorer,
                           train_part, settings: SearchSettings, core: str, log, attempts: int = 4
                           ) -> tuple[ArchConfig, list[dict]]:
    """The first of ``candidates`` (best first) whose generated C, built for ``core`` with the subnet's
    inherited weights quantised, measures within the SRAM and Flash limits; and the measured attempts.
    The Flash and SRAM estimates of the search are models of the code generator; this checks them
    on the real build before any fine-tuning is spent on the winner."""
    import tempfile

    from ..codegen.project import compile_model
    from ..errors import DoesNotFitError
    from ..quant.ptq import quantize_spec_net
    from .deploy import calibration_batches

    tried: list[dict] = []
    for arch in candidates[:attempts]:
        spec = space.spec(arch)
        graph = quantize_spec_net(scorer.subnet(arch).eval(), calibration_batches(train_part, spec, 200, settings.seed))
        with tempfile.TemporaryDirectory(prefix="mcuforge-verify-") as folder:
            try:
                report = compile_model(graph, Path(folder) / "c", core, settings.sram_bytes)
                sram, flash = report["measured_sram_bytes"], report["flash_bytes"]
            except DoesNotFitError as exc:
                sram, flash = exc.needed_bytes, None
        fits = sram <= settings.sram_bytes and flash is not None and flash <= settings.flash_bytes
        tried.append({"arch": arch.key(), "measured_sram_bytes": sram, "flash_bytes": flash, "fits": fits})
        log(f"  device build of candidate {len(tried)}: measured SRAM {sram:,} B, Flash "
            f"{'n/a' if flash is None else f'{flash:,} B'} -> {'fits' if fits else 'does not fit'}")
        if fits:
            return arch, tried
    raise McuforgeError(f"none of the {len(tried)} best candidates fits {settings.sram_bytes:,} B SRAM / "
                        f"{settings.flash_bytes:,} B Flash once built (the estimates are off for this code "
                        "generator); lower --flash/--sram in the search or raise the limits")


def run_search(settings: SearchSettings, run_dir: str | Path, resume: bool = False, log=print) -> dict | None:
    """Run the whole search (module doc); returns the report (None on ranks other than 0)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = init_distributed()
    if ctx.is_main:
        _check_resumable(run_dir, settings, resume)
    log = log if ctx.is_main else (lambda *a, **k: None)
    started = time.perf_counter()
    target = get_target(settings.target)
    constraints = Constraints(settings.sram_bytes, settings.flash_bytes, settings.latency_ms, settings.patch)
    latency = _latency_model(settings, target, run_dir, log) if settings.latency_ms is not None else None
    if settings.threads:
        torch.set_num_threads(settings.threads)
    train_full = load_dataset(settings.dataset, "train")
    test_set = load_dataset(settings.dataset, "test")
    train_part, held_out = split_holdout(train_full, settings.holdout, settings.seed)
    fitness_count = min(settings.fitness_samples, len(held_out))
    holdout = held_out.subset(list(range(fitness_count)))
    # The rest of the held-out split confirms the search's comparison on images it never scored.
    confirmation = held_out.subset(list(range(fitness_count, len(held_out)))) \
        if len(held_out) - fitness_count >= 500 else None
    space = stage_one(settings, constraints, train_full.channels, train_full.num_classes,
                      max(train_full.image_size), latency, target, run_dir, resume, log)

    def scorer_for(net):
        return SubnetScorer.from_data(net, train_part, holdout, settings.recalibration_samples, settings.seed)

    from .supernet import SuperNet
    torch.manual_seed(settings.seed)
    supernet = SuperNet(space)
    # Warm up over a tenth of the run (at most half an epoch): a one-epoch supernet otherwise spends
    # half its steps below the peak learning rate.
    sn_config = SupernetTrainConfig(epochs=settings.supernet_epochs, batch_size=settings.batch_size,
                                    warmup_epochs=min(0.5, 0.1 * settings.supernet_epochs),
                                    time_limit_s=_share(settings, "supernet"),
                                    train_samples=settings.supernet_train_samples, seed=settings.seed,
                                    threads=settings.threads, progress=settings.progress)
    log(f"stage 2: supernet of {space.name} (sandwich rule, {sn_config.epochs} epochs on "
        f"{min(len(train_part), sn_config.train_samples or len(train_part))} images)")
    quiet_epoch = None if settings.progress else (
        lambda r: log(f"  supernet epoch {r['epoch']}: largest subnet train accuracy "
                      f"{r['train_accuracy_largest']:.2%}, {r['seconds']:.0f} s"))
    sn_history = train_supernet(supernet, train_part, sn_config, run_dir,
                                resume=resume and supernet_checkpoint_path(run_dir).exists(), on_epoch=quiet_epoch)
    if not ctx.is_main:
        return None

    scorer = scorer_for(supernet)
    feasible = FeasibilityCache(space, constraints, latency, target)
    confirm = SubnetScorer.from_data(supernet, train_part, confirmation, settings.recalibration_samples,
                                     settings.seed) if confirmation is not None else None
    settings = _search_plan(settings, scorer, space, run_dir, resume, log)
    state, evo_seconds, baseline = search_stage(settings, space, scorer, feasible, confirm, run_dir, resume, log)
    best_arch, best_fitness = state.best()
    verification = None
    if settings.compile and feasible.measurement(best_arch).schedule == "layer-based":
        verified_path = run_dir / "verified.json"
        if resume and verified_path.exists():
            verification = json.loads(verified_path.read_text())
        else:
            ranked = sorted((a for a in state.archs.values() if feasible(a)
                             and feasible.measurement(a).schedule == "layer-based"),
                            key=lambda a: -state.cache[a.key()])
            log("checking the best candidates on a real build (generated C, arm-none-eabi-gcc, QEMU)")
            arch, tried = verify_on_device_build(ranked, space, scorer, train_part, settings, target.core, log)
            verification = {"arch": arch.to_dict(), "attempts": tried}
            write_json_atomic(verified_path, verification)
        best_arch = ArchConfig.from_dict(verification["arch"])
        best_fitness = state.cache[best_arch.key()]

    winner_spec = space.spec(best_arch)
    winner_measure = feasible.measurement(best_arch)
    log(f"winner {winner_spec.to_string()}\n  held-out accuracy (supernet weights) {best_fitness:.2%}, "
        f"{winner_measure.macs / 1e6:.2f} MMACs, peak SRAM {winner_measure.peak_sram_bytes:,} B "
        f"({winner_measure.schedule}), Flash {winner_measure.flash_bytes:,} B")
    from_supernet = settings.winner_init == "supernet"
    if from_supernet:
        model = scorer.subnet(best_arch)
    else:
        torch.manual_seed(settings.seed)
        model = build_torch(winner_spec)
    ft_set = train_full
    ft_samples = _final_training_samples(settings, model, train_full, space.resolution, space.in_channels,
                                         time.perf_counter() - started, log)
    if ft_samples and ft_samples < len(train_full):
        ft_set = train_full.subset(list(range(ft_samples)))
    ft_config = TrainConfig(resolution=space.resolution, in_channels=space.in_channels,
                            epochs=settings.finetune_epochs, batch_size=settings.batch_size,
                            warmup_epochs=0.3 if from_supernet else 0.5,
                            seed=settings.seed, threads=settings.threads,
                            progress=settings.progress)
    compile_core = target.core if settings.compile else None
    log(f"training the winner for {ft_config.epochs} epochs from "
        f"{'its supernet weights' if from_supernet else 'scratch'} on {len(ft_set)} images, "
        "then int8 + compile")
    deployed = deploy(model, winner_spec, ft_set, test_set, ft_config, run_dir / "winner",
                      target_core=compile_core, sram_bytes=settings.sram_bytes, resume=resume,
                      int8_test_samples=settings.int8_test_samples, dataset_name=settings.dataset,
                      patch=winner_measure.schedule != "layer-based", log=log)
    from .search_report import write_report

    report = {
        "settings": settings.to_dict(), "target": target.name, "constraints": constraints.to_dict(),
        "latency_model": latency.to_dict() if latency else None,
        "space": space.to_dict() | {"name": space.name},
        "stage1": json.loads((run_dir / "stage1.json").read_text()),
        "supernet": {"history": sn_history, "epochs": sn_config.epochs,
                     "train_samples": min(len(train_part), sn_config.train_samples or len(train_part))},
        "evolution": {"history": state.history, "evaluations": state.evaluations, "best_fitness": state.best()[1],
                      "best": state.best()[0].key(), "seconds": evo_seconds, "curve": _best_curve(state),
                      "candidates": _candidate_points(state, feasible)},
        "random_search": baseline,
        "winner": {"spec": winner_spec.to_string(), "arch": best_arch.to_dict(), "held_out_accuracy": best_fitness,
                   **winner_measure.to_dict(),
                   "layer_based_fits": winner_measure.peak_layer_bytes <= constraints.activation_budget_bytes},
        "device_check": verification,
        "deploy": deployed.to_dict(),
        "final_training_samples": len(ft_set),
        "seconds": time.perf_counter() - started,
    }
    write_report(report, run_dir)
    return report


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
