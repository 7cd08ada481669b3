"""`mcuforge compile` and `mcuforge verify` end to end on a small reference model, report.json
figures, the does-not-fit error, and the exactness of the unicorn instruction count."""

from __future__ import annotations

import json

import pytest

from codegen_support import HAVE_ARM
from conftest import require_reference_file
from mcuforge.cli import main
from mcuforge.codegen.targets import TARGETS
from mcuforge.codegen.unicorn_count import count_invoke
from mcuforge.commands.compile import parse_bytes
from mcuforge.errors import McuforgeError
from mcuforge.reference import published_numbers
from mcuforge.targets import BOARDS

pytestmark = pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")

KWS = "models/mlperf_tiny/kws_ref_model.tflite"


@pytest.fixture(scope="module")
def kws_project(tmp_path_factory):
    model = require_reference_file(KWS)
    out = tmp_path_factory.mktemp("compile") / "kws"
    assert main(["compile", str(model), "-o", str(out), "--target", "cortex-m7"]) == 0
    return out


def test_report_has_the_measured_figures(kws_project):
    report = json.loads((kws_project / "report.json").read_text())
    for key in ("arena_bytes", "scratch_bytes", "peak_activation_bytes", "flash_bytes", "text_bytes",
                "rodata_bytes", "data_bytes", "bss_bytes", "stack_high_water_bytes",
                "measured_sram_bytes", "instructions", "macs", "macs_per_instruction", "schedule",
                "target"):
        assert key in report, key
    assert report["schedule"] == "layer" and report["target"] == "cortex-m7"
    assert report["arena_bytes"] >= report["peak_activation_bytes"] > 0
    assert report["flash_bytes"] == report["text_bytes"] + report["rodata_bytes"] + report["data_bytes"]
    assert report["measured_sram_bytes"] == (report["arena_bytes"] + report["data_bytes"]
                                             + report["bss_bytes"] + report["stack_high_water_bytes"])
    assert report["macs"] == published_numbers()["tflm_cmsis_nn_cortex_m7"]["models"][
        "kws_ref_model.tflite"]["macs"]
    # The yardstick: TFLite Micro + CMSIS-NN needs 7,643,678 instructions (0.348 MACs/instr).
    tflm = published_numbers()["tflm_cmsis_nn_cortex_m7"]["models"]["kws_ref_model.tflite"]
    assert report["instructions"] < tflm["instructions"]
    # and TFLite Micro's arena alone is 24,272 B
    assert report["measured_sram_bytes"] < published_numbers()["tflm_arena_measured"][
        "kws_ref_model.tflite"]["total"]
    # per op class, against TFLite Micro + CMSIS-NN's best figures (depthwise 0.128, 1x1 0.49)
    classes = report["by_op_class"]
    assert classes["depthwise"]["macs_per_instruction"] > 0.128
    assert classes["pointwise_1x1"]["macs_per_instruction"] > 0.49
    assert sum(c["macs"] for c in classes.values()) == report["macs"]
    assert sum(c["instructions"] for c in classes.values()) == report["instructions"]
    # latency/energy per inference on every board (no --board given), from the counted instructions
    boards = report["inference"]["boards"]
    assert [entry["board"] for entry in boards] == list(BOARDS)
    assert all(entry["cycles"] == report["instructions"] for entry in boards)
    for name in ("model.h", "model.c", "Makefile", "kernels/mf_kernels.h", "runner/cortex-m7.ld"):
        assert (kws_project / name).exists(), name


def test_verify_passes(kws_project, capsys):
    assert main(["verify", str(kws_project), "--random", "1"]) == 0
    out = capsys.readouterr().out
    assert "qemu mps2-an500" in out and "host-asan" in out and "FAIL" not in out


def test_instruction_count_is_repeatable(kws_project):
    elf = kws_project / "build" / "cortex-m7" / "app.elf"
    data = bytes(range(256)) * 2
    first = count_invoke(elf, TARGETS["cortex-m7"], data[:490], 12)
    second = count_invoke(elf, TARGETS["cortex-m7"], data[:490], 12)
    assert first.instructions == second.instructions > 1_000_000
    assert first.output == second.output


def test_does_not_fit_fails_cleanly(tmp_path, capsys):
    model = require_reference_file(KWS)
    out = tmp_path / "tiny"
    assert main(["compile", str(model), "-o", str(out), "--sram", "4K"]) == 2
    err = capsys.readouterr().err
    assert "does not fit" in err and "4,096 B available" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_board_implies_its_core(tmp_path):
    model = require_reference_file(KWS)
    out = tmp_path / "m4"
    assert main(["compile", str(model), "-o", str(out), "--board", "stm32f412", "--no-measure"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["target"] == "cortex-m4"


def test_parse_bytes():
    assert parse_bytes("320K") == 320 * 1024
    assert parse_bytes("1M") == 1 << 20
    assert parse_bytes("4096") == 4096
    with pytest.raises(McuforgeError):
        parse_bytes("lots")


def test_kernel_scratch_avoid_brings_the_arena_to_the_analytic_peak(tmp_path):
    """kws: the first conv's im2col rows (200 B) push the input up with the fast kernels; with
    ``--kernel-scratch avoid`` the arena is the analytic peak; ``auto`` keeps the fast kernels
    unless their arena exceeds --sram."""
    model = str(require_reference_file(KWS))
    reports = {}
    for mode, extra in (("allow", []), ("avoid", []), ("auto", ["--sram", "8490"])):
        out = tmp_path / mode
        assert main(["compile", model, "-o", str(out), "--core", "host", "--no-measure",
                     "--kernel-scratch", mode, *extra]) == 0
        reports[mode] = json.loads((out / "report.json").read_text())
    peak = reports["allow"]["peak_activation_bytes"]
    assert reports["allow"]["arena_bytes"] > peak
    assert reports["avoid"]["arena_bytes"] == reports["auto"]["arena_bytes"] == peak
    assert any(k.startswith("mf_convd_") for k in reports["avoid"]["kernels"])
    assert not any(k.startswith("mf_convd_") for k in reports["allow"]["kernels"])
