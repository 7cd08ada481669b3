"""Boards (``--board``) and cores (``--core``): one lookup each, the same options in every command,
and the deprecated ``--target`` mapped to whichever it names with a one-line notice."""

from __future__ import annotations
import pytest

from conftest import require_reference_file

from mcuforge.cli import main
from mcuforge.codegen.targets import TARGETS, get_core
from mcuforge.commands.hardware import resolve_hardware
from mcuforge.errors import McuforgeError
from mcuforge.targets import BOARDS, CORE_NAMES, get_board, get_core_name, target_kind

SMALL_SPEC = "res32 in1 cls10 | cn_k3_s2_c8 | ir_k3_e4_c8 | pool fc_c10"


def test_every_core_has_build_data_and_every_board_a_known_core() -> None:
    assert tuple(TARGETS) == CORE_NAMES
    assert {board.core for board in BOARDS.values()} <= set(CORE_NAMES)


def test_lookups_ignore_case_and_name_the_known_names() -> None:
    assert get_board("STM32F412").name == "stm32f412"
    assert get_core_name("Cortex-M4") == "cortex-m4"
    assert get_core("CORTEX-M7") is TARGETS["cortex-m7"]
    with pytest.raises(McuforgeError, match="unknown board 'esp32'; known boards: stm32f746"):
        get_board("esp32")
    with pytest.raises(McuforgeError, match="unknown core 'cortex-m0'; known cores: host, cortex-m4"):
        get_core("cortex-m0")


def test_target_kind_tells_a_board_from_a_core() -> None:
    assert target_kind("stm32f746") == "board" and target_kind("host") == "core"
    with pytest.raises(McuforgeError, match="unknown target 'esp32'; boards"):
        target_kind("esp32")


def test_a_board_implies_its_core_and_host_may_replace_it() -> None:
    assert resolve_hardware("stm32f412", None, None).core == "cortex-m4"
    hardware = resolve_hardware("stm32f412", "host", None)
    assert hardware.core == "host" and hardware.board is BOARDS["stm32f412"]
    assert resolve_hardware(None, "cortex-m7", None).board is None
    assert resolve_hardware("stm32f412", None, None, accepts_core=False).core is None
    with pytest.raises(McuforgeError, match="--core cortex-m7 does not match --board stm32f412"):
        resolve_hardware("stm32f412", "cortex-m7", None)


def test_deprecated_target_maps_to_what_it_names(capsys) -> None:
    assert resolve_hardware(None, None, "STM32F746").board is BOARDS["stm32f746"]
    assert capsys.readouterr().err == "--target is deprecated: use --board stm32f746\n"
    assert resolve_hardware(None, None, "cortex-m7").core == "cortex-m7"
    assert capsys.readouterr().err == "--target is deprecated: use --core cortex-m7\n"
    with pytest.raises(McuforgeError, match="names a core; this command takes --board"):
        resolve_hardware(None, None, "host", accepts_core=False)
    with pytest.raises(McuforgeError, match="--target stm32f746 contradicts --board stm32f412"):
        resolve_hardware("stm32f412", None, "stm32f746")


def test_profile_board_and_deprecated_target_print_the_same_fit(capsys) -> None:
    assert main(["profile", "mcunet-in3", "--board", "stm32f746"]) == 0
    by_board = capsys.readouterr()
    assert "STM32F746" in by_board.out and by_board.err == ""
    assert main(["profile", "mcunet-in3", "--target", "stm32f746"]) == 0
    by_target = capsys.readouterr()
    assert by_target.out == by_board.out
    assert by_target.err == "--target is deprecated: use --board stm32f746\n"


@pytest.mark.parametrize("argv, message", [
    (["profile", "mcunet-in3", "--board", "esp32"], "unknown board 'esp32'"),
    (["profile", "mcunet-in3", "--target", "cortex-m7"], "names a core"),
    (["search", "--board", "esp32"], "unknown board 'esp32'"),
    (["demo", "--board", "esp32"], "unknown board 'esp32'"),
    (["compile", SMALL_SPEC, "-o", "unused", "--core", "riscv"], "unknown core 'riscv'"),
    (["compile", SMALL_SPEC, "-o", "unused", "--board", "nrf52840", "--core", "cortex-m7"],
     "does not match --board nrf52840"),
])
def test_bad_board_or_core_is_one_line_exit_2(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and message in err[-1]
    assert len(err) == (2 if "--target" in argv else 1)  # the deprecation line, then the error


class _Stop(McuforgeError):
    """Raised by the stand-in for `compile_model` once it has seen its arguments."""


@pytest.mark.parametrize("options, core, sram_bytes", [
    ([], "cortex-m7", None),
    (["--board", "stm32f412"], "cortex-m4", 256 * 1024),
    (["--board", "stm32f412", "--sram", "64K"], "cortex-m4", 64 * 1024),
    (["--board", "stm32h743", "--core", "host"], "host", 512 * 1024),
    (["--core", "cortex-m4"], "cortex-m4", None),
    (["--target", "nrf52840"], "cortex-m4", 256 * 1024),
    (["--target", "host"], "host", None),
])
def test_compile_board_implies_core_and_sram_limit(options, core, sram_bytes, monkeypatch,
                                                   tmp_path) -> None:
    seen = {}

    def record(graph, out_dir, core_name, limit, **_):
        seen.update(core=core_name, sram_bytes=limit)
        raise _Stop("stopped before generating C")

    monkeypatch.setattr("mcuforge.commands.compile.compile_model", record)
    model = str(require_reference_file("models/tflite_micro/hello_world_int8.tflite"))
    assert main(["compile", model, "-o", str(tmp_path / "out"), *options]) == 2
    assert seen == {"core": core, "sram_bytes": sram_bytes}
