"""Boards and cores, the two things a user names as a target, and how each name is looked up.

A *board* (``--board NAME``) is a microcontroller as a budget: SRAM, Flash, clock and the core it
has (`BOARDS`, `get_board`). A *core* (``--core NAME``) is a build target of the generated C: the
portable ``host`` build or a Cortex-M core (`CORE_NAMES`, `get_core_name` here; compiler flags and
QEMU machines of each in `codegen/targets.py`, keyed by the same names). Both lookups ignore case and
fail with one line listing the known names. The old ``--target NAME`` named either, depending on the
command; `target_kind` says which kind a name is, so that it can be mapped to ``--board`` or
``--core``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import McuforgeError


@dataclass(frozen=True)
class Board:
    """One MCU board's budget. ``core`` names its core (a `CORE_NAMES` entry)."""

    name: str
    sram_bytes: int
    flash_bytes: int
    core: str
    clock_hz: int
    description: str


BOARDS: dict[str, Board] = {
    "stm32f746": Board("stm32f746", 320 * 1024, 1024 * 1024, "cortex-m7", 216_000_000,
                       "STM32F746 (Cortex-M7 216 MHz, 320 KB SRAM, 1 MB Flash)"),
    "stm32f412": Board("stm32f412", 256 * 1024, 1024 * 1024, "cortex-m4", 100_000_000,
                       "STM32F412 (Cortex-M4 100 MHz, 256 KB SRAM, 1 MB Flash)"),
    "stm32h743": Board("stm32h743", 512 * 1024, 2 * 1024 * 1024, "cortex-m7", 480_000_000,
                       "STM32H743 (Cortex-M7 480 MHz, 512 KB SRAM, 2 MB Flash)"),
    "nrf52840": Board("nrf52840", 256 * 1024, 1024 * 1024, "cortex-m4", 64_000_000,
                      "nRF52840 (Cortex-M4 64 MHz, 256 KB SRAM, 1 MB Flash)"),
}

# The cores the generated C is built for (`codegen/targets.py` holds each one's compiler data).
CORE_NAMES: tuple[str, ...] = ("host", "cortex-m4", "cortex-m7")


def get_board(name: str) -> Board:
    """The board called ``name`` (case-insensitive); a one-line error lists the known boards."""
    key = name.lower()
    if key not in BOARDS:
        raise McuforgeError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}")
    return BOARDS[key]


def get_core_name(name: str) -> str:
    """The core called ``name`` (case-insensitive); a one-line error lists the known cores."""
    key = name.lower()
    if key not in CORE_NAMES:
        raise McuforgeError(f"unknown core {name!r}; known cores: {', '.join(CORE_NAMES)}")
    return key


def target_kind(name: str) -> str:
    """``"board"`` or ``"core"``: what the old ``--target NAME`` names; a one-line error when it is
    neither."""
    key = name.lower()
    if key in BOARDS:
        return "board"
    if key in CORE_NAMES:
        return "core"
    raise McuforgeError(f"unknown target {name!r}; boards (--board): {', '.join(BOARDS)}; "
                        f"cores (--core): {', '.join(CORE_NAMES)}")


def parse_bytes(text: str) -> int:
    """Parse a size such as ``320KB``, ``1MB``, ``65536`` or ``64k`` (1 KB = 1024 B)."""
    cleaned = text.strip().upper().replace(" ", "").rstrip("B").rstrip("I")
    factor = 1
    if cleaned.endswith("K"):
        factor, cleaned = 1024, cleaned[:-1]
    elif cleaned.endswith("M"):
        factor, cleaned = 1024 * 1024, cleaned[:-1]
    try:
        value = float(cleaned)
    except ValueError:
        raise McuforgeError(f"cannot read size {text!r} (examples: 65536, 64KB, 1MB)") from None
    if value <= 0:
        raise McuforgeError(f"size must be positive, got {text!r}")
    return int(value * factor)
