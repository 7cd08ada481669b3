"""Every OS error on an input or output path is one line naming the path and the reason (exit code
2); any unexpected exception is one ``internal error`` line naming the log file that holds its
traceback (exit code 70), never a traceback on the terminal."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import click
import pytest

from conftest import one_error_line, require_reference_file
from mcuforge import cli
from mcuforge.cli import INTERNAL_ERROR_EXIT, describe_os_error, main, one_line

HELLO = "models/tflite_micro/hello_world_int8.tflite"
HAVE_HOST_CC = shutil.which("gcc") is not None and shutil.which("make") is not None


@pytest.fixture(autouse=True)
def _crash_logs_in_tmp(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_tflite_renamed_json_is_one_line(tmp_path: Path, capsys) -> None:
    renamed = tmp_path / "model.json"
    renamed.write_bytes(require_reference_file(HELLO).read_bytes())
    assert main(["profile", str(renamed)]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: ") and str(renamed) in line and "not a JSON config" in line


def test_output_naming_an_existing_file_is_one_line(tmp_path: Path, capsys) -> None:
    existing = tmp_path / "taken"
    existing.write_text("mine")
    assert main(["compile", str(require_reference_file(HELLO)), "-o", str(existing),
                 _core_option(), "host", "--no-measure"]) == 2
    line = one_error_line(capsys)
    assert str(existing) in line and "not a folder" in line
    assert existing.read_text() == "mine"


def test_output_below_a_file_is_one_line(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["compile", str(require_reference_file(HELLO)), "-o", str(blocker / "out"),
                 _core_option(), "host", "--no-measure"]) == 2
    assert str(blocker) in one_error_line(capsys)


def test_output_in_a_read_only_folder_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:
        # Root ignores the mode bits: make every file-system call inside the folder fail as the
        # kernel would for another user, so the same refusal path runs.
        def refuse(real):
            def call(path, *args, **kwargs):
                if str(path).startswith(str(locked)):
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
                return real(path, *args, **kwargs)
            return call
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: not str(path).startswith(str(locked)))
        monkeypatch.setattr(os, "open", refuse(os.open))
        monkeypatch.setattr(os, "mkdir", refuse(os.mkdir))
    try:
        assert main(["compile", str(require_reference_file(HELLO)), "-o", str(locked / "out"),
                     _core_option(), "host", "--no-measure"]) == 2
        line = one_error_line(capsys)
        assert str(locked) in line and "permission denied" in line.lower()
    finally:
        locked.chmod(0o755)


def test_verify_on_a_truncated_report_is_one_line(tmp_path: Path, capsys) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "report.json").write_text('{"model": "hello", "source": ')
    assert main(["verify", str(project)]) == 2
    line = one_error_line(capsys)
    assert str(project / "report.json") in line and "not a valid report.json" in line


def test_quantize_on_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"\x80\x04\x95" + os.urandom(64))
    assert main(["quantize", str(bogus), "-o", str(tmp_path / "out.tflite"),
                 "--dataset", "fashion-mnist"]) == 2
    line = one_error_line(capsys)
    assert str(bogus) in line and "not a trained model" in line


@pytest.mark.skipif(not HAVE_HOST_CC, reason="needs gcc and make")
def test_make_failure_in_verify_is_one_line_with_the_log_path(tmp_path: Path, capsys) -> None:
    project = tmp_path / "project"
    assert main(["compile", str(require_reference_file(HELLO)), "-o", str(project),
                 _core_option(), "host", "--no-measure"]) == 0
    capsys.readouterr()
    (project / "model.c").write_text("this is not C;\n")
    assert main(["verify", str(project)]) == 2
    line = one_error_line(capsys)
    assert "make host-asan failed" in line and "error" in line
    assert (project / "build" / "host-asan.log").exists()


def test_unexpected_exception_is_one_line_and_a_log_file(tmp_path: Path, monkeypatch, capsys) -> None:
    @click.command("boom")
    def boom() -> None:
        """Fails the way a bug does."""
        raise ZeroDivisionError("division by zero in a kernel")

    monkeypatch.setattr(cli.LazyGroup, "get_command", lambda self, ctx, name: boom)
    assert main(["boom"]) == INTERNAL_ERROR_EXIT == 70
    line = one_error_line(capsys)
    assert line.startswith("internal error") and "ZeroDivisionError" in line
    logs = list((tmp_path / "cache" / "mcuforge").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    assert "Traceback" in logs[0].read_text() and "division by zero in a kernel" in logs[0].read_text()


def test_os_error_with_a_path_is_named() -> None:
    error = PermissionError(errno.EACCES, "Permission denied", "/ro/out")
    assert describe_os_error(error) == "/ro/out: Permission denied"
    renamed = OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b")
    assert describe_os_error(renamed) == "/a -> /b: Invalid cross-device link"


def test_os_error_escaping_a_command_exits_2(monkeypatch, capsys) -> None:
    @click.command("reads")
    def reads() -> None:
        """Reads a file that is not there."""
        Path("/nonexistent/mcuforge/input.bin").read_bytes()

    monkeypatch.setattr(cli.LazyGroup, "get_command", lambda self, ctx, name: reads)
    assert main(["reads"]) == 2
    assert one_error_line(capsys) == ("error: /nonexistent/mcuforge/input.bin: "
                                       "No such file or directory")


def test_one_line_joins_lines() -> None:
    assert one_line("make failed:\n  model.c:1: error\n\n") == "make failed: / model.c:1: error"
    assert one_line("") == ""


def _core_option() -> str:
    """``--core`` where `compile` has it (issue 12 renames ``--target``), else ``--target``."""
    from mcuforge.commands.compile import command

    options = {name for parameter in command.params for name in parameter.opts}
    return "--core" if "--core" in options else "--target"
