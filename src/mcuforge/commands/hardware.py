"""The ``--board``, ``--core`` and deprecated ``--target`` options, the same for every command.

``--board NAME`` names a microcontroller (SRAM, Flash, clock and core: `mcuforge.targets.BOARDS`);
``--core NAME`` the build target of the generated C (host, cortex-m4, cortex-m7). A command that
builds C takes both, and a board implies its core; a command that only checks a budget takes
``--board``. ``--target NAME`` still works for either: it prints one deprecation line on stderr
naming the option to use and is read as that option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import click

from ..errors import McuforgeError
from ..targets import BOARDS, CORE_NAMES, Board, get_board, get_core_name, target_kind

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Hardware:
    """What a command was told to target: a board (or None) and a core name (or None)."""

    board: Board | None
    core: str | None

    def board_or(self, default_board: str) -> Board:
        """The board given, else the board called ``default_board``."""
        return self.board if self.board is not None else get_board(default_board)


def board_option(help_text: str, default_board: str | None = None) -> Callable[[F], F]:
    """The ``--board NAME`` option (names checked by `get_board`, case-insensitive). Its value is
    None when not given, so that a deprecated ``--target`` can take its place; ``default_board`` is
    only shown in the help: the command applies it (`Hardware.board_or`)."""
    shown = f" (default: {default_board})" if default_board else ""
    return click.option("--board", default=None, metavar="NAME",
                        help=f"{help_text} One of {', '.join(BOARDS)}{shown}.")


def core_option(help_text: str) -> Callable[[F], F]:
    """The ``--core NAME`` option (names checked by `get_core_name`, case-insensitive)."""
    return click.option("--core", default=None, metavar="NAME",
                        help=f"{help_text} One of {', '.join(CORE_NAMES)}.")


def target_option(short: str | None = None) -> Callable[[F], F]:
    """The deprecated ``--target NAME`` option (a board or a core, whichever it names)."""
    names = ("--target", short) if short else ("--target",)
    return click.option(*names, "target", default=None, metavar="NAME",
                        help="Deprecated: use --board (an MCU) or --core (a build target).")


def resolve_hardware(board: str | None, core: str | None, target: str | None,
                     accepts_core: bool = True) -> Hardware:
    """The board and core a command was given, ``--target`` mapped to ``--board`` or ``--core``
    (with its one-line deprecation notice on stderr). A board implies its core; a Cortex-M core
    other than the board's is an error (``--core host`` with a board builds for the host under
    the board's budget). ``accepts_core`` is False for commands that build no C."""
    if target is not None:
        kind = target_kind(target)
        name = get_board(target).name if kind == "board" else get_core_name(target)
        click.echo(f"--target is deprecated: use --{kind} {name}", err=True)
        if kind == "core" and not accepts_core:
            raise McuforgeError(f"--target {target} names a core; this command takes --board "
                                f"(one of {', '.join(BOARDS)})")
        given = board if kind == "board" else core
        if given is not None and given.lower() != name:
            raise McuforgeError(f"--target {target} contradicts --{kind} {given}")
        board, core = (name, core) if kind == "board" else (board, name)
    chosen_board = get_board(board) if board is not None else None
    chosen_core = get_core_name(core) if core is not None else None
    if chosen_board is not None:
        if chosen_core is None:
            chosen_core = chosen_board.core if accepts_core else None
        elif chosen_core not in ("host", chosen_board.core):
            raise McuforgeError(f"--core {chosen_core} does not match --board {chosen_board.name} "
                                f"(its core is {chosen_board.core})")
    return Hardware(chosen_board, chosen_core)
