"""The block-string DSL: a network is data, one printable, diffable string.

Grammar (timm-like; tokens separated by spaces, stages by ``|``)::

    spec    := header ( "|" stage )+
    header  := "res" INT ["x" INT] [ "in" INT ]  [ "cls" INT ] e.g. "res176 in3 cls1000", "res49x10 in1"
    stage   := block ( " " block )*
    block   := KIND ( "_" OPTION )*
    KIND    := "cn"    conv + BN + act (stem, 1x1 feature mix)       options k s c act
             | "ds"    depthwise-separable: dw kxk + BN + act, pw 1x1 + BN + act (MobileNetV1)
             | "ir"    inverted residual: [pw expand + BN + act] dw kxk + BN + act [SE] pw project + BN
                       (no expansion conv when the mid width equals the input width and e == 1)
             | "pool"  global average pool
             | "fc"    fully connected (bias, no BN)                  options c act
             | "yolo"  YOLO-style detection head, the last block: a biased kxk conv (no BN, no
                       activation, k = 1 unless given) to A * (5 + cls) channels, A anchors per
                       cell, ``cls`` classes from the header; per anchor the channels are
                       (tx, ty, tw, th, objectness, class_0 .. class_{cls-1})   options a k
    OPTION  := "r" INT      repeat the block INT times (later repeats use stride 1)
             | "k" INT ["x" INT]  kernel size (height x width; odd kernels pad k//2 on each
                            edge, even ones TensorFlow's SAME)   | "s" INT    stride
             | "e" FLOAT    expansion ratio: mid = round(in * e)
             | "m" INT      mid (expanded) width, overrides the width e gives; the expansion
                            conv exists when e != 1 or the mid width differs from the input's
             | "c" INT      output channels (absolute: width multipliers are applied by builders)
             | "se" FLOAT   squeeze-excite with reduce width make_divisible(mid * FLOAT, 8),
                            ReLU inside, hard-sigmoid gate (MobileNetV3)
             | "nre" ReLU   | "nr6" ReLU6   | "nhs" h-swish   | "nid" no activation
                            (default: ReLU6 for cn/ds/ir, none for fc)
             | "nores"      no residual even where shapes allow one
             | "w4"         int4 weights for this block (int8 otherwise)
             | "a" INT      anchors per output cell (``yolo`` only)

A residual connection is added to ``ir`` blocks with stride 1 and equal input and output widths,
unless ``nores`` is given. ``res49x10`` is a 49-high, 10-wide input (a spectrogram: time x
frequency); ``res176`` a square one. Example, MCUNet-in3's first blocks::

    res176 in3 cls1000 | cn_k3_s2_c16 | ir_k3_e1_c8 | ir_k7_s2_m24_c16 ir_k3_m80_c16 ...

A detector ends in a ``yolo`` block instead of ``pool fc`` (its output is the NHWC grid
[1, res/S, res/S, A * (5 + cls)], S the network's total stride; the resolution must be a multiple
of S). The anchors' sizes are data, not architecture: they travel beside the spec (a head JSON,
`mcuforge.detect.head`). MCUNet-in3 as a one-class detector with three anchors::

    res256 in3 cls1 | cn_k3_s2_c16 | ir_k3_e1_c8 ... ir_k7_e5_m480_c160 | yolo_a3
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..errors import SpecError

ACTIVATIONS = {"nre": "relu", "nr6": "relu6", "nhs": "hswish", "nid": "none"}
_ACT_TOKEN = {value: key for key, value in ACTIVATIONS.items()}
KINDS = ("cn", "ds", "ir", "pool", "fc", "yolo")


@dataclass(frozen=True)
class BlockSpec:
    """One block of a network spec (see the module docstring for the meaning of each field)."""

    kind: str
    out_channels: int = 0
    kernel: int = 1
    stride: int = 1
    expand: float = 1.0
    mid_channels: int | None = None
    se_ratio: float = 0.0
    act: str = "relu6"
    residual: bool = True
    int4: bool = False
    kernel_w: int | None = None  # None: a square kernel (kernel x kernel)
    anchors: int = 0

    def __post_init__(self) -> None:
        if self.kind == "pool":
            object.__setattr__(self, "act", "none")
        if self.kernel_w == self.kernel:
            object.__setattr__(self, "kernel_w", None)

    @property
    def kernel_hw(self) -> tuple[int, int]:
        """(height, width) of the kernel."""
        return self.kernel, self.kernel if self.kernel_w is None else self.kernel_w

    def to_string(self) -> str:
        """The block's DSL text (without repeats)."""
        parts = [self.kind]
        if self.kind in ("cn", "ds", "ir"):
            parts.append(f"k{self.kernel}" + ("" if self.kernel_w is None else f"x{self.kernel_w}"))
            if self.stride != 1:
                parts.append(f"s{self.stride}")
        if self.kind == "ir":
            if self.mid_channels is None or self.expand != 1:
                parts.append(f"e{_fmt_float(self.expand)}")
            if self.mid_channels is not None:
                parts.append(f"m{self.mid_channels}")
            if self.se_ratio:
                parts.append(f"se{_fmt_float(self.se_ratio)}")
        if self.kind == "yolo":
            if self.kernel != 1:
                parts.append(f"k{self.kernel}")
            parts.append(f"a{self.anchors}")
        if self.kind in ("cn", "ds", "ir", "fc"):
            parts.append(f"c{self.out_channels}")
            if self.act != default_act(self.kind):
                parts.append(_ACT_TOKEN[self.act])
        if self.kind == "ir" and not self.residual:
            parts.append("nores")
        if self.int4:
            parts.append("w4")
        return "_".join(parts)


