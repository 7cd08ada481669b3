"""Helpers of the code-generation tests: tiny int8 graphs with random weights, and a differential run
of the generated C (sanitised host build and Cortex-M7 under QEMU) against the reference runtime."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from mcuforge.codegen.build import build, run_host
from mcuforge.codegen.edges import strip_edge_conversions
from mcuforge.codegen.emit import generate, write_project
from mcuforge.codegen.qemu import run_qemu
from mcuforge.codegen.targets import TARGETS, with_optimisation
from mcuforge.ir import DType, Graph, QuantParams
from mcuforge.ir.builder import GraphBuilder
from mcuforge.planner.arena import PlanOptions
from mcuforge.runtime.reference import Interpreter

HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None


def q(scale: float, zero_point: int) -> QuantParams:
    """Per-tensor quantisation."""
    return QuantParams.per_tensor(scale, zero_point)


class Int8Builder(GraphBuilder):
    """GraphBuilder with helpers for random int8 weights."""

    def __init__(self, name: str, seed: int = 0):
        super().__init__(name)
        self.rng = np.random.default_rng(seed)

    def x(self, shape, scale=0.05, zero_point=-3) -> str:
        """An int8 graph input."""
        return self.input("x", tuple(shape), DType.INT8, q(scale, zero_point))

    def weights(self, shape, per_axis: int | None, channels: int) -> str:
        """Random int8 weights, symmetric, per-axis scales when ``per_axis`` is set."""
        data = self.rng.integers(-127, 128, size=shape, dtype=np.int8)
        if per_axis is None:
            quant = q(0.02, 0)
        else:
            scales = tuple(float(s) for s in self.rng.uniform(0.005, 0.03, size=channels))
            quant = QuantParams(scales, (0,) * channels, per_axis)
        return self.constant("w", tuple(shape), DType.INT8, data, quant)

    def bias(self, channels: int, magnitude: int = 3000) -> str:
        """Random int32 bias."""
        data = self.rng.integers(-magnitude, magnitude, size=channels).astype(np.int32)
        return self.constant("b", (channels,), DType.INT32, data, q(1.0, 0))


def output_scale(x_scale: float, w_scale: float, taps: int) -> float:
    """An output scale that spreads the int8 outputs for random inputs and weights."""
    return x_scale * w_scale * math.sqrt(taps) * 40.0


def random_inputs(graph: Graph, count: int, seed: int = 1) -> list[list[np.ndarray]]:
    """``count`` random int8 input sets, plus the two extremes."""
    rng = np.random.default_rng(seed)
    shapes = [graph.tensors[n].shape for n in graph.inputs]
    sets = [[np.full(s, -128, np.int8) for s in shapes], [np.full(s, 127, np.int8) for s in shapes]]
    sets += [[rng.integers(-128, 128, size=s, dtype=np.int8) for s in shapes] for _ in range(count)]
    return sets


def differential_run(graph: Graph, workdir: Path, qemu: bool, count: int = 3,
                     target: str = "cortex-m7", plan_options: PlanOptions = PlanOptions(),
                     in_place_depthwise_kernel: bool = False,
                     optimise: str = "balanced",
                     scratch_free_kernels: bool | None = False) -> dict[str, int]:
    """Generate C for ``graph`` (``optimise``: compile's --speed/--size choice), run it on random
    inputs (host-asan, and QEMU when ``qemu``), and return the number of differing output bytes per
    runner (all zeros when bit-exact)."""
    model = generate(graph, with_optimisation(TARGETS[target], optimise), plan_options,
                     in_place_depthwise_kernel=in_place_depthwise_kernel,
                     scratch_free_kernels=scratch_free_kernels)
    project = workdir / "project"
    write_project(model, project)
    int8 = strip_edge_conversions(graph).graph
    interpreter = Interpreter(int8)
    sets = random_inputs(int8, count)
    expected = b"".join(np.asarray(o).tobytes() for s in sets for o in interpreter.invoke(s))
    packed = b"".join(a.tobytes() for s in sets for a in s)
    out_size = len(expected) // len(sets)
    runs = {"host-asan": run_host(build(project, "host-asan"), packed, out_size, len(sets))}
    if qemu:
        target_obj = model.target
        runs["qemu"] = run_qemu(build(project, target), target_obj, packed, out_size, len(sets)).outputs
    want = np.frombuffer(expected, np.int8)
    return {name: int(np.count_nonzero(np.frombuffer(got, np.int8) != want)) for name, got in runs.items()}
