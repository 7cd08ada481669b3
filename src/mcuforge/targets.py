"""Microcontroller targets as data: SRAM, Flash, core and clock."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import McuforgeError


@dataclass(frozen=True)
class Target:
    """One MCU board's budget. ``core`` names the codegen target (cortex-m4 / cortex-m7)."""

    name: str
    sram_bytes: int
    flash_bytes: int
    core: str
    clock_hz: int
    description: str


TARGETS: dict[str, Target] = {
    "stm32f746": Target("stm32f746", 320 * 1024, 1024 * 1024, "cortex-m7", 216_000_000,
                        "STM32F746 (Cortex-M7 216 MHz, 320 KB SRAM, 1 MB Flash)"),
    "stm32f412": Target("stm32f412", 256 * 1024, 1024 * 1024, "cortex-m4", 100_000_000,
                        "STM32F412 (Cortex-M4 100 MHz, 256 KB SRAM, 1 MB Flash)"),
    "stm32h743": Target("stm32h743", 512 * 1024, 2 * 1024 * 1024, "cortex-m7", 480_000_000,
                        "STM32H743 (Cortex-M7 480 MHz, 512 KB SRAM, 2 MB Flash)"),
    "nrf52840": Target("nrf52840", 256 * 1024, 1024 * 1024, "cortex-m4", 64_000_000,
                       "nRF52840 (Cortex-M4 64 MHz, 256 KB SRAM, 1 MB Flash)"),
}


def get_target(name: str) -> Target:
    """The target called ``name`` (case-insensitive); a clear error lists the known ones."""
    key = name.lower()
    if key not in TARGETS:
        raise McuforgeError(f"unknown target {name!r}; known targets: {', '.join(TARGETS)}")
    return TARGETS[key]


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
