"""The ``--max-macs F`` option, one definition for every command that picks a patch schedule
(``profile`` and ``compile``): with ``--patch auto`` or ``min-memory`` the search keeps only the
schedules whose MACs are at most ``F`` times the layer-based MACs (`patch.search.choose`)."""

from __future__ import annotations

from typing import Callable, TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def max_macs_option() -> Callable[[F], F]:
    """The ``--max-macs F`` option (a float, None when not given; checked by
    `patch.search.check_mac_factor` so a bad value is one line and exit code 2)."""
    return click.option("--max-macs", "max_macs", type=float, default=None, metavar="F",
                        help="With --patch auto or min-memory: only schedules whose MACs are at "
                             "most F x the layer-based MACs (e.g. 1.10 for +10 %).")
