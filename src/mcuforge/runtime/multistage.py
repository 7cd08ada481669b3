"""Multi-stage schedules (`patch.multistage`) in the reference runtime, bit-exact with
layer-based execution.

Ops outside the fused stages run layer by layer (`reference.run_op`); each fused stage runs patch
by patch through `patch.run_patch_stage` (the same per-patch execution and halo caches as a single
patch stage) on the tensor the previous segment materialised. A pooled stage hands each output
tile to an int64 accumulator per channel (the feature map is never assembled); after the last
patch the global pool's output comes from the sums (`OpDef.global_pool_from_sums`, the pool's own
arithmetic), and the rest runs layer by layer. Tensors are dropped from the environment once no
later op reads them, so a test can see which tensors existed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ir import Graph
from ..ops import op_def
from ..patch.multistage import MultiStageSchedule, ResolvedStage, resolve_schedule
from .patch import run_patch_stage
from .reference import Interpreter, run_op


def _run_stage(graph: Graph, resolved: ResolvedStage, env: dict[str, np.ndarray]) -> None:
    """One fused stage: its output tensor into ``env``, or, pooled, the pool's output."""
    if resolved.pool is None:
        run_patch_stage(graph, resolved.geometry, env)
        return
    channels = graph.tensor(resolved.geometry.stage.split).shape[3]
    sums = np.zeros(channels, dtype=np.int64)

    def accumulate(tile: np.ndarray) -> None:
        sums[:] += tile.astype(np.int64).sum(axis=(0, 1, 2))

    run_patch_stage(graph, resolved.geometry, env, sink=accumulate)
    pool = resolved.pool
    env[pool.outputs[0]] = op_def(pool.kind).global_pool_from_sums(graph, pool, sums)


def run_multistage(graph: Graph, schedule: MultiStageSchedule, inputs: Sequence[np.ndarray],
                   trace: set[str] | None = None) -> list[np.ndarray]:
    """Run ``graph`` under ``schedule``; returns the graph outputs (equal to `Interpreter.invoke`'s).
    ``trace``, when given, collects the name of every activation tensor that existed in full."""
    interpreter = Interpreter(graph)
    interpreter.check_inputs(inputs)
    env: dict[str, np.ndarray] = {name: t.data for name, t in graph.tensors.items()
                                  if t.data is not None}
    for name, array in zip(graph.inputs, inputs):
        env[name] = np.asarray(array)
    last_read = {name: index for index, op in enumerate(graph.ops) for name in op.inputs}
    starts = {r.start_index: r for r in resolve_schedule(graph, schedule)}
    index = 0
    while index < len(graph.ops):
        resolved = starts.get(index)
        if resolved is None:
            run_op(graph, graph.ops[index], env)
            index += 1
        else:
            _run_stage(graph, resolved, env)
            index = resolved.stop_index
        if trace is not None:
            trace.update(name for name in env if graph.is_activation(name))
        for name in [n for n in env if graph.is_activation(n) and n not in graph.outputs
                     and last_read.get(n, -1) < index]:
            del env[name]
    return [env[name].copy() for name in graph.outputs]


__all__ = ["run_multistage"]
