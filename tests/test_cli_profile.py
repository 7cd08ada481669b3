"""`mcuforge profile`: JSON contract, table, plot, and bad input as one clear line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import require_reference_file
from mcuforge.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mcuforge", *args], capture_output=True, text=True,
                          timeout=120)


def test_profile_json_has_contract_keys(capsys):
    assert main(["profile", "mcunet-in3", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    for key in ("macs", "params", "flash_bytes", "peak_activation_bytes",
                "peak_activation_bytes_no_inplace", "peak_activation_bytes_input_streamed", "blocks"):
        assert key in payload
    assert payload["macs"] == 81_785_520 and payload["params"] == 737_408
    assert payload["peak_activation_bytes"] == 247_808
    assert payload["peak_activation_bytes_no_inplace"] == 340_736
    assert {"name", "peak_activation_bytes", "macs"} <= set(payload["blocks"][0])
    assert sum(b["macs"] for b in payload["blocks"]) == payload["macs"]
    assert max(b["peak_activation_bytes"] for b in payload["blocks"]) == payload["peak_activation_bytes"]


def test_profile_resolution_and_width(capsys):
    assert main(["profile", "mobilenet-v2", "--width", "1.0", "--resolution", "224", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["peak_activation_bytes"] == 1_404_928
    assert payload["peak_activation_bytes_no_inplace"] == 1_505_280


def test_profile_table_and_plot(tmp_path, capsys):
    png = tmp_path / "bars.png"
    assert main(["profile", "mcunet-in3", "--target", "stm32f746", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "247,808" in out and "STM32F746" in out and "fit" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_patch_split_accepts_either_block_spelling(capsys):
    """A zoo graph names its blocks b0, b1, ... and a .tflite graph block0, block1, ...; --patch
    takes either spelling for either, and reports the graph's own name."""
    assert main(["profile", "mobilenet-v2", "--patch", "4x4@b4", "--json"]) == 0
    by_zoo_spelling = json.loads(capsys.readouterr().out)
    assert main(["profile", "mobilenet-v2", "--patch", "4x4@block4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == by_zoo_spelling
    assert by_zoo_spelling["patch"]["schedule"] == "4x4@b4"


def test_tflite_patch_split_accepts_the_zoo_spelling(capsys):
    model = str(require_reference_file("models/tflite_micro/person_detect.tflite"))
    assert main(["profile", model, "--patch", "4x1@block4", "--json"]) == 0
    by_tflite_spelling = json.loads(capsys.readouterr().out)
    assert main(["profile", model, "--patch", "4x1@b4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == by_tflite_spelling
    assert by_tflite_spelling["patch"]["schedule"] == "4x1@block4"


def test_profile_accepts_the_zoo_name_spellings_users_type(capsys):
    assert main(["profile", "mobilenet-v2", "--json"]) == 0
    canonical = json.loads(capsys.readouterr().out)
    for typed in ("mobilenet_v2", "mobilenetv2", "MobileNetV2"):
        assert main(["profile", typed, "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == canonical


def test_profile_json_config_and_spec_string(reference, capsys):
    path = reference / "configs" / "mcunet" / "mcunet-320kb-1mb_imagenet.json"
    assert main(["profile", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["macs"] == 81_785_520
    assert main(["profile", "res32 in1 cls10 | cn_k3_s2_c8 | ir_k3_e4_c8 | pool fc_c10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resolution"] == 32


@pytest.mark.parametrize("args, expected", [
    (["profile", "no-such-model"], "unknown model 'no-such-model'"),
    (["profile", "mobilenet-v2", "--resolution", "100"], "multiple of 16"),
    (["profile", "mcunet-in3", "--width", "0.5"], "fixed width"),
])
def test_bad_input_is_one_line_exit_2(args, expected):
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr


def test_malformed_json_config(tmp_path):
    bad = tmp_path / "net.json"
    bad.write_text('{"first_conv": {"out_channels": 16,')
    result = run_cli("profile", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "net.json" in result.stderr and "malformed JSON" in result.stderr
    missing = tmp_path / "missing.json"
    missing.write_text('{"first_conv": {}, "blocks": [], "classifier": {}}')
    result = run_cli("profile", str(missing))
    assert result.returncode == 2 and "missing.json" in result.stderr and "out_channels" in result.stderr
