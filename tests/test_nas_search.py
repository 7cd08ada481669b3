"""The search's glue: BN recalibration fitness, the time-budget planner, the latency model, settings
and the `mcuforge search` command's input errors; one tiny end-to-end search (slow)."""

from __future__ import annotations

import gzip
import json
import time
import random
import struct

import numpy as np
import pytest
import torch

from mcuforge.cli import main
from mcuforge.data.dataset import ArrayDataset
from mcuforge.models.spec_graph import build_graph
from mcuforge.nas.fitness import SubnetScorer, accuracy, recalibrate_bn, split_holdout
from mcuforge.nas.latency import calibrate_from_codegen, op_class_of
from mcuforge.nas.settings import (MIN_GENERATIONS, MIN_POPULATION, SearchSettings, plan_search,
                                   preset_settings)
from mcuforge.nas.space import SearchSpace
from mcuforge.nas.supernet import SuperNet

from test_nas_supernet import one_thread  # noqa: F401  (autouse: tiny convs on one thread)

SPACE = SearchSpace(0.2, 32, in_channels=1, num_classes=10)


def synthetic(count: int, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count)
    images = rng.integers(0, 60, size=(count, 28, 28, 1)).astype(np.uint8)
    for index, label in enumerate(labels):  # a learnable pattern: a bright bar per class
        images[index, 2 + 2 * label: 4 + 2 * label, :, 0] = 250
    return ArrayDataset(images, labels, [str(i) for i in range(10)], "synthetic")


def test_holdout_split_is_disjoint_and_seeded():
    data = synthetic(100)
    train, held = split_holdout(data, 20, seed=1)
    assert len(train) == 80 and len(held) == 20
    again, _ = split_holdout(data, 20, seed=1)
    assert np.array_equal(train.images, again.images)


def test_bn_recalibration_sets_exact_batch_statistics():
    torch.manual_seed(0)
    net = SuperNet(SPACE)
    net.set_min_net()
    model = net.get_active_subnet()
    images = torch.randn(64, 1, 32, 32) * 3 + 1
    recalibrate_bn(model, images, batch_size=64)
    stem_bn = model.blocks[0].bn
    with torch.no_grad():
        conv_out = model.blocks[0].conv(images)
    assert torch.allclose(stem_bn.running_mean, conv_out.mean((0, 2, 3)), atol=1e-4)
    assert stem_bn.momentum == 0.1  # restored


def test_scorer_is_deterministic_and_leaves_the_supernet_alone():
    torch.manual_seed(0)
    net = SuperNet(SPACE)
    data = synthetic(300)
    train, held = split_holdout(data, 60, seed=0)
    scorer = SubnetScorer.from_data(net, train, held, recalibration_samples=100)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    arch = SPACE.sample(random.Random(0))
    first, second = scorer(arch), scorer(arch)
    assert first == second and 0.0 <= first <= 1.0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert accuracy(scorer.subnet(arch), scorer.holdout_images, scorer.holdout_labels) == first


def test_search_plan_keeps_several_generations_when_time_is_short():
    settings = preset_settings("full", sram_bytes=65536, flash_bytes=262144)
    assert plan_search(settings, 10_000, fitness_s=1.0) == (settings.population, settings.generations)
    population, generations = plan_search(settings, 240, fitness_s=2.0)  # 60 evaluations each
    assert MIN_POPULATION <= population < settings.population and generations >= MIN_GENERATIONS
    assert population * (generations + 1) <= 60
    assert plan_search(settings, 10, fitness_s=5.0) == (MIN_POPULATION, 1)  # never nothing


def test_settings_round_trip_and_presets():
    settings = preset_settings("quick", sram_bytes=65536, flash_bytes=262144, patch=True)
    assert settings.patch and settings.population < SearchSettings(1, 1).population
    assert SearchSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_latency_calibration_from_measured_counts():
    graph = build_graph(SPACE.spec(SPACE.smallest()))
    counts = {op.name: 1000 for op in graph.ops if op_class_of(graph, op) is not None}
    model = calibrate_from_codegen([(graph, counts)], "cortex-m7")
    assert model.source == "codegen-unicorn"
    assert model.instructions(graph) == pytest.approx(sum(counts.values()), rel=1e-6)


