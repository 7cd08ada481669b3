"""Closed-form figures of a spec (MACs, parameters, Flash, peak activation SRAM) in under a millisecond.

Search-space optimisation profiles hundreds of thousands of sampled networks, so building the IR graph
(`models.spec_graph`) and sweeping lifetimes (`analysis.memory`) for each (several ms) is too slow.
This module walks the spec's blocks once and applies docs/architecture.md's live-set rule directly; it gives the
same numbers as ``memory_profile(build_graph(spec), REFERENCE_CONVENTIONS)`` (docs/architecture.md's
conventions, `analysis.conventions`: no pointwise overlap) and ``graph_cost(build_graph(spec))``
(`tests/test_nas_space.py` checks this on 64 random samples and on zoo models), for specs made of ``cn``, ``ds``, ``ir`` (no squeeze-excite, no
h-swish), ``pool`` and ``fc`` blocks. Other specs raise `UnsupportedSpecError`; callers fall back to
the graph.

Live sets per op, int8 activations, network input counted (x block input, e expansion output, d
depthwise output, p projection output; "+x" when the block keeps x for its residual):

  cn / pool / fc           x + y
  ir expand 1x1            x + e
  ir depthwise             e + d (+x); in place (when its input dies there) e + one H_in x W_in plane
  ir project 1x1           d + p (+x);  residual ADD writes into p: p + x
  ds depthwise, pointwise  like ir without expansion (its input always dies at the depthwise)

Flash: int8 weights (int4: two per byte, rounded up per tensor), int32 bias, 8 B per output channel of
requantisation data (``analysis.cost.REQUANT_BYTES_PER_CHANNEL``). Also counted, for the code-size
estimate of `constraints`: the output channels of all weighted layers and the number of distinct
kernel signatures (the code generator specialises a kernel per shape: 1x1 convs by (C_in, C_out),
depthwise by (k, stride, C, input size), plus the stem conv, the classifier, ADD and pooling).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.cost import REQUANT_BYTES_PER_CHANNEL
from ..models.dsl import BlockSpec, NetSpec
from ..models.spec_graph import has_residual, mid_channels


class UnsupportedSpecError(ValueError):
    """A spec using a feature (squeeze-excite, h-swish) the closed form does not model."""


@dataclass(frozen=True)
class SpecFigures:
    """Analytic figures of one network (bytes; 1 kB = 1024 B)."""

    macs: int
    params: int
    flash_bytes: int
    peak_activation_bytes: int
    peak_block: int
    weighted_channels: int = 0
    kernels: int = 0
    pointwise_kernels: int = 0
    depthwise_kernels: int = 0


def _out_size(size: int, stride: int) -> int:
    # Padding k//2 with an odd kernel: floor((size - 1) / stride) + 1.
    return (size - 1) // stride + 1


def _weight_bytes(elements: int, int4: bool) -> int:
    return (elements + 1) // 2 if int4 else elements


def _layer_flash(weight_elements: int, out_channels: int, int4: bool) -> int:
    return _weight_bytes(weight_elements, int4) + out_channels * (4 + REQUANT_BYTES_PER_CHANNEL)


def spec_figures(spec: NetSpec, inplace_depthwise: bool = True) -> SpecFigures:
    """MACs, parameters (stored weights and biases), Flash bytes and peak activation bytes of ``spec``."""
    size = spec.resolution
    channels = spec.in_channels
    flat: int | None = None  # features once flattened (after pool / fc)
    macs = params = flash = weighted_channels = 0
    peak, peak_block = size * size * channels, 0
    signatures: set[tuple] = set()
    for index, block in enumerate(spec.blocks):
        if block.se_ratio or block.act == "hswish":
            raise UnsupportedSpecError(f"block {index} ({block.to_string()}): SE / h-swish not modelled")
        weighted_channels += _signatures(block, size, channels, flat, signatures)
        live, block_macs, block_params, block_flash, size, channels, flat = _block(
            block, size, channels, flat, inplace_depthwise)
        macs += block_macs
        params += block_params
        flash += block_flash
        if live > peak:
            peak, peak_block = live, index
    return SpecFigures(macs, params, flash, peak, peak_block, weighted_channels, len(signatures),
                       sum(1 for s in signatures if s[0] == "pw"), sum(1 for s in signatures if s[0] == "dw"))


def _signatures(block: BlockSpec, size: int, channels: int, flat: int | None, found: set[tuple]) -> int:
    """Add the kernel signatures of ``block`` to ``found``; return its weighted layers' output channels."""
    if block.kind == "pool":
        found.add(("pool",))
        return 0
    if block.kind == "fc":
        found.add(("fc", channels if flat is None else flat, block.out_channels))
        return block.out_channels
    if block.kind == "cn":
        found.add(("conv", block.kernel, block.stride, channels, block.out_channels))
        return block.out_channels
    mid = channels if block.kind == "ds" else mid_channels(block, channels)
    out = mid + block.out_channels
    if block.kind == "ir" and (mid != channels or block.expand != 1):
        found.add(("pw", channels, mid))
        out += mid
    found.add(("dw", block.kernel, block.stride, mid, size))
    found.add(("pw", mid, block.out_channels))
    if block.kind == "ir" and has_residual(block, channels):
        found.add(("add",))
    return out


