"""A minimal reader of 32-bit little-endian ELF files (what arm-none-eabi-gcc links): the loadable
segments and the symbol table, enough to load a Cortex-M image into an emulator."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import McuforgeError

_PT_LOAD = 1
_SHT_SYMTAB = 2
_STT_FUNC = 2


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD segment: ``data`` goes at ``vaddr``, followed by zeros up to ``memsz``."""

    vaddr: int
    paddr: int
    data: bytes
    memsz: int


@dataclass(frozen=True)
class ElfImage:
    """Entry point, loadable segments, symbol addresses and function ranges
    ``(start, size, name)`` (sorted) of an ELF file."""

    entry: int
    segments: tuple[Segment, ...]
    symbols: dict[str, int]
    functions: tuple[tuple[int, int, str], ...] = ()

    def symbol(self, name: str) -> int:
        """Address of ``name`` (Thumb bit cleared); raises when the symbol is missing."""
        try:
            return self.symbols[name] & ~1
        except KeyError:
            raise McuforgeError(f"symbol {name} not found in the ELF file") from None


def read_elf(path: Path) -> ElfImage:
    """Parse ``path``; raises `McuforgeError` for anything but a 32-bit little-endian ELF."""
    blob = Path(path).read_bytes()
    if blob[:4] != b"\x7fELF" or blob[4] != 1 or blob[5] != 1:
        raise McuforgeError(f"{path} is not a 32-bit little-endian ELF file")
    (entry, phoff, shoff, _flags, _ehsize, phentsize, phnum, shentsize, shnum,
     _shstrndx) = struct.unpack_from("<IIIIHHHHHH", blob, 24)
    segments = []
    for i in range(phnum):
        p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, _f, _a = struct.unpack_from(
            "<IIIIIIII", blob, phoff + i * phentsize)
        if p_type == _PT_LOAD and p_memsz:
            segments.append(Segment(p_vaddr, p_paddr, blob[p_offset:p_offset + p_filesz], p_memsz))
    sections = [struct.unpack_from("<IIIIIIIIII", blob, shoff + i * shentsize) for i in range(shnum)]
    symbols: dict[str, int] = {}
    functions: list[tuple[int, int, str]] = []
    for sh in sections:
        if sh[1] != _SHT_SYMTAB:
            continue
        strtab = sections[sh[6]]
        str_off = strtab[4]
        for j in range(sh[5] // 16):
            st_name, st_value, st_size, st_info, _other, _shndx = struct.unpack_from(
                "<IIIBBH", blob, sh[4] + j * 16)
            if st_name:
                end = blob.index(b"\0", str_off + st_name)
                name = blob[str_off + st_name:end].decode()
                symbols.setdefault(name, st_value)
                if st_info & 0xF == _STT_FUNC and st_size:
                    functions.append((st_value & ~1, st_size, name))
    return ElfImage(entry, tuple(segments), symbols, tuple(sorted(functions)))