@dataclass(frozen=True)
class NetSpec:
    """A whole network: input resolution and channels, classes, and stages of blocks."""

    resolution: int
    stages: tuple[tuple[BlockSpec, ...], ...]
    in_channels: int = 3
    num_classes: int = 1000
    name: str = field(default="", compare=False)
    input_width: int | None = None  # None: a square input (resolution x resolution)

    def __post_init__(self) -> None:
        if self.input_width == self.resolution:
            object.__setattr__(self, "input_width", None)

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) of the input."""
        return self.resolution, self.resolution if self.input_width is None else self.input_width

    @property
    def blocks(self) -> tuple[BlockSpec, ...]:
        """All blocks in order, stages flattened."""
        return tuple(block for stage in self.stages for block in stage)

    def to_string(self) -> str:
        """The spec's DSL text; `parse_spec(spec.to_string()) == spec`."""
        size = f"{self.resolution}" + ("" if self.input_width is None else f"x{self.input_width}")
        header = f"res{size} in{self.in_channels} cls{self.num_classes}"
        stages = [" ".join(block.to_string() for block in stage) for stage in self.stages]
        return " | ".join([header, *stages])

    def with_resolution(self, resolution: int) -> "NetSpec":
        """The same network at another (square) input resolution."""
        return replace(self, resolution=resolution, input_width=None)


def default_act(kind: str) -> str:
    """The activation a block kind has when the spec names none."""
    return "none" if kind in ("fc", "pool", "yolo") else "relu6"


def _fmt_float(value: float) -> str:
    return f"{value:g}"


_OPTION = re.compile(r"^(se|r|k|s|e|m|c|a)(\d+(?:\.\d+)?)$")
_KERNEL_HW = re.compile(r"^k(\d+)x(\d+)$")


