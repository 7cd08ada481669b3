"""`mcuforge demo`: stages resume from the last finished one; the slow test runs the whole job
(search, train, quantise, compile, QEMU, TFLite Micro, report) and checks the report in Chromium."""

from __future__ import annotations

import pytest

from mcuforge.pipeline import demo
from mcuforge.report.results import load_stage

from test_report_html import check_report_in_browser


def test_interrupted_demo_resumes_from_the_last_finished_stage(tmp_path, monkeypatch):
    calls: list[str] = []

    def fake(stage):
        def run(settings, log):
            calls.append(stage)
            if stage == "mcu" and calls.count("mcu") == 1:
                raise KeyboardInterrupt  # the user interrupts the demo during the QEMU stage
            return {"stage": stage}
        return run

    monkeypatch.setattr(demo, "STAGE_FUNCTIONS", {name: fake(name) for name in demo.STAGES})
    settings = demo.DemoSettings(run_dir=tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        demo.run_demo(settings, log=lambda line: None)
    assert calls == ["search", "compile", "mcu"]
    assert load_stage(settings.run_dir, "compile") == {"stage": "compile", "stage_seconds": pytest.approx(0, abs=5)}
    assert load_stage(settings.run_dir, "mcu") is None
    demo.run_demo(settings, log=lambda line: None)
    assert calls == ["search", "compile", "mcu", "mcu", "tflm", "report"]


@pytest.mark.slow
def test_demo_end_to_end_and_report_in_chromium(tmp_path):
    settings = demo.DemoSettings(run_dir=tmp_path / "demo", mcu_images=1000)
    html = demo.run_demo(settings, log=print)
    mcu = load_stage(settings.run_dir, "mcu")
    assert mcu["images"] == 1000 and mcu["bit_identical_outputs"] == 1000
    compiled = load_stage(settings.run_dir, "compile")
    assert compiled["measured_sram_bytes"] <= settings.limits()[0]
    assert compiled["flash_bytes"] <= settings.limits()[1]
    check_report_in_browser(html, tmp_path)
