"""Patch-based inference (MCUNetV2): run the first blocks patch by patch, the rest layer by layer.

A *split* is a block boundary: the patch stage is every op up to the last op of that block (after
the leading edge conversions, e.g. the QUANTIZE of a float-input model, which run once before it).
Exactly one tensor, the *split tensor*, may leave the stage, and the network input may not be read
after it. The split tensor is cut into an ``rows x cols`` grid (`tile_intervals`: sizes differ by
at most one, the larger tiles at the borders); every tile is computed from its input window
(`analysis/receptive.py`), tiles in raster order.

Memory conventions (bytes; 1 kB = 1024 B), for one patch and one op of the stage:
- the live set of the stage's tensors *for that patch's windows*, under the same rules as
  `analysis/memory.py` (inputs + outputs + tensors kept for later, in-place depthwise, the residual
  ADD writing into its operand), computed on a copy of the stage whose tensors have the window shapes;
- plus the full split-tensor buffer, which accumulates the tiles for the whole stage (the last op of
  the stage writes its tile straight into it, so the tile is not counted again and no op may write
  over an input there);
- plus the network input: held in the arena (``peak_activation_bytes``, docs/architecture.md's convention) or
  streamed from the caller's buffer, not counted (``peak_activation_bytes_input_streamed``, the
  MCUNetV2 paper's convention); windows of the input are read in place, never copied;
- plus, with halo caching, every cache (they live for the whole stage; `halo_cache.py`).
The stage's peak is the largest of these over all patches and ops; the total peak is the largest of
the stage's peak, the edge conversions' and the layer-based peak of the rest of the graph.

Where each part lives (package `mcuforge.patch`): this module holds the stage, the schedule and its
geometry; `evaluate.py` the figures, `arena.py` the per-patch arena plans, `search.py` the search,
`resolve.py` the one ``--patch`` resolver, `schedule.py` the `PatchSchedule` they return and
`report.py` the printing. `runtime/patch.py` executes any schedule in the reference runtime
(bit-exact with layer-based execution); `codegen/patch_emit.py` lowers a schedule to C (any grid
with recomputed halos, row strips with cached halos too).

MACs: every op computes its fresh output region per patch; its MACs are its layer-based MACs per
output pixel times the pixels computed, summed over patches. Recomputed halos make the patch stage
cost more than layer by layer; the overhead is reported against the whole network's MACs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..analysis.liveness import edge_conversion_tensors
from ..analysis.receptive import PATCHABLE_KINDS, AxisPatch, axis_geometry, tile_intervals
from ..errors import McuforgeError
from ..ir import Graph, Op, OpKind
from .halo_cache import HALO_MODES


@dataclass(frozen=True)
class PatchStage:
    """The ops of a patch stage: ``pre_ops`` (edge conversions run once), ``ops`` (run per patch),
    the stage ``input`` tensor, the ``split`` tensor and the block the stage ends with."""

    pre_ops: tuple[str, ...]
    ops: tuple[str, ...]
    input: str
    split: str
    split_block: str
    end_index: int


def check_grid_and_halo(grid: tuple[int, int], halo: str) -> None:
    """Refuse (one line) an unknown halo mode or a patch grid below 1x1."""
    if halo not in HALO_MODES:
        raise McuforgeError(f"unknown halo mode {halo!r}; choose from {', '.join(HALO_MODES)}")
    if min(grid) < 1:
        raise McuforgeError(f"patch grid must be at least 1x1, got {grid}")


@dataclass(frozen=True)
class PatchConfig:
    """A patch schedule: grid (rows, cols) of the split tensor, the last block of the stage, and
    the halo treatment (``none`` = recompute as MCUNetV2, ``cols`` / ``full`` = halo caching)."""

    grid: tuple[int, int]
    split_block: str
    halo: str = "none"

    def __post_init__(self) -> None:
        check_grid_and_halo(self.grid, self.halo)

    def to_string(self) -> str:
        """``RxC@BLOCK`` (the --patch syntax), with ``+halo-MODE`` when caching."""
        text = f"{self.grid[0]}x{self.grid[1]}@{self.split_block}"
        return text if self.halo == "none" else f"{text}+halo-{self.halo}"


def _edge_pre_ops(graph: Graph) -> list[Op]:
    edges = edge_conversion_tensors(graph)
    pre = []
    for op in graph.ops:
        if op.kind is OpKind.QUANTIZE and op.inputs[0] in edges:
            pre.append(op)
        else:
            break
    return pre


def patch_stage(graph: Graph, split_block: str, first_block: str | None = None) -> PatchStage:
    """The patch stage ending with block ``split_block``; raises `McuforgeError` naming the reason
    when the graph cannot be split there. With ``first_block`` the stage starts at that block
    instead of the network input (a later stage of a multi-stage schedule, `multistage.py`): no
    edge conversions run before it, and its input is the one tensor it reads from outside."""
    blocks = {block.name: block for block in graph.blocks}
    for name in (split_block, first_block):
        if name is not None and name not in blocks:
            raise McuforgeError(f"no block {name!r} in {graph.name}; blocks: "
                                f"{', '.join(blocks) or 'none'}")
    index = graph.op_index()
    end = max(index[name] for name in blocks[split_block].ops)
    pre = _edge_pre_ops(graph)
    start = len(pre)
    if first_block is not None:
        start = max(start, min(index[name] for name in blocks[first_block].ops))
        pre = []
    ops = list(graph.ops[start:end + 1])
    where = f"cannot split {graph.name} after block {split_block}" + (
        "" if first_block is None else f" from block {first_block}")
    if not ops:
        raise McuforgeError(f"{where}: the patch stage is empty")
    produced = {name for op in ops for name in op.outputs}
    for op in ops:
        if op.kind not in PATCHABLE_KINDS:
            raise McuforgeError(f"{where}: op {op.name} ({op.kind.value}) needs the whole feature map")
        for name in graph.activation_inputs(op) + list(op.outputs):
            shape = graph.tensor(name).shape
            if len(shape) != 4 or shape[0] != 1:
                raise McuforgeError(f"{where}: tensor {name} is not a [1, H, W, C] feature map")
        if op.kind in (OpKind.ADD, OpKind.MUL) and any(
                graph.tensor(n).shape != graph.tensor(op.outputs[0]).shape for n in op.inputs):
            raise McuforgeError(f"{where}: {op.name} broadcasts")
        if op.kind is OpKind.PAD and (op.attrs.paddings[0] != (0, 0)):
            raise McuforgeError(f"{where}: {op.name} pads the batch dimension")
    outside = {name for op in ops for name in graph.activation_inputs(op) if name not in produced}
    if len(outside) != 1:
        raise McuforgeError(f"{where}: the stage reads {len(outside)} tensors from outside it")
    stage_input = outside.pop()
    later = {name for op in graph.ops[end + 1:] for name in graph.activation_inputs(op)}
    later |= set(graph.outputs)
    leaving = sorted((produced | {stage_input}) & later)
    if len(leaving) != 1 or leaving[0] == stage_input or leaving[0] in graph.outputs:
        raise McuforgeError(f"{where}: {len(leaving)} tensors ({', '.join(leaving)}) cross the split; "
                            "exactly one feature map (not the network input or output) must")
    return PatchStage(tuple(op.name for op in pre), tuple(op.name for op in ops), stage_input,
                      leaving[0], split_block, end)


def split_candidates(graph: Graph) -> list[PatchStage]:
    """Every block boundary the graph can be split at, whose split tensor is at least 2x2."""
    stages = []
    for block in graph.blocks:
        try:
            stage = patch_stage(graph, block.name)
        except McuforgeError:
            continue
        if min(graph.tensor(stage.split).shape[1:3]) >= 2:
            stages.append(stage)
    return stages


def parse_patch_option(text: str, graph: Graph, halo: str = "none") -> str | PatchConfig:
    """``none``, ``auto``, ``min-memory`` or a `PatchConfig` from ``NxN@SPLIT`` (also ``RxC@SPLIT``,
    and ``+halo-MODE`` as `PatchConfig.to_string` writes it, which overrides ``halo``); SPLIT is a
    block name or a block's index in the graph (0 = first block)."""
    if text in ("none", "auto", "min-memory"):
        return text
    match = re.fullmatch(r"(\d+)x(\d+)@([^+\s]+)(?:\+halo-(\w+))?", text.strip())
    if not match:
        raise McuforgeError(f"--patch {text!r}: expected none, auto, min-memory or NxN@SPLIT "
                            "(e.g. 4x4@b4, or 4x4@b4+halo-cols)")
    rows, cols, split = int(match[1]), int(match[2]), graph.block_name(match[3])
    halo = match[4] or halo
    names = [block.name for block in graph.blocks]
    if split not in names and split.isdigit():
        if int(split) >= len(names):
            raise McuforgeError(f"--patch {text!r}: {graph.name} has {len(names)} blocks")
        split = names[int(split)]
    config = PatchConfig((rows, cols), split, halo)
    stage = patch_stage(graph, split)
    height, width = graph.tensor(stage.split).shape[1:3]
    if rows > height or cols > width:
        raise McuforgeError(f"--patch {text!r}: the split tensor {stage.split} is only "
                            f"{height}x{width}")
    return config