def parse_block(text: str) -> list[BlockSpec]:
    """Parse one block string (repeats expanded into several `BlockSpec`)."""
    tokens = text.split("_")
    kind = tokens[0]
    if kind not in KINDS:
        raise SpecError(f"block {text!r}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    values: dict[str, object] = {"kind": kind, "act": default_act(kind)}
    repeat = 1
    for token in tokens[1:]:
        if token in ACTIVATIONS:
            values["act"] = ACTIVATIONS[token]
            continue
        if token == "nores":
            values["residual"] = False
            continue
        if token == "w4":
            values["int4"] = True
            continue
        kernel_hw = _KERNEL_HW.match(token)
        if kernel_hw:
            values["kernel"], values["kernel_w"] = int(kernel_hw.group(1)), int(kernel_hw.group(2))
            continue
        match = _OPTION.match(token)
        if not match:
            raise SpecError(f"block {text!r}: cannot read option {token!r}")
        key, number = match.groups()
        try:
            if key == "r":
                repeat = int(number)
            elif key == "k":
                values["kernel"] = int(number)
            elif key == "s":
                values["stride"] = int(number)
            elif key == "e":
                values["expand"] = float(number)
            elif key == "m":
                values["mid_channels"] = int(number)
            elif key == "c":
                values["out_channels"] = int(number)
            elif key == "se":
                values["se_ratio"] = float(number)
            elif key == "a":
                values["anchors"] = int(number)
        except ValueError:
            raise SpecError(f"block {text!r}: option {token!r} needs a whole number") from None
    block = BlockSpec(**values)  # type: ignore[arg-type]
    _check_block(block, text)
    if repeat < 1:
        raise SpecError(f"block {text!r}: repeat must be at least 1")
    return [block] + [replace(block, stride=1) for _ in range(repeat - 1)]


def _check_block(block: BlockSpec, text: str) -> None:
    if block.kind in ("cn", "ds", "ir", "fc") and block.out_channels <= 0:
        raise SpecError(f"block {text!r}: needs output channels (c<N>)")
    if block.kind in ("cn", "ds", "ir") and min(block.kernel_hw) < 1:
        raise SpecError(f"block {text!r}: kernel size must be at least 1, got {block.kernel_hw}")
    if block.kind in ("ds", "ir") and (block.kernel_w is not None or block.kernel % 2 == 0):
        raise SpecError(f"block {text!r}: depthwise kernels are square and odd, got "
                        f"{'x'.join(map(str, block.kernel_hw))}")
    if block.stride < 1:
        raise SpecError(f"block {text!r}: stride must be at least 1")
    if block.kind == "ir" and block.expand <= 0:
        raise SpecError(f"block {text!r}: expansion must be positive")
    if block.kind == "yolo":
        if block.anchors < 1:
            raise SpecError(f"block {text!r}: a yolo head needs its anchors per cell (a<N>)")
        if block.kernel < 1 or block.kernel % 2 == 0 or block.stride != 1:
            raise SpecError(f"block {text!r}: a yolo head has an odd kernel and stride 1")
    elif block.anchors:
        raise SpecError(f"block {text!r}: only a yolo head has anchors (a<N>)")


def parse_spec(text: str, name: str = "") -> NetSpec:
    """Parse a network spec string (grammar in the module docstring)."""
    parts = [part.strip() for part in text.strip().split("|")]
    if len(parts) < 2 or not parts[0]:
        raise SpecError(f"spec {text[:60]!r}: expected 'res<N> [in<N>] [cls<N>] | blocks...'")
    header: dict[str, int] = {}
    for token in parts[0].split():
        size = re.fullmatch(r"res(\d+)x(\d+)", token)
        if size:
            header["res"], header["res_w"] = int(size.group(1)), int(size.group(2))
            continue
        match = re.fullmatch(r"(res|in|cls)(\d+)", token)
        if not match:
            raise SpecError(f"spec header: cannot read {token!r} (expected res<N>[x<W>], in<N>, cls<N>)")
        header[match.group(1)] = int(match.group(2))
    if "res" not in header:
        raise SpecError("spec header: needs the input resolution res<N>")
    stages = []
    for part in parts[1:]:
        blocks: list[BlockSpec] = []
        for token in part.replace(",", " ").split():
            blocks.extend(parse_block(token))
        if not blocks:
            raise SpecError(f"spec {text[:60]!r}: empty stage")
        stages.append(tuple(blocks))
    spec = NetSpec(header["res"], tuple(stages), header.get("in", 3), header.get("cls", 1000), name,
                   header.get("res_w"))
    if min(spec.input_hw) < 1 or spec.in_channels < 1 or spec.num_classes < 1:
        raise SpecError("spec header: resolution, input channels and classes must be positive")
    heads = [index for index, block in enumerate(spec.blocks) if block.kind == "yolo"]
    if heads and heads != [len(spec.blocks) - 1]:
        raise SpecError(f"spec {text[:60]!r}: a yolo head must be the one last block")
    return spec


def is_detector(spec: NetSpec) -> bool:
    """Whether ``spec`` ends in a ``yolo`` detection head."""
    return bool(spec.blocks) and spec.blocks[-1].kind == "yolo"


def total_stride(spec: NetSpec) -> int:
    """The product of every block's stride: input pixels per cell of the last feature map."""
    stride = 1
    for block in spec.blocks:
        if block.kind in ("cn", "ds", "ir"):
            stride *= block.stride
    return stride


def resolution_divisor(spec: NetSpec) -> int:
    """The number the input resolution must be a multiple of: every stride-2 layer except the last
    must see an even feature map (so that PyTorch's ``k//2`` padding, TFLite's explicit pads and the
    patch geometry agree), i.e. ``2 ** (number of stride-2 layers - 1)``. A detector (``yolo``
    head) needs the whole total stride, so that each output cell covers exactly ``stride`` pixels."""
    if is_detector(spec):
        return total_stride(spec)
    strided = sum(1 for block in spec.blocks if block.kind in ("cn", "ds", "ir") and block.stride > 1)
    return 2 ** max(strided - 1, 0)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` without going below 90% of it (MobileNet rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
