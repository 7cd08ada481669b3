"""The memory-accounting conventions: one frozen object that analysis, planner, patch search, NAS
and every command share, so that two commands can never count the same schedule differently.

Switches (docs/architecture.md):
- ``inplace_depthwise``: an int8 depthwise conv writes its output over its dying input (TinyEngine),
  holding one extra ``H_in x W_in`` channel plane, or with ``depthwise_row_buffer`` only a ring of
  its latest output rows (`row_ring.py`);
- ``overlap_pointwise``: a 1x1, stride-1 conv writes over its dying input (vMCU), holding one
  pixel's input channels;
- ``count_network_input``: the network input lives in the arena (docs/architecture.md), or is streamed from
  the caller's buffer and not counted (the MCUNetV2 paper's convention).

`MemoryConventions()` is the one set of defaults: what the arena planner lays out and the generated
C runs (pointwise overlap on, input counted, channel-plane in-place depthwise). `REFERENCE_CONVENTIONS`
are the conventions of the published figures in reference/numbers.json (TinyEngine / MCUNet: no
pointwise overlap), under which `mcuforge profile` prints its layer-based table and the closed-form
NAS profiler counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .overlap import OverlapOptions


@dataclass(frozen=True)
class MemoryConventions:
    """Which overlaps the memory accounting allows and whether the network input is counted."""

    inplace_depthwise: bool = True
    overlap_pointwise: bool = True
    count_network_input: bool = True
    depthwise_row_buffer: bool = False

    @property
    def overlap(self) -> OverlapOptions:
        """The overlap rules these conventions allow."""
        return OverlapOptions(self.inplace_depthwise, self.overlap_pointwise, self.depthwise_row_buffer)


DEFAULT_CONVENTIONS = MemoryConventions()
REFERENCE_CONVENTIONS = MemoryConventions(overlap_pointwise=False)
