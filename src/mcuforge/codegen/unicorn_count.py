"""Exact instruction counts of ``mcuforge_invoke`` on Cortex-M, by running the linked ELF in unicorn.

The ELF's loadable segments are written at their run addresses (so .data already holds its initial
values and .bss/arena are zero), the input is written into the runner's input buffer, and
``mcuforge_invoke(input, output)`` is called directly: SP is the top of the linked stack, LR a return
address in a trap page, PC the function. Semihosting never runs (it lives in the runner's main, which
is not executed), so the counted region is exactly the model.

Counting: a block hook sees every executed translation block with its address and byte size; the
instructions in it are counted by decoding Thumb-2 widths (a halfword whose top five bits are 0b11101,
0b11110 or 0b11111 starts a 32-bit instruction), cached per block. Instructions skipped inside IT
blocks are counted, as in the TFLite Micro + CMSIS-NN yardstick of numbers.json. The count is a pure
function of the ELF and the input, so it is exact and repeatable. Counts are also kept per function
(from the ELF symbol table), which gives the per-kernel figures of the report. The stack used by the call is
measured by painting the stack before the call and finding the lowest overwritten word.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import McuforgeError
from .elf import ElfImage, read_elf
from .targets import Target

_TRAP = 0x1FF0_0000          # a page outside Flash and SRAM holding the return address
_PAINT = 0xA5


@dataclass(frozen=True)
class InvokeCount:
    """Instructions executed by one ``mcuforge_invoke`` call, its output and its stack use."""

    instructions: int
    blocks: int
    stack_bytes: int
    output: bytes
    per_function: dict[str, int]


def _thumb_instructions(code: bytes) -> int:
    count, i = 0, 0
    while i + 1 < len(code):
        top = code[i + 1] >> 3
        i += 4 if top in (0b11101, 0b11110, 0b11111) else 2
        count += 1
    return count


@dataclass(frozen=True)
class CallCount:
    """Instructions executed by one call of a function of the ELF, per function too, its stack use
    and its return value (R0)."""

    instructions: int
    blocks: int
    stack_bytes: int
    per_function: dict[str, int]
    return_value: int
    memory: object  # the unicorn engine after the call, for reading results


def count_call(elf_path: Path, target: Target, function: str, args: tuple[int | str, ...],
               writes: dict[str, bytes]) -> CallCount:
    """Call ``function(*args)`` of the linked ELF once in unicorn and count what it executes;
    ``writes`` fills buffers (by symbol) first, an ``args`` entry that is a string is a symbol's
    address."""
    try:
        import unicorn
        from unicorn import arm_const
    except ImportError as exc:  # pragma: no cover - unicorn is a test dependency
        raise McuforgeError("instruction counts need the 'unicorn' package") from exc
    image: ElfImage = read_elf(elf_path)
    uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
    model = {"cortex-m4": arm_const.UC_CPU_ARM_CORTEX_M4,
             "cortex-m7": arm_const.UC_CPU_ARM_CORTEX_M7}[target.name]
    uc.ctl_set_cpu_model(model)
    uc.mem_map(target.flash_origin, target.flash_bytes)
    uc.mem_map(target.sram_origin, target.sram_bytes)
    uc.mem_map(_TRAP, 0x1000)
    uc.mem_write(_TRAP, b"\xfe\xe7" * 8)  # b .
    for segment in image.segments:
        uc.mem_write(segment.vaddr, segment.data)
    stack_limit, stack_top = image.symbol("__StackLimit"), image.symbol("__StackTop")
    uc.mem_write(stack_limit, bytes([_PAINT]) * (stack_top - stack_limit))
    for symbol, data in writes.items():
        uc.mem_write(image.symbol(symbol), bytes(data))
    uc.reg_write(arm_const.UC_ARM_REG_SP, stack_top)
    uc.reg_write(arm_const.UC_ARM_REG_LR, _TRAP | 1)
    registers = (arm_const.UC_ARM_REG_R0, arm_const.UC_ARM_REG_R1, arm_const.UC_ARM_REG_R2,
                 arm_const.UC_ARM_REG_R3)
    for register, value in zip(registers, args):
        uc.reg_write(register, image.symbol(value) if isinstance(value, str) else value)
    if target.name in ("cortex-m4", "cortex-m7"):
        # Enable the FPU (CPACR CP10/CP11 full access) as the startup code does.
        try:
            uc.reg_write(arm_const.UC_ARM_REG_CPACR, 0xF << 20)
        except (AttributeError, unicorn.UcError):
            pass
    sizes: dict[tuple[int, int], tuple[int, str]] = {}
    totals = {"instructions": 0, "blocks": 0}
    per_function: dict[str, int] = {}
    starts = [f[0] for f in image.functions]

    def function_of(address: int) -> str:
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < image.functions[i][0] + image.functions[i][1]:
            return image.functions[i][2]
        return "?"

    def on_block(emu, address, size, _user):
        key = (address, size)
        known = sizes.get(key)
        if known is None:
            known = (_thumb_instructions(bytes(emu.mem_read(address, size))), function_of(address))
            sizes[key] = known
        totals["instructions"] += known[0]
        totals["blocks"] += 1
        per_function[known[1]] = per_function.get(known[1], 0) + known[0]

    uc.hook_add(unicorn.UC_HOOK_BLOCK, on_block, begin=target.flash_origin,
                end=target.flash_origin + target.flash_bytes - 1)
    entry = image.symbol(function)
    try:
        uc.emu_start(entry | 1, _TRAP)
    except unicorn.UcError as exc:
        pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
        raise McuforgeError(f"unicorn stopped at pc=0x{pc:08x}: {exc}") from None
    stack = np.frombuffer(bytes(uc.mem_read(stack_limit, stack_top - stack_limit)), dtype=np.uint8)
    touched = np.nonzero(stack != _PAINT)[0]
    stack_bytes = int(stack_top - stack_limit - touched[0]) if touched.size else 0
    return CallCount(totals["instructions"], totals["blocks"], stack_bytes, per_function,
                     uc.reg_read(arm_const.UC_ARM_REG_R0), uc)


def count_invoke(elf_path: Path, target: Target, input_bytes: bytes, output_bytes: int
                 ) -> InvokeCount:
    """Run ``mcuforge_invoke`` once on ``input_bytes`` and count the instructions it executes."""
    counted = count_call(elf_path, target, "mcuforge_invoke", ("runner_input", "runner_output"),
                         {"runner_input": input_bytes})
    if counted.return_value != 0:
        raise McuforgeError("mcuforge_invoke returned an error under unicorn")
    output = bytes(counted.memory.mem_read(read_elf(elf_path).symbol("runner_output"), output_bytes))
    return InvokeCount(counted.instructions, counted.blocks, counted.stack_bytes, output,
                       counted.per_function)
