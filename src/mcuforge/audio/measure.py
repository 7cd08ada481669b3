"""Measured memory of a front end alone, for budgets that must count it before a project exists (the
KWS search's SRAM limit): the front end's C compiled for a Cortex-M core with the project's flags,
then the sizes of its symbols read from the object (``arm-none-eabi-nm -S``), and
``sizeof(mf_frontend_state_t)`` as the size of one state object compiled beside it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..codegen.build import BuildError, require_tool, run_child, symbol_bytes
from ..codegen.targets import TARGETS
from .emit import render_frontend


@dataclass(frozen=True)
class FrontendMemory:
    """Bytes of one front end on one core: code and tables (Flash), static scratch (SRAM, .bss and
    .data) and the per-stream state the caller holds."""

    name: str
    core: str
    flash_bytes: int
    scratch_bytes: int
    state_bytes: int

    @property
    def sram_bytes(self) -> int:
        """Scratch plus one state."""
        return self.scratch_bytes + self.state_bytes


@lru_cache(maxsize=None)
def frontend_memory(name: str, core: str = "cortex-m7") -> FrontendMemory:
    """Compile the front end ``name`` for ``core`` (``cortex-m4`` or ``cortex-m7``) and measure it."""
    target = TARGETS[core]
    compiler = require_tool("arm-none-eabi-gcc")
    with tempfile.TemporaryDirectory(prefix="mcuforge-frontend-") as tmp:
        folder = Path(tmp)
        for file, text in render_frontend(name).items():
            (folder / file).write_text(text)
        (folder / "measure_state.c").write_text(
            '#include "mf_frontend.h"\nmf_frontend_state_t mf_fe_measured_state;\n')
        objects = []
        for source in ("mf_frontend.c", "measure_state.c"):
            obj = folder / source.replace(".c", ".o")
            result = run_child([compiler, *target.cflags, "-c", str(folder / source), "-o", str(obj)],
                               timeout_s=300)
            if result.returncode != 0:
                raise BuildError(f"arm-none-eabi-gcc failed on the {name} front end: "
                                 f"{(result.stderr or result.stdout).strip()[:500]}")
            objects.append(obj)
        own = symbol_bytes(objects[0], ("mf_fe_", "mf_frontend_"))
        state = symbol_bytes(objects[1], ("mf_fe_measured_state",))
    return FrontendMemory(name, core, own["text"] + own["rodata"] + own["data"],
                          own["data"] + own["bss"], state["bss"] + state["data"])
