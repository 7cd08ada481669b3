"""The report of a search run: ``report.json`` (everything), ``report.md`` (for people) and
``search_curve.png`` (best held-out accuracy against evaluated candidates, evolution vs random).

Every figure is in bytes (1 kB = 1024 B). The report names the latency model's calibration and the
SRAM accounting (analytic planner peak, with the patch schedule where one is needed; measured SRAM of
the generated C = arena + .data + .bss + stack high-water).
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_json_atomic


def _kb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1024:.1f} kB"


def plot_search_curve(report: dict, path: Path) -> None:
    """Best fitness vs number of evaluated candidates for evolution (and random search)."""
    from ..report.plots import save_figure
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.8))
    curve = report["evolution"]["curve"]
    axes.plot(range(1, len(curve) + 1), [100 * v for v in curve], label="evolution")
    if report.get("random_search"):
        rand = report["random_search"]["curve"]
        axes.plot(range(1, len(rand) + 1), [100 * v for v in rand], label="random search")
    axes.set_xlabel("evaluated candidates")
    axes.set_ylabel("best held-out accuracy (%)")
    axes.set_title("TinyNAS search (supernet weights, BN recalibrated)")
    axes.grid(alpha=0.3)
    axes.legend()
    save_figure(figure, path)


def markdown(report: dict) -> str:
    """The human-readable report."""
    c, w, d = report["constraints"], report["winner"], report["deploy"]
    lines = [
        "# TinyNAS search report", "",
        f"Target {report['target']}: SRAM {_kb(c['sram_bytes'])} (activations may use "
        f"{_kb(c['sram_bytes'] - c['sram_reserve_bytes'])}; {_kb(c['sram_reserve_bytes'])} reserved for scratch, "
        f"stack and runtime data), Flash {_kb(c['flash_bytes'])} (estimated for the generated program: weights, "
        f"16 B per channel, {_kb(c['flash_code_base_bytes'])} + {c['flash_code_bytes_per_kernel']} B per "
        f"1x1 / depthwise / other kernel of code), patch schedules {'on' if c['patch'] else 'off'}."
        + (f" Latency limit {c['latency_ms']} ms." if c.get("latency_ms") else ""), "",
        "Latency model: " + (f"{report['latency_model']['source']} — {report['latency_model']['description']}"
                             if report["latency_model"] else "not used (no latency limit)") + ".",
        "", "## Stage 1: search-space optimisation", "",
        f"{len(report['stage1']['spaces'])} spaces, {report['settings']['space_samples']} samples each, "
        f"{report['stage1']['ms_per_sample']:.2f} ms per sampled network; chosen **{report['space']['name']}** "
        "(highest mean MACs of satisfying samples). CDFs: `space_cdf.png`.", "",
        "| space | fit | mean MMACs | max MMACs |", "|---|---|---|---|"]
    for row in report["stage1"]["spaces"][:8]:
        lines.append(f"| {row['space']} | {row['fit_fraction']:.1%} | {row['mean_macs'] / 1e6:.2f} | "
                     f"{row['max_macs'] / 1e6:.2f} |")
    sn = report["supernet"]
    lines += ["", "## Stage 2: supernet and search", "",
              f"Supernet: {sn['epochs']} epoch(s) on {sn['train_samples']} images "
              "(sandwich rule, in-place distillation)."]
    for h in sn["history"]:
        lines.append(f"- epoch {h['epoch']}: largest-subnet train accuracy {h['train_accuracy_largest']:.2%}, "
                     f"{h['seconds']:.0f} s")
    evo = report["evolution"]
    lines += ["", f"Evolution: {evo['evaluations']} candidates evaluated, best held-out accuracy "
                  f"{evo['best_fitness']:.2%} ({evo['seconds']:.0f} s)."]
    if report.get("random_search"):
        r = report["random_search"]
        verdict = "beats" if evo["best_fitness"] > r["best_fitness"] else "does not beat"
        lines.append(f"Random search with the same {r['evaluations']} evaluations: {r['best_fitness']:.2%} — "
                     f"evolution {verdict} random search. Curve: `search_curve.png`.")
        if r.get("confirmation"):
            c = r["confirmation"]
            lines.append(f"On {c['images']} other held-out images (never used by the search): evolution's winner "
                         f"{c['evolution']:.2%}, random search's {c['random']:.2%}.")
    check = report.get("device_check")
    if check:
        lines += ["", "Device check (generated C built for the target, candidates best first): "
                      + "; ".join(f"{a['arch']}: SRAM {_kb(a['measured_sram_bytes'])}, Flash {_kb(a['flash_bytes'])}"
                                  f" {'fits' if a['fits'] else 'does not fit'}" for a in check["attempts"]) + "."]
    lines += ["", "## Winner", "", f"`{w['spec']}`", "",
              f"- {w['macs'] / 1e6:.2f} MMACs, {w['params']:,} parameters, weights Flash {_kb(w['flash_bytes'])}, "
              f"estimated program Flash {_kb(w['estimated_program_flash_bytes'])}",
              f"- peak SRAM (planner, analytic): layer-based {_kb(w['peak_layer_bytes'])}; used schedule "
              f"`{w['schedule']}` {_kb(w['peak_sram_bytes'])}"
              + ("" if w["layer_based_fits"] else " — layer-based execution could NOT fit this network"),
              f"- float test accuracy {d['float_accuracy']:.2%}, int8 {d['int8_accuracy']:.2%} "
              f"({d['int8_test_samples']} test images, bit-exact reference runtime), trained {d['epochs']} epoch(s)"]
    if d.get("compile"):
        cr = d["compile"]
        lines.append(f"- generated C for {cr.get('target')}: measured SRAM {_kb(cr.get('measured_sram_bytes'))} "
                     f"(arena {_kb(cr.get('arena_bytes'))}), Flash {_kb(cr.get('flash_bytes'))}, "
                     f"{cr.get('instructions', 0):,} instructions per inference ({cr.get('instructions_target')})")
    else:
        lines.append("- not compiled")
    lines += ["", f"Total time {report['seconds'] / 60:.1f} min.", ""]
    return "\n".join(lines)


def write_report(report: dict, run_dir: str | Path) -> None:
    """Write report.json, report.md and search_curve.png into ``run_dir`` (atomically)."""
    run_dir = Path(run_dir)
    write_json_atomic(run_dir / "report.json", report)
    plot_search_curve(report, run_dir / "search_curve.png")
    text = markdown(report)
    temporary = run_dir / ".report.md.tmp"
    temporary.write_text(text)
    temporary.replace(run_dir / "report.md")
