"""The `mcuforge` command line. Each subcommand lives in `mcuforge/commands/<name>.py` and exposes a
click command called ``command``; this module only gathers them and turns errors into one line.

Exit codes: 0 success, 2 bad input (one line on stderr naming the problem: a `McuforgeError`, or
an OS error on an input or output path), 130 interrupted (SIGINT), 143 terminated (SIGTERM), 70 an
internal error (any other exception: a bug; one line on stderr, the traceback in a log file under
``$XDG_CACHE_HOME/mcuforge/`` (default ``~/.cache/mcuforge/``), never on the terminal).

SIGTERM is turned into an exception, so that ``finally`` blocks run: staging folders are removed and
child process groups (make, gcc, qemu) are ended before the process exits.
"""

from __future__ import annotations

import datetime
import importlib
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path

import click

from .errors import McuforgeError

# Subcommand modules, in the order `mcuforge --help` lists them.
COMMAND_MODULES = [
    "demo",
    "zoo",
    "profile",
    "report",
    "train",
    "quantize",
    "import_",
    "run",
    "detect",
    "compile",
    "verify",
    "bench",
    "search",
]


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs, so that
    `mcuforge profile` does not pay for torch and the other heavy imports of `train` or `search`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Subcommand names, in COMMAND_MODULES order."""
        return [name.rstrip("_").replace("_", "-") for name in COMMAND_MODULES]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """Import and return the subcommand ``name`` (None when unknown)."""
        module_name = name.replace("-", "_")
        if module_name + "_" in COMMAND_MODULES:  # a Python keyword: commands/import_.py
            module_name += "_"
        if module_name not in COMMAND_MODULES:
            return None
        return importlib.import_module(f".commands.{module_name}", __package__).command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mcuforge")
def cli() -> None:
    """mcuforge: will this model fit my MCU, how fast, and give me the C code."""


INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE of sysexits.h
TERMINATED_EXIT = 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup (``finally``, ``except BaseException``)
    runs as it does for KeyboardInterrupt."""


def _raise_terminated(signal_number: int, frame: object) -> None:
    raise Terminated()


def one_line(message: str) -> str:
    """``message`` on one line: its non-empty lines joined with " / "."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return " / ".join(lines) if lines else ""


def describe_os_error(exc: OSError) -> str:
    """``PATH: reason`` of an OS error (both paths of a rename), or its text when it names none."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return one_line(reason)
    names = str(exc.filename) if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
    return one_line(f"{names}: {reason}")


def crash_log_folder() -> Path:
    """Where tracebacks of internal errors go: ``$XDG_CACHE_HOME/mcuforge`` (or ~/.cache/mcuforge)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mcuforge"


def write_crash_log(exc: BaseException, argv: list[str] | None) -> Path | None:
    """Write the traceback of ``exc`` and the command line to a new log file; returns its path (None
    when neither the cache folder nor the temporary folder can be written)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = (f"mcuforge {' '.join(sys.argv[1:] if argv is None else argv)}\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    for folder in (crash_log_folder(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"crash-{stamp}-{os.getpid()}.log"
            path.write_text(text)
            return path
        except OSError:
            continue
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI. `McuforgeError` and OS errors on paths become ``error: <one line>``
    and exit code 2; any other exception one ``internal error`` line and exit code 70."""
    previous_handler = None
    try:
        previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (e.g. called from a worker thread)
        pass
    try:
        return _run(argv)
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


def _run(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="mcuforge", standalone_mode=False)
    except McuforgeError as exc:
        click.echo(f"error: {one_line(str(exc))}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Terminated:
        click.echo("terminated", err=True)
        return TERMINATED_EXIT
    except OSError as exc:
        click.echo(f"error: {describe_os_error(exc)}", err=True)
        return 2
    except Exception as exc:  # a bug: one line here, the traceback in a log file
        log = write_crash_log(exc, argv)
        where = f"traceback in {log}" if log else "no log file could be written"
        click.echo(f"internal error (a bug in mcuforge): {type(exc).__name__}: "
                   f"{one_line(str(exc))[:300]}; {where}", err=True)
        return INTERNAL_ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
