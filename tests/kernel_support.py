"""Run one lowered layer's C kernel alone on the host (AddressSanitizer + UBSan), on any input.

`differential_run` checks whole generated projects, whose C API is int8; this checks a kernel on
every value of its own input type (int16 ones included): the kernel source is rendered from its
`KernelSpec` beside the shared headers, and a small main passes the input tensors (read from
stdin, one after the other) as the layer's buffer arguments but the last, and writes the last (the
output) to stdout. The other arguments are the layer's own integers and const arrays."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np

from mcuforge.codegen.kernels import render_kernel, render_template
from mcuforge.codegen.targets import HOST_SANITIZE_FLAGS, TARGETS
from mcuforge.ops.lowering_types import Buffer, ConstArray, LayerCall


def _c_array(array: ConstArray) -> str:
    values = ", ".join(str(int(v)) for v in np.asarray(array.values).reshape(-1))
    return f"static const {array.ctype} {array.name}[] = {{{values}}};"


def run_layer_on_host(layer: LayerCall, inputs: Sequence[np.ndarray], y_dtype, y_count: int,
                      workdir: Path) -> np.ndarray:
    """``layer``'s kernel on ``inputs`` (its buffer arguments but the last, in order), compiled
    for the host with the sanitizers; returns the ``y_count`` values of type ``y_dtype`` it writes
    to its last buffer argument (the output)."""
    buffers = [a for a in layer.args if isinstance(a, Buffer)]
    assert layer.kernel is not None and len(buffers) == len(inputs) + 1, "inputs, then the output"
    inputs = [np.ascontiguousarray(x) for x in inputs]
    names = {id(buffer): f"in{i}" for i, buffer in enumerate(buffers[:-1])}
    names[id(buffers[-1])] = "out"
    args = []
    for arg in layer.args:
        if isinstance(arg, Buffer):
            args.append(names[id(arg)])
        elif isinstance(arg, ConstArray):
            args.append(arg.name)
        else:
            args.append(str(int(arg)))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "kernels").mkdir(exist_ok=True)
    (workdir / "kernels" / "mf_common.h").write_text(
        render_template("kernels/mf_common.h.j2", dsp=False))
    (workdir / "kernels" / "kernel.c").write_text(render_kernel(layer.kernel))
    reads = [f"    if (fread(in{i}, sizeof in{i}, 1, stdin) != 1) {{ return 1; }}"
             for i in range(len(inputs))]
    main = "\n".join([
        "#include <stdio.h>", '#include "kernels/mf_common.h"', f"{layer.kernel.prototype};",
        *(_c_array(a) for a in layer.arrays),
        *(f"static {b.ctype} in{i}[{x.size}];" for i, (b, x) in enumerate(zip(buffers, inputs))),
        f"static {buffers[-1].ctype} out[{y_count}];",
        "int main(void)", "{", *reads,
        f"    {layer.kernel.name}({', '.join(args)});",
        "    return fwrite(out, sizeof out, 1, stdout) == 1 ? 0 : 1;", "}", ""])
    (workdir / "main.c").write_text(main)
    app = workdir / "app"
    subprocess.run([TARGETS["host"].cc, *TARGETS["host"].cflags, *HOST_SANITIZE_FLAGS, "-I.",
                    "kernels/kernel.c", "main.c", "-o", str(app)], cwd=workdir, check=True,
                   capture_output=True, timeout=120)
    done = subprocess.run([str(app)], input=b"".join(x.tobytes() for x in inputs),
                          capture_output=True, check=True, timeout=120)
    return np.frombuffer(done.stdout, dtype=y_dtype)
