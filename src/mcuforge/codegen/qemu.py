"""Run the Cortex-M build under QEMU (MPS2 boards) with semihosting.

``qemu-system-arm -M mps2-an500 -cpu cortex-m7 -nographic -semihosting-config enable=on,target=native
-kernel app.elf`` in a temporary folder holding ``input.bin``: the runner reads every input through
semihosting, calls ``mcuforge_invoke`` on each, writes ``output.bin`` and prints the number of
inferences and the stack high-water mark (painted stack), then exits through semihosting.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .build import BuildError, require_tool, run_child
from .targets import Target


@dataclass(frozen=True)
class QemuRun:
    """What one QEMU run returned."""

    outputs: bytes
    inferences: int
    stack_high_water_bytes: int
    console: str


def run_semihosted(elf: Path, target: Target, input_name: str, payload: bytes,
                   timeout_s: float = 600) -> tuple[int, str, bytes]:
    """Run ``elf`` under QEMU with semihosting in a temporary folder holding ``payload`` as
    ``input_name``: (exit code, console text, the bytes the runner wrote to output.bin or b"")."""
    qemu = require_tool("qemu-system-arm")
    with tempfile.TemporaryDirectory(prefix="mcuforge-qemu-") as tmp:
        (Path(tmp) / input_name).write_bytes(payload)
        command = [qemu, "-M", target.qemu_machine, "-cpu", target.qemu_cpu, "-nographic",
                   "-monitor", "none", "-serial", "none",
                   "-semihosting-config", "enable=on,target=native", "-kernel", str(Path(elf).resolve())]
        try:
            result = run_child(command, cwd=tmp, timeout_s=timeout_s)
        except subprocess.TimeoutExpired:
            raise BuildError(f"QEMU ({target.qemu_machine}) did not finish in {timeout_s:.0f} s") from None
        output = Path(tmp) / "output.bin"
        return result.returncode, result.stdout + result.stderr, output.read_bytes() if output.exists() else b""


def run_qemu(elf: Path, target: Target, inputs: bytes, output_bytes_per_inference: int, count: int,
             timeout_s: float = 600) -> QemuRun:
    """Run ``elf`` on ``count`` packed inputs; returns the packed outputs and the runner's figures."""
    if not target.is_cortex_m:
        raise ValueError(f"target {target.name} does not run under QEMU")
    returncode, console, outputs = run_semihosted(elf, target, "input.bin", inputs, timeout_s)
    if returncode != 0:
        raise BuildError(f"QEMU exited with {returncode}: {console.strip()[-2000:]}")
    match = re.search(r"inferences=(\d+) stack_high_water_bytes=(\d+)", console)
    if match is None:
        raise BuildError(f"the QEMU runner printed no summary: {console.strip()[-500:]}")
    inferences, stack = int(match.group(1)), int(match.group(2))
    if inferences != count or len(outputs) != count * output_bytes_per_inference:
        raise BuildError(f"QEMU ran {inferences} of {count} inferences, wrote {len(outputs)} bytes")
    return QemuRun(outputs, inferences, stack, console)
