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


def run_qemu(elf: Path, target: Target, inputs: bytes, output_bytes_per_inference: int, count: int,
             timeout_s: float = 600) -> QemuRun:
    """Run ``elf`` on ``count`` packed inputs; returns the packed outputs and the runner's figures."""
    if not target.is_cortex_m:
        raise ValueError(f"target {target.name} does not run under QEMU")
    qemu = require_tool("qemu-system-arm")
    with tempfile.TemporaryDirectory(prefix="mcuforge-qemu-") as tmp:
        (Path(tmp) / "input.bin").write_bytes(inputs)
        command = [qemu, "-M", target.qemu_machine, "-cpu", target.qemu_cpu, "-nographic",
                   "-monitor", "none", "-serial", "none",
                   "-semihosting-config", "enable=on,target=native", "-kernel", str(Path(elf).resolve())]
        try:
            result = run_child(command, cwd=tmp, timeout_s=timeout_s)
        except subprocess.TimeoutExpired:
            raise BuildError(f"QEMU ({target.qemu_machine}) did not finish in {timeout_s:.0f} s") from None
        console = result.stdout + result.stderr
        if result.returncode != 0:
            raise BuildError(f"QEMU exited with {result.returncode}: {console.strip()[-2000:]}")
        out_path = Path(tmp) / "output.bin"
        outputs = out_path.read_bytes() if out_path.exists() else b""
    match = re.search(r"inferences=(\d+) stack_high_water_bytes=(\d+)", console)
    if match is None:
        raise BuildError(f"the QEMU runner printed no summary: {console.strip()[-500:]}")
    inferences, stack = int(match.group(1)), int(match.group(2))
    if inferences != count or len(outputs) != count * output_bytes_per_inference:
        raise BuildError(f"QEMU ran {inferences} of {count} inferences, wrote {len(outputs)} bytes")
    return QemuRun(outputs, inferences, stack, console)
