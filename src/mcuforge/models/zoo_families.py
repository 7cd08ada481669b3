"""Generators of the scalable model families (MobileNetV1/V2/V3, EfficientNet-Lite) as DSL specs.

Channel widths are scaled with `make_divisible(c * width, 8)`; the MobileNetV2 head is
``make_divisible(1280 * width, 8)`` as in ProxylessNAS/MCUNet's baselines (torchvision keeps 1280 for
width < 1).
"""

from __future__ import annotations

from dataclasses import replace

from .dsl import BlockSpec, NetSpec, make_divisible, parse_spec


def _c(channels: int, width: float) -> int:
    return make_divisible(channels * width, 8)


def mobilenet_v1(width: float | None = None, resolution: int | None = None) -> NetSpec:
    """MobileNetV1: stem conv, 13 depthwise-separable blocks, pool, classifier."""
    w = 1.0 if width is None else width
    layout = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + \
        [(1024, 2), (1024, 1)]
    blocks = " ".join(f"ds_k3{'_s2' if s == 2 else ''}_c{_c(c, w)}" for c, s in layout)
    return parse_spec(f"res{resolution or 224} | cn_k3_s2_c{_c(32, w)} | {blocks} | pool fc_c1000")


def mobilenet_v2(width: float | None = None, resolution: int | None = None) -> NetSpec:
    """MobileNetV2: stem, 17 inverted-residual blocks (t, c, n, s table of the paper), 1x1 head."""
    w = 1.0 if width is None else width
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1)]
    blocks = []
    for t, c, n, s in table:
        blocks.append(f"ir_r{n}_k3{'_s2' if s == 2 else ''}_e{t}_c{_c(c, w)}")
    head = _c(1280, w) if w < 1 else make_divisible(1280 * w, 8)
    return parse_spec(f"res{resolution or 224} | cn_k3_s2_c{_c(32, w)} | {' '.join(blocks)} | "
                      f"cn_k1_c{head} pool fc_c1000")


def _mobilenet_v3(table: list[tuple], last_conv: int, hidden: int, width: float | None,
                  resolution: int | None) -> NetSpec:
    w = 1.0 if width is None else width
    blocks = []
    for kernel, expanded, out, se, act, stride in table:
        mid = _c(expanded, w)
        out_c = _c(out, w)
        parts = ["ir", f"k{kernel}"] + (["s2"] if stride == 2 else []) + [f"m{mid}"]
        parts += (["se0.25"] if se else []) + [f"c{out_c}", "nhs" if act == "HS" else "nre"]
        blocks.append("_".join(parts))
    return parse_spec(f"res{resolution or 224} | cn_k3_s2_c{_c(16, w)}_nhs | {' '.join(blocks)} | "
                      f"cn_k1_c{_c(last_conv, w)}_nhs pool fc_c{hidden}_nhs fc_c1000")


def mobilenet_v3_large(width: float | None = None, resolution: int | None = None) -> NetSpec:
    """MobileNetV3-Large (torchvision's table)."""
    table = [(3, 16, 16, 0, "RE", 1), (3, 64, 24, 0, "RE", 2), (3, 72, 24, 0, "RE", 1),
             (5, 72, 40, 1, "RE", 2), (5, 120, 40, 1, "RE", 1), (5, 120, 40, 1, "RE", 1),
             (3, 240, 80, 0, "HS", 2), (3, 200, 80, 0, "HS", 1), (3, 184, 80, 0, "HS", 1),
             (3, 184, 80, 0, "HS", 1), (3, 480, 112, 1, "HS", 1), (3, 672, 112, 1, "HS", 1),
             (5, 672, 160, 1, "HS", 2), (5, 960, 160, 1, "HS", 1), (5, 960, 160, 1, "HS", 1)]
    return _mobilenet_v3(table, 960, 1280, width, resolution)


def mobilenet_v3_small(width: float | None = None, resolution: int | None = None) -> NetSpec:
    """MobileNetV3-Small (torchvision's table)."""
    table = [(3, 16, 16, 1, "RE", 2), (3, 72, 24, 0, "RE", 2), (3, 88, 24, 0, "RE", 1),
             (5, 96, 40, 1, "HS", 2), (5, 240, 40, 1, "HS", 1), (5, 240, 40, 1, "HS", 1),
             (5, 120, 48, 1, "HS", 1), (5, 144, 48, 1, "HS", 1), (5, 288, 96, 1, "HS", 2),
             (5, 576, 96, 1, "HS", 1), (5, 576, 96, 1, "HS", 1)]
    return _mobilenet_v3(table, 576, 1024, width, resolution)


def efficientnet_lite0(width: float | None = None, resolution: int | None = None) -> NetSpec:
    """EfficientNet-Lite0: MBConv blocks without SE, ReLU6, stem 32 and head 1280 kept fixed."""
    table = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
             (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
    blocks = [f"ir_r{n}_k{k}{'_s2' if s == 2 else ''}_e{e}_c{c}" for e, k, s, c, n in table]
    return parse_spec(f"res{resolution or 224} | cn_k3_s2_c32 | {' '.join(blocks)} | "
                      f"cn_k1_c1280 pool fc_c1000")


def with_int4_weights(spec: NetSpec) -> NetSpec:
    """The same network with int4 weights in every conv and FC block."""
    stages = tuple(tuple(replace(b, int4=b.kind != "pool") for b in stage) for stage in spec.stages)
    return replace(spec, stages=stages)


def set_classes(spec: NetSpec, num_classes: int) -> NetSpec:
    """The same network with its last FC block resized to ``num_classes`` outputs."""
    stages = [list(stage) for stage in spec.stages]
    for stage in reversed(stages):
        for index in range(len(stage) - 1, -1, -1):
            if stage[index].kind == "fc":
                stage[index] = replace(stage[index], out_channels=num_classes)
                return replace(spec, stages=tuple(tuple(s) for s in stages), num_classes=num_classes)
    return replace(spec, num_classes=num_classes)


def detector(backbone: NetSpec, anchors: int = 3, num_classes: int = 20) -> NetSpec:
    """``backbone`` as a YOLO-style detector: its classifier (the global pool and every FC block)
    replaced by a ``yolo`` head with ``anchors`` anchors per cell (20 classes: Pascal VOC's)."""
    stages = [tuple(b for b in stage if b.kind not in ("pool", "fc")) for stage in backbone.stages]
    stages = [stage for stage in stages if stage]
    head = BlockSpec("yolo", anchors=anchors, act="none")
    return replace(backbone, stages=tuple(stages) + ((head,),), num_classes=num_classes)