@dataclass(frozen=True)
class PatchGeometry:
    """Per-axis geometry of a patch schedule (`analysis/receptive.py`)."""

    config: PatchConfig
    stage: PatchStage
    rows: tuple[AxisPatch, ...]
    cols: tuple[AxisPatch, ...]

    def stage_ops(self, graph: Graph) -> list[Op]:
        """The stage's ops, in execution order."""
        return [graph.op(name) for name in self.stage.ops]


def patch_geometry(graph: Graph, config: PatchConfig, stage: PatchStage | None = None
                   ) -> PatchGeometry:
    """The windows, buffers and fresh regions of every patch of ``config`` (on ``stage`` when
    given, e.g. a later stage of a multi-stage schedule; else the stage from the network input)."""
    stage = patch_stage(graph, config.split_block) if stage is None else stage
    ops = [graph.op(name) for name in stage.ops]
    height, width = graph.tensor(stage.split).shape[1:3]
    rows = axis_geometry(graph, ops, stage.split, 1, tile_intervals(height, config.grid[0]),
                         cache=config.halo == "full")
    cols = axis_geometry(graph, ops, stage.split, 2, tile_intervals(width, config.grid[1]),
                         cache=config.halo in ("cols", "full"))
    return PatchGeometry(config, stage, rows, cols)


__all__ = ["PatchConfig", "PatchGeometry", "PatchStage", "parse_patch_option", "patch_geometry",
           "patch_stage", "split_candidates"]
