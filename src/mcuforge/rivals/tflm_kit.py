"""TFLite Micro + CMSIS-NN built for Cortex-M and counted in unicorn, with the measuring kit in
``../shared/rivals/tflm_cmsis_nn`` (its README.md gives the exact method).

`count_tflm_cmsis_nn` runs the kit's ``build.sh MODEL OUT cortex-m7`` (library once per target,
cached in `kit_build_dir`; then the app with exactly the model's operators and an arena sized by a
first run) and ``count.py`` on the given input: instructions executed inside one
``MicroInterpreter::Invoke()`` (a unicorn block hook, Thumb instruction widths decoded, the way
`codegen.unicorn_count` counts ours), Flash (``.text`` + ``.ARM.exidx`` + ``.data``; the model
flatbuffer, weights included, is in ``.text``), SRAM (``.bss`` with the arena + ``.data`` + painted
stack high-water) and the output tensor. Every child runs in its own process group
(`codegen.build.run_child`). Locations: ``MCUFORGE_TFLM_KIT`` (default: ``rivals/tflm_cmsis_nn``
beside the reference folder) and ``MCUFORGE_TFLM_KIT_BUILD`` (default
``~/.cache/mcuforge/tflm_cmsis_nn-build``; the first build of a library takes minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codegen.build import run_child
from ..errors import McuforgeError
from ..reference import reference_dir

_BUILD_TIMEOUT_S = 4 * 3600   # the first build of the library on a slow, shared machine
_COUNT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class TflmCount:
    """One inference of TFLite Micro + CMSIS-NN counted in unicorn (bytes; outputs in graph order)."""

    instructions: int
    flash_bytes: int
    model_bytes: int
    sram_bytes: int
    arena_bytes: int
    outputs: tuple[np.ndarray, ...]

    @property
    def flash_code_bytes(self) -> int:
        """Flash less the model flatbuffer: code, constant tables, ``.data`` initialisers."""
        return self.flash_bytes - self.model_bytes


def kit_dir() -> Path:
    """The measuring kit's folder (``MCUFORGE_TFLM_KIT``, else beside the reference folder)."""
    configured = os.environ.get("MCUFORGE_TFLM_KIT")
    return Path(configured) if configured else reference_dir().parent / "rivals" / "tflm_cmsis_nn"


def kit_build_dir() -> Path:
    """Where the kit caches its libraries (``MCUFORGE_TFLM_KIT_BUILD``)."""
    configured = os.environ.get("MCUFORGE_TFLM_KIT_BUILD")
    return (Path(configured) if configured
            else Path.home() / ".cache" / "mcuforge" / "tflm_cmsis_nn-build")


def _kit_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHON"] = sys.executable          # numpy and unicorn come from this interpreter
    env["TFLM_KIT_BUILD"] = str(kit_build_dir())
    env.setdefault("JOBS", str(min(os.cpu_count() or 1, 2)))
    return env


def _run_kit(command: list[str], what: str, timeout_s: float) -> str:
    kit_build_dir().mkdir(parents=True, exist_ok=True)
    try:
        result = run_child(command, timeout_s=timeout_s, env=_kit_environment())
    except subprocess.TimeoutExpired:
        raise McuforgeError(f"TFLite Micro kit: {what} did not finish within {timeout_s:.0f} s") from None
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise McuforgeError(f"TFLite Micro kit: {what} failed: {lines[-1] if lines else result.returncode}")
    return result.stdout


def count_tflm_cmsis_nn(model: Path, workdir: Path, inputs: list[np.ndarray],
                        target: str = "cortex-m7") -> TflmCount:
    """Build ``model`` with TFLite Micro + CMSIS-NN for ``target`` in ``workdir`` and count one
    inference on ``inputs`` (one array per graph input, in the model's dtypes)."""
    kit = kit_dir()
    if not (kit / "build.sh").is_file():
        raise McuforgeError(f"the TFLite Micro + CMSIS-NN kit is not at {kit} (set MCUFORGE_TFLM_KIT)")
    workdir = Path(workdir)
    out = workdir / target
    _run_kit(["bash", str(kit / "build.sh"), str(model), str(out), target],
             f"building {model.name} for {target}", _BUILD_TIMEOUT_S)
    paths = []
    for index, array in enumerate(inputs):
        path = workdir / f"input_{index}.npy"
        np.save(path, array)
        paths.append(str(path))
    output = workdir / "tflm_output.npy"
    stdout = _run_kit([sys.executable, str(kit / "count.py"), str(out / "app.elf"), str(model), *paths,
                       "-o", str(output), "--cpu", target], f"counting {model.name}", _COUNT_TIMEOUT_S)
    result = json.loads(stdout[stdout.index("{"):])
    if result.get("instructions") is None or result.get("output") is None:
        raise McuforgeError(f"TFLite Micro kit: {model.name} did not run to the end "
                            f"(exit {result.get('exit')})")
    outputs = _read_outputs(output)
    return TflmCount(int(result["instructions"]), int(result["flash"]),
                     int(result["flash_parts"]["model"]), int(result["sram"]),
                     int(result["arena_bytes"]), outputs)


def _read_outputs(output: Path) -> tuple[np.ndarray, ...]:
    """count.py writes ``x.npy`` for one output, ``x_0.npy``, ``x_1.npy``, ... for several."""
    if output.exists():
        return (np.load(output),)
    base = str(output)[:-4]
    arrays = []
    while Path(f"{base}_{len(arrays)}.npy").exists():
        arrays.append(np.load(f"{base}_{len(arrays)}.npy"))
    return tuple(arrays)


def tflm_python_outputs(model: Path, inputs: list[np.ndarray], n_outputs: int
                        ) -> tuple[np.ndarray, ...]:
    """The ``n_outputs`` outputs of the tflite-micro pip interpreter (x86 reference kernels)."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise McuforgeError("the tflite-micro package is not installed (pip install tflite-micro)") from None
    interpreter = runtime.Interpreter.from_file(str(model), arena_size=16 * 1024 * 1024)
    for index, array in enumerate(inputs):
        interpreter.set_input(array, index)
    interpreter.invoke()
    return tuple(np.array(interpreter.get_output(index)) for index in range(n_outputs))
