"""Build and run the generated project: make targets, section sizes, the host binary.

`build` runs the project's own Makefile (so a user's ``make`` and the tool build the same thing);
`section_sizes` reads ``arm-none-eabi-size -A``; `run_host` feeds raw int8 inputs to the host runner
and returns its raw outputs.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import McuforgeError


class BuildError(McuforgeError):
    """The generated C did not compile, or its binary failed."""


def require_tool(name: str) -> str:
    """The path of an executable, or a one-line error naming the Debian package."""
    path = shutil.which(name)
    if path is None:
        package = {"arm-none-eabi-gcc": "gcc-arm-none-eabi", "arm-none-eabi-size": "binutils-arm-none-eabi",
                   "qemu-system-arm": "qemu-system-arm", "gcc": "gcc", "make": "make"}.get(name, name)
        raise McuforgeError(f"{name} not found (install the Debian package {package})")
    return path


def build(directory: Path, make_target: str, timeout_s: float = 600) -> Path:
    """Run ``make <make_target>`` in the project; returns the produced binary."""
    require_tool("make")
    require_tool("arm-none-eabi-gcc" if make_target.startswith("cortex-m") else "gcc")
    result = subprocess.run(["make", "-s", make_target], cwd=directory, capture_output=True,
                            text=True, timeout=timeout_s)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise BuildError(f"make {make_target} failed in {directory}:\n{tail}")
    if make_target.startswith("cortex-m"):
        return directory / "build" / make_target / "app.elf"
    return directory / "build" / make_target / "app"


@dataclass(frozen=True)
class SectionSizes:
    """Bytes of the Cortex-M image by section group (``arm-none-eabi-size -A``)."""

    text_bytes: int
    rodata_bytes: int
    data_bytes: int
    bss_bytes: int
    arena_section_bytes: int
    runner_io_bytes: int
    stack_reserved_bytes: int

    @property
    def flash_bytes(self) -> int:
        """Flash: .text + .rodata + .data (the initial values of .data live in Flash)."""
        return self.text_bytes + self.rodata_bytes + self.data_bytes


def section_sizes(elf: Path) -> SectionSizes:
    """Parse ``arm-none-eabi-size -A`` of ``elf``."""
    tool = require_tool("arm-none-eabi-size")
    output = subprocess.run([tool, "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sizes: dict[str, int] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return SectionSizes(
        text_bytes=sizes.get(".isr_vector", 0) + sizes.get(".text", 0) + sizes.get(".ARM.exidx", 0),
        rodata_bytes=sizes.get(".rodata", 0), data_bytes=sizes.get(".data", 0),
        bss_bytes=sizes.get(".bss", 0), arena_section_bytes=sizes.get(".mcuforge_arena", 0),
        runner_io_bytes=sizes.get(".runner_io", 0), stack_reserved_bytes=sizes.get(".stack", 0))


def run_host(binary: Path, inputs: bytes, output_bytes_per_inference: int, count: int,
             timeout_s: float = 300) -> bytes:
    """Run the host runner on ``count`` inputs packed in ``inputs``; returns the packed outputs."""
    with tempfile.TemporaryDirectory(prefix="mcuforge-host-") as tmp:
        in_path, out_path = Path(tmp) / "input.bin", Path(tmp) / "output.bin"
        in_path.write_bytes(inputs)
        result = subprocess.run([str(binary), str(in_path), str(out_path)], capture_output=True,
                                text=True, timeout=timeout_s)
        if result.returncode != 0:
            raise BuildError(f"{binary} exited with {result.returncode}: "
                             f"{(result.stderr or result.stdout).strip()[-2000:]}")
        produced = out_path.read_bytes()
    if len(produced) != output_bytes_per_inference * count:
        raise BuildError(f"{binary} wrote {len(produced)} bytes, expected "
                         f"{output_bytes_per_inference * count}")
    return produced
