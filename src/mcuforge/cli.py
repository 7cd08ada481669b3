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
    "quantize",
    "run",
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
        return [name.replace("_", "-") for name in COMMAND_MODULES]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """Import and return the subcommand ``name`` (None when unknown)."""
        module_name = name.replace("-", "_")
        if module_name not in COMMAND_MODULES:
            return None
        return importlib.import_module(f".commands.{module_name}", __package__).command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mcuforge")
def cli() -> None:
    """mcuforge: will this model fit my MCU, how fast, and give me the C code."""


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
