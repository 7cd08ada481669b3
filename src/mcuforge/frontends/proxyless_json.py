"""Loader for ProxylessNAS/MCUNet-style JSON network configs (``first_conv``, ``blocks`` of
``MobileInvertedResidualBlock``, ``feature_mix_layer``, ``classifier``, ``resolution``) into a NetSpec.

``ZeroLayer`` blocks with an identity shortcut are skipped blocks (they compute nothing) and are left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..models.dsl import BlockSpec, NetSpec

_ACTS = {"relu6": "relu6", "relu": "relu", "h_swish": "hswish", "hswish": "hswish", None: "none"}


def _act(value: Any, where: str) -> str:
    if value not in _ACTS:
        raise SpecError(f"{where}: unknown activation {value!r}")
    return _ACTS[value]


def _get(layer: dict, key: str, where: str) -> Any:
    if not isinstance(layer, dict) or key not in layer:
        raise SpecError(f"{where}: missing {key!r}")
    return layer[key]


def config_to_spec(config: dict, name: str = "", where: str = "config") -> NetSpec:
    """Convert a parsed JSON config to a NetSpec (raises SpecError naming the bad field)."""
    if not isinstance(config, dict):
        raise SpecError(f"{where}: expected a JSON object at the top level")
    first = _get(config, "first_conv", where)
    blocks_json = _get(config, "blocks", where)
    classifier = _get(config, "classifier", where)
    if not isinstance(blocks_json, list):
        raise SpecError(f"{where}: 'blocks' must be a list")
    try:
        resolution = int(config.get("resolution", 224))
        stem = BlockSpec("cn", int(_get(first, "out_channels", f"{where}: first_conv")),
                         int(_get(first, "kernel_size", f"{where}: first_conv")),
                         int(_get(first, "stride", f"{where}: first_conv")),
                         act=_act(first.get("act_func"), f"{where}: first_conv"))
        in_channels = int(first.get("in_channels", 3))
        blocks: list[BlockSpec] = []
        for index, block in enumerate(blocks_json):
            at = f"{where}: blocks[{index}]"
            conv = _get(block, "mobile_inverted_conv", at)
            kind = _get(conv, "name", at)
            if kind == "ZeroLayer":
                if not block.get("shortcut"):
                    raise SpecError(f"{at}: a ZeroLayer without a shortcut cuts the network")
                continue
            if kind != "MBInvertedConvLayer":
                raise SpecError(f"{at}: unsupported layer {kind!r}")
            kernel = _get(conv, "kernel_size", at)
            if isinstance(kernel, list):
                raise SpecError(f"{at}: mixed kernel sizes {kernel} are not supported")
            expand = float(_get(conv, "expand_ratio", at))
            mid = conv.get("mid_channels")
            out_channels = int(_get(conv, "out_channels", at))
            stride = int(_get(conv, "stride", at))
            in_c = int(_get(conv, "in_channels", at))
            shortcut = block.get("shortcut") is not None
            allowed = stride == 1 and in_c == out_channels
            if shortcut and not allowed:
                raise SpecError(f"{at}: a shortcut needs stride 1 and equal widths")
            blocks.append(BlockSpec(
                "ir", out_channels, int(kernel), stride, expand,
                int(mid) if mid is not None else None,
                0.25 if conv.get("use_se") else 0.0,
                _act(conv.get("act_func", "relu6"), at), residual=shortcut or not allowed))
        head: list[BlockSpec] = []
        mix = config.get("feature_mix_layer")
        if mix:
            head.append(BlockSpec("cn", int(_get(mix, "out_channels", f"{where}: feature_mix_layer")),
                                  int(mix.get("kernel_size", 1)), int(mix.get("stride", 1)),
                                  act=_act(mix.get("act_func"), f"{where}: feature_mix_layer")))
        head.append(BlockSpec("pool"))
        head.append(BlockSpec("fc", int(_get(classifier, "out_features", f"{where}: classifier")),
                              act="none"))
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: bad value ({exc})") from None
    return NetSpec(resolution, ((stem,), tuple(blocks), tuple(head)), in_channels,
                   head[-1].out_channels, name)


def load_config(path: str | Path) -> NetSpec:
    """Read a JSON config file into a NetSpec; errors name the file and the field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return config_to_spec(config, path.stem, str(path))