def _block(block: BlockSpec, size: int, channels: int, flat: int | None, inplace: bool):
    """(peak live bytes, MACs, params, Flash, new size, new channels, flat features) of one block."""
    x = size * size * channels if flat is None else flat
    if block.kind == "cn":
        out_size = _out_size(size, block.stride)
        k, oc = block.kernel, block.out_channels
        y = out_size * out_size * oc
        weights = oc * k * k * channels
        return (x + y, out_size * out_size * weights, weights + oc, _layer_flash(weights, oc, block.int4),
                out_size, oc, None)
    if block.kind == "pool":
        return x + channels, 0, 0, 0, 1, channels, channels
    if block.kind == "fc":
        oc = block.out_channels
        weights = oc * x
        return x + oc, weights, weights + oc, _layer_flash(weights, oc, block.int4), 1, oc, oc
    if block.kind == "ds":
        return _separable(block, size, channels, channels, False, False, inplace)
    mid = mid_channels(block, channels)
    expand = mid != channels or block.expand != 1
    return _separable(block, size, channels, mid, expand, has_residual(block, channels), inplace)


def _separable(block: BlockSpec, size: int, channels: int, mid: int, expand: bool, residual: bool,
               inplace: bool):
    """Figures of [expand 1x1] -> depthwise kxk -> pointwise 1x1 [+ residual]."""
    k, oc = block.kernel, block.out_channels
    out_size = _out_size(size, block.stride)
    x = size * size * channels
    kept = x if residual else 0
    live: list[int] = []
    macs = params = flash = 0
    if expand:
        e = size * size * mid
        live.append(x + e)
        macs += size * size * mid * channels
        params += mid * channels + mid
        flash += _layer_flash(mid * channels, mid, block.int4)
    else:
        e = x
    d = out_size * out_size * mid
    # The depthwise input dies at the depthwise unless it is the block input kept for the residual.
    dw_input_dies = expand or not residual
    # In place only where the plane is smaller than what it saves (analysis.overlap.find_overlap).
    if inplace and dw_input_dies and size * size < min(e, d):
        live.append(e + size * size + kept)
    else:
        live.append(e + d + (kept if expand else 0))
    macs += out_size * out_size * mid * k * k
    params += k * k * mid + mid
    flash += _layer_flash(k * k * mid, mid, block.int4)
    p = out_size * out_size * oc
    live.append(d + p + kept)
    macs += out_size * out_size * oc * mid
    params += oc * mid + oc
    flash += _layer_flash(oc * mid, oc, block.int4)
    return max(live), macs, params, flash, out_size, oc, None
