"""The HTML report of a keyword-spotting demo (`pipeline.kws_demo`), from its saved stage results:
accuracy of the float model, the int8 reference runtime and the MCU on every held-out clip and how
often they agree, spectrograms of a few clips (the int8 features the model reads), the confusion
matrix of the MCU's labels, and the memory budget of the Cortex-M build."""

from __future__ import annotations

from pathlib import Path

import jinja2

from ..atomic import write_text_atomic
from . import plots
from .html import Section, Table, _kb, _pct
from .results import load_all


def _accuracy_section(train: dict, mcu: dict) -> Section:
    clips = mcu.get("clips", train.get("test_clips", 0))
    speakers = ", ".join(mcu.get("speakers") or train.get("test_speakers") or [])
    section = Section("accuracy", "Held-out speaker",
                      f"{train.get('spec', '?')} trained on {train.get('dataset', '?')} ({train.get('frontend', '?')} "
                      f"front end); tested on speaker {speakers or '?'}, never heard in training: {clips} clips.")
    rows = [["float (PyTorch)", _pct(mcu.get("float_accuracy", train.get("float_accuracy")))],
            ["int8, reference runtime", _pct(mcu.get("int8_accuracy", train.get("int8_accuracy")))],
            [f"int8, Cortex-M4 under QEMU ({mcu.get('qemu_machine', '-')})", _pct(mcu.get("mcu_accuracy"))],
            ["MCU scores bit-identical to the reference runtime", f"{mcu.get('bit_identical_scores', '-')}/{clips}"],
            ["labels: float = int8", f"{mcu.get('float_int8_agree', '-')}/{clips}"],
            ["labels: int8 = MCU", f"{mcu.get('int8_mcu_agree', '-')}/{clips}"],
            ["labels: float = int8 = MCU", f"{mcu.get('all_three_agree', '-')}/{clips}"]]
    listen = mcu.get("listen")
    if listen:
        rows.append([f"WAV -> C front end -> model under QEMU, first {listen['clips']} clips: right / "
                     "scores identical to the reference runtime",
                     f"{listen['correct']}/{listen['clips']} / {listen['identical_scores']}/{listen['clips']}"])
    section.tables.append(Table("accuracy", ["figure", "value"], rows))
    return section


def _memory_section(compiled: dict) -> Section:
    limit = compiled.get("sram_limit_bytes")
    frontend = compiled.get("frontend") or {}
    section = Section("memory", "Memory budget",
                      f"Cortex-M build ({compiled.get('core', '?')}). The model build takes features; the listen "
                      f"build adds the {frontend.get('name', 'audio')} front end in C (raw 16 kHz PCM in, label out).")
    rows = [["arena (activations + scratch)", f"{compiled.get('arena_bytes', 0):,} B"],
            [".data + .bss", f"{compiled.get('data_bytes', 0) + compiled.get('bss_bytes', 0):,} B"],
            ["stack high-water mark", f"{compiled.get('stack_high_water_bytes', 0):,} B"],
            ["measured SRAM (arena + data + bss + stack)", f"{compiled.get('measured_sram_bytes', 0):,} B "
             f"({_kb(compiled.get('measured_sram_bytes'))} kB)"],
            ["SRAM limit", f"{limit:,} B ({_kb(limit)} kB)" if limit else "-"],
            ["Flash (text + rodata + data)", f"{compiled.get('flash_bytes', 0):,} B"],
            ["MACs per inference", f"{compiled.get('macs', 0):,}"],
            ["instructions per inference (Cortex-M7, unicorn)", f"{compiled.get('instructions', 0):,}"]]
    if frontend:
        rows += [["listen build: measured SRAM (model + front end: arena + data + bss + stack)",
                  f"{frontend.get('listen_measured_sram_bytes', 0):,} B ({_kb(frontend.get('listen_measured_sram_bytes'))} kB)"],
                 ["listen build: Flash", f"{frontend.get('listen_flash_bytes', 0):,} B"],
                 ["front end's own SRAM (static scratch and window) / Flash",
                  f"{frontend.get('frontend_sram_bytes', 0):,} B / {frontend.get('frontend_flash_bytes', 0):,} B"],
                 ["instructions per 1 s clip, front end + model (Cortex-M7)",
                  f"{frontend.get('instructions_per_clip', 0):,} (front end {frontend.get('frontend_instructions_per_clip', 0):,})"]]
    section.tables.append(Table("memory", ["figure", "value"], rows))
    return section


def render_kws_report(run_dir: str | Path) -> Path:
    """Redraw the figures and write ``DIR/report/index.html`` from the saved KWS stage results."""
    run_dir = Path(run_dir)
    results = load_all(run_dir)
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    train, mcu, compiled = results.get("train", {}), results.get("mcu", {}), results.get("compile", {})
    sections = [_accuracy_section(train, mcu)]
    if mcu.get("examples"):
        maps = [(f"{e['file']}\nsaid {e['label']}, MCU heard {e['predicted']}", e["features"])
                for e in mcu["examples"]]
        plots.plot_feature_maps(maps, out / "spectrograms.png", "Front-end features of held-out clips")
        sections[0].images.append({"src": "spectrograms.png", "alt": "int8 features (spectrograms) of a few clips"})
    if mcu.get("confusion"):
        plots.plot_confusion(mcu["confusion"], mcu["class_names"], out / "confusion.png",
                             "MCU labels on the held-out speaker")
        sections[0].images.append({"src": "confusion.png", "alt": "confusion matrix of the MCU's labels"})
    if compiled:
        sections.append(_memory_section({**compiled, "stack_high_water_bytes":
                                         compiled.get("stack_high_water_bytes", mcu.get("stack_high_water_bytes", 0))}))
    environment = jinja2.Environment(loader=jinja2.PackageLoader("mcuforge.report", "templates"),
                                     autoescape=jinja2.select_autoescape(["html", "j2"]))
    html = environment.get_template("index.html.j2").render(
        title="mcuforge keyword spotting report", run_dir=str(run_dir), sections=sections,
        conventions="Activations int8; the network input (the features) is counted in the arena.")
    return write_text_atomic(out / "index.html", html)
