"""`mcuforge demo`: the main job on the built-in default.

Today it profiles the whole zoo analytically and prints the table (issue 2); the end-to-end demo
(search, train, quantise, compile, run on the emulated MCU, report) replaces it in issue 8.
"""

from __future__ import annotations

import click
from rich.console import Console

from .zoo import print_zoo_table, zoo_rows


@click.command("demo")
def command() -> None:
    """Run the main job on the built-in default (currently: profile the model zoo)."""
    print_zoo_table(zoo_rows(), Console(width=140))
