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


def ds_cnn(width: float | None = None, resolution: int | None = None) -> NetSpec:
    """DS-CNN, the MLPerf Tiny keyword-spotting network (mlcommons/tiny, keyword_spotting
    keras_model.py ``ds_cnn``): a 10x4 stride-2 stem conv of 64 filters, four depthwise-separable
    blocks (3x3 depthwise, 64 pointwise), ReLU, global average pool and a 12-way classifier, on
    49x10 MFCC input. ``resolution`` is the number of feature bins per frame (10 MFCC, 40 for
    micro_speech's filter bank); the 49 frames stay."""
    w = 1.0 if width is None else width
    c = _c(64, w)
    blocks = " ".join([f"ds_k3_c{c}_nre"] * 4)
    return parse_spec(f"res49x{resolution or 10} in1 cls12 | cn_k10x4_s2_c{c}_nre | {blocks} | pool fc_c12")


def mcunet_kws(width: float | None = None, resolution: int | None = None) -> NetSpec:
    """An MCUNet-style keyword-spotting network: a 3x3 stride-2 stem and inverted residual blocks
    of mixed kernel sizes (3, 5, 7) and expansions, as MCUNet's searched networks are, sized for a
    [49, 10] or [49, 40] spectrogram under 64 KB of SRAM (one stride-2 layer: 49 frames -> 25)."""
    w = 1.0 if width is None else width
    table = [(3, 1, 16), (5, 3, 24), (3, 3, 24), (7, 3, 32), (5, 3, 32), (3, 3, 48)]
    blocks = " ".join(f"ir_k{k}_e{e}_c{_c(c, w)}" for k, e, c in table)
    return parse_spec(f"res49x{resolution or 10} in1 cls12 | cn_k3_s2_c{_c(16, w)} | {blocks} | pool fc_c12")


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
