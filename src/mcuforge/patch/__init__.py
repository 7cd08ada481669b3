"""Patch-based inference (MCUNetV2), in one package: run the first blocks patch by patch, the rest
layer by layer.

Modules: `geometry` (the stage, `PatchConfig`, the ``--patch`` parser, per-patch windows),
`patch_graph` (the graph of one patch, built once for evaluation and planning), `halo_cache`,
`evaluate` (the figures of a schedule: peaks in both input conventions, MACs), `arena` (per-patch
arena plans and the regions beside the rest of the graph), `schedule` (`PatchSchedule`, a schedule
planned for one arena), `search` (Pareto front, ``auto`` / ``min-memory``), `resolve` (the one
``--patch`` resolver), `report` (JSON entry and printing), `multistage` (schedules of several
fused stages, the last one optionally accumulating the global pool) and `msf_search` (their Pareto
front by dynamic programming over block boundaries).

One `analysis.conventions.MemoryConventions` governs every figure; the code generator only lowers
and renders a `PatchSchedule` (`codegen.patch_emit`), the reference runtime executes a schedule
(`runtime.patch`, the oracle).

May import: errors, the foundation modules (atomic, reference, targets, layers), stages, arith, ir,
ops, models, analysis, planner (the layers below it in `mcuforge.layers`); not runtime, codegen or
anything above."""

from .evaluate import PatchEvaluator, PatchPlan, evaluate_patch
from .geometry import (PatchConfig, PatchGeometry, PatchStage, parse_patch_option, patch_geometry,
                       patch_stage, split_candidates)
from .resolve import GridFamily, resolve_schedule
from .schedule import PatchSchedule, plan_schedule
from .search import choose, search_patches

__all__ = ["GridFamily", "PatchConfig", "PatchEvaluator", "PatchGeometry", "PatchPlan",
           "PatchSchedule", "PatchStage", "choose", "evaluate_patch", "parse_patch_option",
           "patch_geometry", "patch_stage", "plan_schedule", "resolve_schedule", "search_patches",
           "split_candidates"]
