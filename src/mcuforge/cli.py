"""The `mcuforge` command line. Each subcommand lives in `mcuforge/commands/<name>.py` and exposes a
click command called ``command``; this module only gathers them and turns errors into one line.

Exit codes: 0 success, 2 bad input (one line on stderr naming the problem), 1 internal error.
"""

from __future__ import annotations

import importlib
import sys

import click

from .errors import McuforgeError

# Subcommand modules, in the order `mcuforge --help` lists them.
COMMAND_MODULES = [
    "demo",
    "zoo",
    "profile",
    "report",
    "train",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mcuforge")
def cli() -> None:
    """mcuforge: will this model fit my MCU, how fast, and give me the C code."""


for _module_name in COMMAND_MODULES:
    cli.add_command(importlib.import_module(f".commands.{_module_name}", __package__).command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; `McuforgeError` becomes ``error: <message>`` and exit code 2."""
    try:
        cli.main(args=argv, prog_name="mcuforge", standalone_mode=False)
    except McuforgeError as exc:
        click.echo(f"error: {exc}", err=True)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
