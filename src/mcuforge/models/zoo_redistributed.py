"""Receptive-field redistributed zoo variants (MCUNetV2, section 3.2): smaller receptive field in the
patch stage, more blocks after it.

Patch-based inference recomputes the overlap of neighbouring input windows; the overlap grows with
the patch stage's receptive field. MCUNetV2 shrinks the kernels of the patch stage and adds blocks
to the layer-based stage to keep the network's capacity and overall receptive field. The variants
here apply that rule to zoo models, transparently (they are untrained architectures: compare their
memory and MACs, not their accuracy):

- every ``ir``/``ds`` block of the patch stage (blocks 1 .. ``split``; the stem keeps its kernel)
  with a kernel larger than ``kernel`` gets ``kernel``; stride-1 blocks of MobileNetV2, whose
  kernels are already 3, get 1 (no spatial mixing in the patch stage but the stride-2 ones);
- ``extra`` inverted-residual blocks (the width of the split tensor, stride 1) are inserted right
  after the split, with the kernel given.

`PATCH_SPLIT` names the split each variant is designed for (the benchmark and tests patch there).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .dsl import BlockSpec, NetSpec
from .zoo import get_spec, register_model

# Zoo name -> (base model, last block of the patch stage, kernel bound in the stage,
#              stride-1 kernel in the stage, extra blocks after the split as (count, kernel, expand)).
_VARIANTS: dict[str, tuple[str, int, int, int | None, tuple[int, int, float]]] = {
    "mobilenet-v2-rd": ("mobilenet-v2", 4, 3, 1, (2, 5, 6.0)),
    "mbv2-w0.35-r144-rd": ("mbv2-w0.35-r144", 4, 3, 1, (2, 5, 6.0)),
    "mcunet-in3-rd": ("mcunet-in3", 6, 3, None, (2, 7, 5.0)),
}

PATCH_SPLIT: dict[str, str] = {name: f"b{split}" for name, (_, split, _, _, _) in _VARIANTS.items()}


def redistribute(spec: NetSpec, split: int, kernel: int, stride1_kernel: int | None,
                 extra: tuple[int, int, float]) -> NetSpec:
    """``spec`` with the patch stage (blocks 1..``split``) limited to ``kernel`` (stride-1 blocks to
    ``stride1_kernel`` when given) and ``extra`` = (count, kernel, expansion) blocks after it."""
    count, extra_kernel, expand = extra
    stages, index, width = [], 0, None
    for stage in spec.stages:
        blocks: list[BlockSpec] = []
        for block in stage:
            if 1 <= index <= split and block.kind in ("ir", "ds"):
                limit = stride1_kernel if (block.stride == 1 and stride1_kernel is not None) else kernel
                block = replace(block, kernel=min(block.kernel, limit))
            blocks.append(block)
            if block.kind in ("cn", "ds", "ir"):
                width = block.out_channels
            if index == split:
                blocks.extend(BlockSpec("ir", out_channels=width, kernel=extra_kernel, expand=expand)
                              for _ in range(count))
            index += 1
        stages.append(tuple(blocks))
    return replace(spec, stages=tuple(stages))


def _builder(base: str, split: int, kernel: int, stride1_kernel: int | None,
             extra: tuple[int, int, float]) -> Callable[[float | None, int | None], NetSpec]:
    def build(width: float | None, resolution: int | None) -> NetSpec:
        return redistribute(get_spec(base, resolution, width), split, kernel, stride1_kernel, extra)
    return build


for _name, (_base, _split, _kernel, _stride1, _extra) in _VARIANTS.items():
    register_model(
        _name, _builder(_base, _split, _kernel, _stride1, _extra),
        scalable_width=_base == "mobilenet-v2",
        description=f"{_base}, receptive field redistributed for patches up to b{_split} "
                    f"(kernels <= {_kernel} there, {_extra[0]} extra blocks after)",
        source="MCUNetV2 (Lin et al. 2021), section 3.2, applied by mcuforge")

__all__ = ["PATCH_SPLIT", "redistribute"]
