"""Build and run the generated project: make targets, section sizes, the host binary.

`build` runs the project's own Makefile (so a user's ``make`` and the tool build the same thing);
`section_sizes` reads ``arm-none-eabi-size -A``; `run_host` feeds raw int8 inputs to the host runner
and returns its raw outputs.

Every child (make and the compilers it starts, the host binary, QEMU) runs through `run_child`: in a
process group of its own, which is ended (SIGTERM, then SIGKILL) when the call is interrupted, times
out or the parent is asked to stop (SIGINT/SIGTERM become exceptions in `mcuforge.cli`), so a killed
compile leaves no ``make``/``gcc``/``qemu`` behind.
"""

from __future__ import annotations

import os
import shutil
import signal
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


def _end_group(process: subprocess.Popen, grace_s: float = 2.0) -> None:
    """End the process group of ``process`` (SIGTERM, then SIGKILL after ``grace_s``) and reap it."""
    for signal_number, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, signal_number)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(process.pid, signal.SIGKILL)  # grandchildren still alive in the group
    except ProcessLookupError:
        pass
    process.wait()


def run_child(command: list[str], cwd: Path | str | None = None,
              timeout_s: float | None = None) -> subprocess.CompletedProcess:
    """Run ``command`` in its own process group and return its exit code and text output; the group
    is ended when the call times out (`subprocess.TimeoutExpired`) or is interrupted."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except BaseException:
        _end_group(process)
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _first_error_line(output: str) -> str:
    """The first line of compiler/make output that says "error" (else the last non-empty line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower():
            return line
    return lines[-1] if lines else "no output"


def build(directory: Path, make_target: str, timeout_s: float = 600) -> Path:
    """Run ``make <make_target>`` in the project; returns the produced binary. A failure is one
    line (the first error) and the whole output goes to ``build/<make_target>.log``."""
    require_tool("make")
    require_tool("arm-none-eabi-gcc" if make_target.startswith("cortex-m") else "gcc")
    try:
        result = run_child(["make", "-s", make_target], cwd=directory, timeout_s=timeout_s)
    except subprocess.TimeoutExpired:
        raise BuildError(f"make {make_target} in {directory} did not finish in {timeout_s:.0f} s") from None
    if result.returncode != 0:
        log = Path(directory) / "build" / f"{make_target}.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(result.stdout + result.stderr)
            where = f"; full output in {log}"
        except OSError:
            where = ""
        raise BuildError(f"make {make_target} failed in {directory} (exit {result.returncode}): "
                         f"{_first_error_line(result.stdout + result.stderr)}{where}")
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
    result = run_child([tool, "-A", str(elf)], timeout_s=120)
    if result.returncode != 0:
        raise BuildError(f"{tool} -A {elf} failed: {_first_error_line(result.stderr)}")
    output = result.stdout
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
    return run_host_console(binary, inputs, output_bytes_per_inference, count, timeout_s)[0]


def run_host_console(binary: Path, inputs: bytes, output_bytes_per_inference: int, count: int,
                     timeout_s: float = 300) -> tuple[bytes, str]:
    """`run_host`, also returning what the runner printed (a post-processing module's result)."""
    with tempfile.TemporaryDirectory(prefix="mcuforge-host-") as tmp:
        in_path, out_path = Path(tmp) / "input.bin", Path(tmp) / "output.bin"
        in_path.write_bytes(inputs)
        try:
            result = run_child([str(binary), str(in_path), str(out_path)], timeout_s=timeout_s)
        except subprocess.TimeoutExpired:
            raise BuildError(f"{binary} did not finish in {timeout_s:.0f} s") from None
        if result.returncode != 0:
            raise BuildError(f"{binary} exited with {result.returncode}: "
                             f"{(result.stderr or result.stdout).strip()[-2000:]}")
        produced = out_path.read_bytes()
    if len(produced) != output_bytes_per_inference * count:
        raise BuildError(f"{binary} wrote {len(produced)} bytes, expected "
                         f"{output_bytes_per_inference * count}")
    return produced, result.stdout