@pytest.mark.parametrize("argv,message", [
    (["search", "--sram", "lots"], "cannot read size"),
    (["search", "--target", "esp32"], "unknown target"),
    (["search", "--time-budget", "soon"], "--time-budget"),
    (["search", "--widths", "a,b"], "cannot read the list"),
])
def test_search_command_input_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def _write_idx(folder, prefix: str, data: ArrayDataset) -> None:
    count = len(data)
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as stream:
        stream.write(struct.pack(">IIII", 0x803, count, 28, 28) + data.images[..., 0].tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as stream:
        stream.write(struct.pack(">II", 0x801, count) + data.labels.astype(np.uint8).tobytes())


@pytest.mark.slow
def test_tiny_search_end_to_end_and_resume(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    _write_idx(folder, "train", synthetic(600))
    _write_idx(folder, "t10k", synthetic(200, seed=1))
    argv = ["search", "--dataset", str(folder), "--preset", "quick", "--sram", "64KB", "--flash", "256KB",
            "--samples", "20", "--population", "4", "--generations", "2", "--widths", "0.2",
            "--resolutions", "32", "--threads", "1", "--no-compile", "-q", "-o", str(tmp_path / "run")]
    assert main(argv) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["winner"]["peak_sram_bytes"] <= 64 * 1024 - report["constraints"]["sram_reserve_bytes"]
    assert (tmp_path / "run" / "space_cdf.png").exists() and (tmp_path / "run" / "report.md").exists()
    assert main(argv) == 2  # refuses to overwrite an earlier search
    assert main(argv + ["--resume"]) == 0
    assert json.loads((tmp_path / "run" / "report.json").read_text())["winner"] == report["winner"]


@pytest.mark.slow
def test_tiny_search_under_a_time_budget(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    _write_idx(folder, "train", synthetic(600))
    _write_idx(folder, "t10k", synthetic(200, seed=1))
    started = time.perf_counter()
    argv = ["search", "--dataset", str(folder), "--preset", "quick", "--sram", "64KB", "--flash", "256KB",
            "--samples", "20", "--widths", "0.2", "--resolutions", "32", "--threads", "1", "--no-compile",
            "--time-budget", "1m", "-q", "-o", str(tmp_path / "run")]
    assert main(argv) == 0
    assert time.perf_counter() - started < 120
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan["population"] >= 8 and plan["seconds_per_fitness"] > 0
    assert 0 < report["final_training_samples"] <= 600


def test_latency_rates_fit_recovers_known_rates():
    from mcuforge.nas.latency_calibration import fit_rates

    rates = {"pointwise": 2.0, "depthwise": 0.3, "other": 0.5}
    rng = random.Random(0)
    samples = []
    for _ in range(6):
        macs = {"pointwise": rng.randint(10**5, 10**6), "depthwise": rng.randint(10**4, 10**6),
                "other": rng.randint(10**4, 10**5)}
        samples.append((macs, round(sum(macs[c] / rates[c] for c in rates))))
    fitted = fit_rates(samples)
    for name, rate in rates.items():
        assert fitted[name] == pytest.approx(rate, rel=1e-3)


def test_flash_estimate_counts_specialised_kernels():
    from mcuforge.models.dsl import parse_spec
    from mcuforge.nas.constraints import CHANNEL_CONSTANT_BYTES, Constraints
    from mcuforge.nas.fast_profile import spec_figures

    same = parse_spec("res32 in1 cls10 | cn_k3_s2_c8 | ir_r4_k3_e3_c8 | pool fc_c10")
    mixed = parse_spec("res32 in1 cls10 | cn_k3_s2_c8 | ir_k3_e3_c8 ir_k5_e3_c8 ir_k7_e3_c8 ir_k3_e4_c8 | pool fc_c10")
    # stem, expand, dw, project, add, pool, fc: the four repeated blocks share their kernels
    assert spec_figures(same).kernels == 7
    assert spec_figures(mixed).kernels > spec_figures(same).kernels
    constraints = Constraints(65536, 262144)
    figures = spec_figures(same)
    weights = figures.flash_bytes - 12 * figures.weighted_channels
    pointwise, depthwise, other = constraints.flash_code_bytes_per_kernel
    assert (figures.pointwise_kernels, figures.depthwise_kernels) == (2, 1)
    assert constraints.estimated_flash_bytes(figures) == (weights + CHANNEL_CONSTANT_BYTES * figures.weighted_channels
                                                          + constraints.flash_code_base_bytes
                                                          + 2 * pointwise + depthwise + 4 * other)
