"""Build targets of the generated C, one per core (``--core``): compiler, flags, and the QEMU machine
that runs each one. `TARGETS` is keyed by `mcuforge.targets.CORE_NAMES`; `get_core` looks a core up
the way `mcuforge.targets.get_board` looks up a board.

``host`` is the portable C99 build with the system gcc (and, for tests, AddressSanitizer and
UndefinedBehaviorSanitizer). ``cortex-m4`` and ``cortex-m7`` are bare-metal builds with
``arm-none-eabi-gcc`` for the MPS2 boards that QEMU emulates (AN386 is a Cortex-M4, AN500 a Cortex-M7);
both have the DSP extension, so their kernels take the SMLAD/SMMULR path.

Memory map of the MPS2 AN386/AN500 images in QEMU (hw/arm/mps2.c): ZBT SSRAM1, 4 MiB at 0x00000000,
holds the vector table, code and constants (the Flash stand-in); ZBT SSRAM2/3, 4 MiB at 0x20000000,
holds .data, .bss, the arena and the stack.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..targets import get_core_name


@dataclass(frozen=True)
class Target:
    """One build target of the generated project."""

    name: str
    cc: str
    cflags: tuple[str, ...]
    dsp: bool
    qemu_machine: str | None = None
    qemu_cpu: str | None = None
    flash_origin: int = 0x0000_0000
    flash_bytes: int = 4 * 1024 * 1024
    sram_origin: int = 0x2000_0000
    sram_bytes: int = 4 * 1024 * 1024
    optimise: str = "balanced"

    @property
    def is_cortex_m(self) -> bool:
        """True for the bare-metal Arm targets."""
        return self.qemu_machine is not None


_COMMON = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-unused-function")

# -O2 rather than -O3: the kernels are already unrolled where it pays, and -O3's extra vectoriser
# unrolling grows .text without fewer executed instructions on Cortex-M.
_CORTEX_M = ("-mthumb", "-ffunction-sections", "-fdata-sections", "-fno-common")

TARGETS: dict[str, Target] = {
    "host": Target("host", "gcc", _COMMON, dsp=False),
    "cortex-m4": Target(
        "cortex-m4", "arm-none-eabi-gcc",
        _COMMON + _CORTEX_M + ("-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
        dsp=True, qemu_machine="mps2-an386", qemu_cpu="cortex-m4"),
    "cortex-m7": Target(
        "cortex-m7", "arm-none-eabi-gcc",
        _COMMON + _CORTEX_M + ("-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
        dsp=True, qemu_machine="mps2-an500", qemu_cpu="cortex-m7"),
}

# `compile --speed / --size`: the optimisation level of every build of the project, and (size) kernels
# that take their shape as arguments where specialising them costs Flash per shape (1x1 convs).
# Measured (Cortex-M7, `mcuforge compile`, 2026-12-06): kws balanced 3,757,761 instructions /
# 38,325 B Flash, --speed 3,710,889 / 39,897 B, --size 4,311,264 / 37,734 B; mcunet-in3 balanced
# 128.7 M / 897,733 B, --size 154.9 M / 880,630 B (weights 843,496 B).
OPTIMISATIONS = {"balanced": "-O2", "speed": "-O3", "size": "-Os"}


def with_optimisation(target: Target, optimise: str) -> Target:
    """``target`` built for ``optimise`` (a key of `OPTIMISATIONS`)."""
    level = OPTIMISATIONS[optimise]
    flags = tuple(level if flag in OPTIMISATIONS.values() else flag for flag in target.cflags)
    return replace(target, cflags=flags, optimise=optimise)


# Flags of the sanitised host build that `mcuforge verify` and the tests use.
HOST_SANITIZE_FLAGS = ("-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                       "-fno-omit-frame-pointer")


def get_core(name: str) -> Target:
    """The build target of the core called ``name`` (case-insensitive); a one-line error lists the
    known cores."""
    return TARGETS[get_core_name(name)]
