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
    """One MCU board's budget. ``core`` names its core (a `CORE_NAMES` entry).

    ``run_current_a`` and ``supply_v`` are the datasheet's typical supply current in Run mode at
    ``clock_hz`` (code running from Flash) and the supply voltage it is given at, for the energy
    estimate of `mcuforge.analysis.latency_energy`; ``current_source`` names the datasheet and table.
    None (and an empty source) where no datasheet figure is on record: such a board gets a latency
    estimate but no energy estimate, rather than an invented figure."""

    name: str
    sram_bytes: int
    flash_bytes: int
    core: str
    clock_hz: int
    description: str
    run_current_a: float | None = None
    supply_v: float | None = None
    current_source: str = ""

    @property
    def has_energy_figures(self) -> bool:
        """True when the datasheet run current and supply voltage are on record."""
        return self.run_current_a is not None and self.supply_v is not None


# Run-mode current: only figures found in the makers' documents are entered. The STM32F746 (DS10916),
# STM32F412 (DS11139) and STM32H743 (DS12110) "typical current consumption in Run mode" tables could
# not be retrieved when these were entered, so those boards carry none (latency only, no energy).
BOARDS: dict[str, Board] = {
    "stm32f746": Board("stm32f746", 320 * 1024, 1024 * 1024, "cortex-m7", 216_000_000,
                       "STM32F746 (Cortex-M7 216 MHz, 320 KB SRAM, 1 MB Flash)"),
    "stm32f412": Board("stm32f412", 256 * 1024, 1024 * 1024, "cortex-m4", 100_000_000,
                       "STM32F412 (Cortex-M4 100 MHz, 256 KB SRAM, 1 MB Flash)"),
    "stm32h743": Board("stm32h743", 512 * 1024, 2 * 1024 * 1024, "cortex-m7", 480_000_000,
                       "STM32H743 (Cortex-M7 480 MHz, 512 KB SRAM, 2 MB Flash)"),
    # nRF52840 Product Specification, Electrical specification, "CPU running" table: ICPU0, CPU
    # running CoreMark at 64 MHz from flash, clock HFXO, regulator DC/DC: 3.3 mA typical; the
    # current consumption scenarios' common conditions: VDD = 3 V, 25 °C.
    "nrf52840": Board("nrf52840", 256 * 1024, 1024 * 1024, "cortex-m4", 64_000_000,
                      "nRF52840 (Cortex-M4 64 MHz, 256 KB SRAM, 1 MB Flash)",
                      run_current_a=3.3e-3, supply_v=3.0,
                      current_source="nRF52840 Product Specification, CPU running, ICPU0 "
                                     "(CoreMark at 64 MHz from flash, DC/DC, VDD 3 V): 3.3 mA typ."),
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
