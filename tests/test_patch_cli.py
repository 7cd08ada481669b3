"""`mcuforge profile --patch`: JSON figures in both input conventions, text, plot, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mcuforge.cli import main


def test_profile_patch_json_mobilenet_v2(capsys):
    # The paper's convention (no pointwise overlap; the default counts it as `compile` plans it).
    assert main(["profile", "mobilenet-v2", "--patch", "4x4@b4", "--no-overlap-pointwise",
                 "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    patch = payload["patch"]
    assert patch["schedule"] == "4x4@b4" and patch["input_patch"] == [75, 75]
    assert payload["layer_based"]["peak_activation_bytes"] == 1_404_928
    assert payload["peak_activation_bytes"] == patch["peak_activation_bytes"] < 1_404_928
    assert payload["peak_activation_bytes_input_streamed"] == patch["peak_activation_bytes_input_streamed"]
    assert patch["patch_stage_peak_bytes_input_streamed"] == 162_288
    assert patch["stage_macs_naive_equal_windows"] == 129_517_568
    modes = {m["halo"]: m for m in patch["halo_modes"]}
    assert modes["none"]["mac_overhead"] > modes["cols"]["mac_overhead"] > modes["full"]["mac_overhead"] == 0
    assert modes["none"]["halo_cache_bytes"] == 0 < modes["cols"]["halo_cache_bytes"]
    assert payload["macs"] == 300_774_272  # the model's MACs; patch["macs"] adds recomputation
    assert patch["macs"] == payload["macs"] + patch["mac_overhead"]


def test_profile_patch_auto_under_sram_and_plot(tmp_path, capsys):
    png = tmp_path / "bars.png"
    assert main(["profile", "mcunet-in3", "--patch", "auto", "--sram", "200K", "--halo", "any",
                 "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "patch schedule" in out and "input streamed" in out and "full-cache" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["profile", "mcunet-in3", "--patch", "auto", "--sram", "200K", "--halo", "any",
                 "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["peak_activation_bytes"] <= 200 * 1024 < payload["layer_based"]["peak_activation_bytes"]


def test_profile_patch_none_keeps_the_layer_based_keys(capsys):
    assert main(["profile", "mcunet-in3", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["profile", "mcunet-in3", "--patch", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == plain
    assert "patch" not in plain


def test_profile_max_macs_limits_min_memory(capsys):
    assert main(["profile", "mcunet-in3", "--patch", "min-memory", "--json"]) == 0
    free = json.loads(capsys.readouterr().out)["patch"]
    assert main(["profile", "mcunet-in3", "--patch", "min-memory", "--max-macs", "1.10",
                 "--json"]) == 0
    limited = json.loads(capsys.readouterr().out)["patch"]
    assert free["macs"] > 1.10 * 81_785_520 >= limited["macs"]
    assert limited["peak_activation_bytes"] > free["peak_activation_bytes"]


@pytest.mark.parametrize("args, expected", [
    (["--max-macs", "1.1"], "--max-macs limits the schedule --patch auto or min-memory picks"),
    (["--patch", "min-memory", "--max-macs", "0.5"], "at least 1.0"),
    (["--patch", "6x6@b4", "--max-macs", "1.1"], "above --max-macs 1.1"),
    (["--patch", "4x4@b99"], "no block 'b99'"),
    (["--patch", "4x4"], "NxN@SPLIT"),
    (["--patch", "4x4@b20"], "cannot split"),
    (["--patch", "auto", "--sram", "10K"], "does not fit"),
])
def test_bad_patch_option_is_one_line_exit_2(args, expected):
    result = subprocess.run([sys.executable, "-m", "mcuforge", "profile", "mcunet-in3", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr
