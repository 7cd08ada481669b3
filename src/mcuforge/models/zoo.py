"""The model zoo: a registry of named networks, each a `NetSpec` in the block-string DSL.

Public builders are one line over the private generators in `zoo_families.py`; MCUNet and baseline
networks are transcribed (by `frontends/proxyless_json.py`, then written out here as DSL text) from
mit-han-lab/mcunet's JSON configs; `tests/test_zoo.py` proves each transcription gives the same MACs,
parameters and memory as the config it comes from.

    >>> from mcuforge.models.zoo import get_spec, list_models
    >>> get_spec("mobilenet-v2", width=0.35, resolution=144).to_string()[:28]
    'res144 in3 cls1000 | cn_k3_s'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from ..errors import SpecError, UnknownModelError
from .dsl import NetSpec, parse_spec, resolution_divisor
from . import zoo_families


@dataclass(frozen=True)
class ZooEntry:
    """A registered model: how to build its spec, its defaults and where it comes from."""

    name: str
    build: Callable[[float | None, int | None], NetSpec]
    scalable_width: bool
    description: str
    source: str


_REGISTRY: dict[str, ZooEntry] = {}


# Registered name by its normalised spelling (`normalise_model_name`).
_BY_NORMALISED_NAME: dict[str, str] = {}


def normalise_model_name(name: str) -> str:
    """The spelling-free key of a zoo name: lower case, without ``-`` and ``_``, so that
    ``MobileNetV2``, ``mobilenet_v2`` and ``mobilenetv2`` all mean ``mobilenet-v2``."""
    return name.lower().replace("-", "").replace("_", "")


def register_model(name: str, build: Callable[[float | None, int | None], NetSpec], *,
                   scalable_width: bool, description: str, source: str) -> None:
    """Add a model to the registry (names are unique, also once normalised)."""
    key = normalise_model_name(name)
    if key in _BY_NORMALISED_NAME:
        raise ValueError(f"model {name} registered twice (as {_BY_NORMALISED_NAME[key]})")
    _REGISTRY[name] = ZooEntry(name, build, scalable_width, description, source)
    _BY_NORMALISED_NAME[key] = name


def list_models() -> list[str]:
    """Names of every registered model, in registration order."""
    return list(_REGISTRY)


def zoo_entry(name: str) -> ZooEntry:
    """The registry entry of ``name``, in any spelling `normalise_model_name` equates (the entry
    carries the registered name); raises `UnknownModelError` with the known names."""
    registered = _BY_NORMALISED_NAME.get(normalise_model_name(name))
    if registered is None:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}")
    return _REGISTRY[registered]


def get_spec(name: str, resolution: int | None = None, width: float | None = None,
             num_classes: int | None = None, in_channels: int | None = None) -> NetSpec:
    """The spec of zoo model ``name``, optionally at another resolution/width/classes/input channels.

    Raises `UnknownModelError` for unknown names and `SpecError` for a width on a fixed-width model or
    a resolution the network cannot take.
    """
    entry = zoo_entry(name)
    name = entry.name
    if width is not None and not entry.scalable_width:
        raise SpecError(f"model {name} has a fixed width (it is a searched architecture); "
                        f"--width applies to: {', '.join(n for n, e in _REGISTRY.items() if e.scalable_width)}")
    if width is not None and not 0 < width <= 4:
        raise SpecError(f"width multiplier must be in (0, 4], got {width}")
    spec = entry.build(width, resolution)
    if num_classes is not None or in_channels is not None:
        spec = replace(spec, num_classes=num_classes or spec.num_classes,
                       in_channels=in_channels or spec.in_channels)
        spec = zoo_families.set_classes(spec, spec.num_classes)
    check_resolution(spec, name)
    return replace(spec, name=name)


def check_resolution(spec: NetSpec, name: str = "") -> None:
    """Raise `SpecError` unless ``spec.resolution`` is a positive multiple of what the net needs."""
    divisor = resolution_divisor(spec)
    if any(size < divisor or size % divisor for size in spec.input_hw):
        raise SpecError(
            f"resolution {'x'.join(map(str, spec.input_hw))} does not suit {name or 'this network'}: it must be a "
            f"multiple of {divisor} (every stride-2 layer but the last needs an even feature map)")


def _fixed(text: str) -> Callable[[float | None, int | None], NetSpec]:
    spec = parse_spec(text)

    def build(width: float | None, resolution: int | None) -> NetSpec:
        return spec if resolution is None else spec.with_resolution(resolution)
    return build


def _int4(text: str) -> Callable[[float | None, int | None], NetSpec]:
    base = _fixed(text)
    return lambda width, resolution: zoo_families.with_int4_weights(base(width, resolution))


# MCUNet configs transcribed to the DSL (mit-han-lab/mcunet @ 8326da69, assets/configs).
MCUNET_SPECS: dict[str, tuple[str, str]] = {
    "mcunet-in0": ("mcunet-10fps_imagenet", "res48 in3 cls1000 | cn_k3_s2_c24 | ir_k3_e1_c16 ir_k5_s2_e4_m64_c16 ir_k3_e3_m48_c16 ir_k3_e4_m64_c16 ir_k7_s2_e5_m80_c24 ir_k5_e4_m96_c24 ir_k5_e5_m120_c24 ir_k7_s2_e5_m120_c48 ir_k5_e4_m192_c48 ir_k3_e5_m240_c56 ir_k5_e4_m224_c56 ir_k3_e5_m280_c56 ir_k3_s2_e6_m336_c112 ir_k5_e4_m448_c112 ir_k3_e6_m672_c192 | pool fc_c1000"),
    "mcunet-in1": ("mcunet-5fps_imagenet", "res96 in3 cls1000 | cn_k3_s2_c16 | ir_k3_e1_c8 ir_k3_s2_e4_m32_c16 ir_k3_e3_m48_c16 ir_k7_s2_e3_m48_c24 ir_k3_e5_m120_c24 ir_k3_s2_e5_m120_c40 ir_k7_e4_m160_c40 ir_k5_e4_m160_c48 ir_k3_e3_m144_c48 ir_k3_e4_m192_c48 ir_k7_s2_e5_m240_c96 ir_k5_e4_m384_c96 ir_k5_e4_m384_c96 ir_k3_e6_m576_c160 | pool fc_c1000"),
    "mcunet-in2": ("mcunet-256kb-1mb_imagenet", "res160 in3 cls1000 | cn_k3_s2_c16 | ir_k3_e1_c8 ir_k5_s2_e3_m24_c16 ir_k7_e6_m96_c16 ir_k3_e5_m80_c16 ir_k5_e5_m80_c16 ir_k3_s2_e5_m80_c24 ir_k7_e6_m144_c24 ir_k5_e6_m144_c24 ir_k7_s2_e4_m96_c40 ir_k5_e5_m200_c40 ir_k3_e5_m200_c48 ir_k5_e5_m240_c48 ir_k3_e4_m192_c48 ir_k5_s2_e6_m288_c96 ir_k5_e4_m384_c96 ir_k5_e3_m288_c96 ir_k3_e4_m384_c96 ir_k5_e5_m480_c160 | pool fc_c1000"),
    "mcunet-in3": ("mcunet-320kb-1mb_imagenet", "res176 in3 cls1000 | cn_k3_s2_c16 | ir_k3_e1_c8 ir_k7_s2_e3_m24_c16 ir_k3_e5_m80_c16 ir_k7_e5_m80_c16 ir_k5_e4_m64_c16 ir_k5_s2_e5_m80_c24 ir_k5_e5_m120_c24 ir_k5_e5_m120_c24 ir_k3_s2_e5_m120_c40 ir_k7_e6_m240_c40 ir_k5_e4_m160_c40 ir_k5_e5_m200_c48 ir_k7_e5_m240_c48 ir_k3_e5_m240_c48 ir_k3_s2_e6_m288_c96 ir_k7_e5_m480_c96 ir_k3_e4_m384_c96 ir_k7_e5_m480_c160 | pool fc_c1000"),
    "mcunet-in4": ("mcunet-512kb-2mb_imagenet", "res160 in3 cls1000 | cn_k3_s2_c32 | ir_k3_e1_c16 ir_k7_s2_e3_m48_c24 ir_k3_e5_m120_c24 ir_k5_e4_m96_c24 ir_k7_s2_e5_m120_c40 ir_k3_e4_m160_c40 ir_k7_e4_m160_c40 ir_k7_s2_e3_m120_c80 ir_k3_e3_m240_c80 ir_k7_e3_m240_c80 ir_k3_e4_m320_c96 ir_k5_e3_m288_c96 ir_k5_e3_m288_c96 ir_k7_s2_e4_m384_c192 ir_k7_e3_m576_c192 ir_k5_e3_m576_c192 ir_k5_e4_m768_c320 | pool fc_c1000"),
    "mcunet-in2-int4": ("mcunet-256kb-1mb-int4_imagenet", "res160 in3 cls1000 | cn_k3_s2_c32 | ir_k3_e1_c16 ir_k7_s2_e3_m48_c24 ir_k3_e6_m144_c24 ir_k5_e5_m120_c24 ir_k7_e3_m72_c24 ir_k7_s2_e5_m120_c40 ir_k5_e3_m120_c40 ir_k7_e4_m160_c40 ir_k3_s2_e5_m200_c72 ir_k7_e4_m288_c72 ir_k5_e6_m432_c88 ir_k5_e4_m352_c88 ir_k7_e3_m264_c88 ir_k3_s2_e5_m440_c176 ir_k5_e4_m704_c176 ir_k5_e4_m704_c288 | pool fc_c1000"),
    "mcunet-in3-int4": ("mcunet-320kb-1mb-int4_imagenet", "res176 in3 cls1000 | cn_k3_s2_c32 | ir_k3_e1_c16 ir_k7_s2_e3_m48_c24 ir_k5_e6_m144_c24 ir_k5_e6_m144_c24 ir_k7_s2_e4_m96_c40 ir_k3_e4_m160_c40 ir_k7_e4_m160_c40 ir_k5_e4_m160_c40 ir_k7_s2_e4_m160_c72 ir_k7_e6_m432_c72 ir_k5_e4_m288_c72 ir_k5_e3_m216_c88 ir_k5_e3_m264_c88 ir_k7_e4_m352_c88 ir_k3_s2_e5_m440_c176 ir_k3_e3_m528_c176 ir_k7_e4_m704_c288 | pool fc_c1000"),
    "mcunet-in4-int4": ("mcunet-512kb-2mb-int4_imagenet", "res192 in3 cls1000 | cn_k3_s2_c48 | ir_k3_e1_c24 ir_k7_s2_e3_m72_c40 ir_k3_e5_m200_c40 ir_k3_e5_m200_c40 ir_k3_e5_m200_c40 ir_k5_s2_e6_m240_c64 ir_k7_e4_m256_c64 ir_k5_e5_m320_c64 ir_k7_s2_e5_m320_c120 ir_k7_e4_m480_c120 ir_k3_e4_m480_c120 ir_k5_e4_m480_c144 ir_k3_e4_m576_c144 ir_k7_e3_m432_c144 ir_k3_s2_e5_m720_c288 ir_k7_e3_m864_c288 ir_k5_e4_m1152_c480 | pool fc_c1000"),
    "proxyless-w0.3-r176": ("proxyless-w0.3-r176_imagenet", "res176 in3 cls1000 | cn_k3_s2_c16 | ir_k3_e1_c8 ir_k5_s2_e3_c16 ir_k3_e3_c16 ir_k7_s2_e3_c16 ir_k3_e3_c16 ir_k5_e3_c16 ir_k5_e3_c16 ir_k7_s2_e6_c24 ir_k5_e3_c24 ir_k5_e3_c24 ir_k5_e3_c24 ir_k5_e6_c32 ir_k5_e3_c32 ir_k5_e3_c32 ir_k5_e3_c32 ir_k7_s2_e6_c64 ir_k7_e6_c64 ir_k7_e3_c64 ir_k7_e3_c64 ir_k7_e6_c96 | cn_k1_c384 pool fc_c1000"),
    "proxyless-w0.25-r112": ("proxyless-w0.25-r112_imagenet", "res112 in3 cls1000 | cn_k3_s2_c8 | ir_k3_e1_c8_nores ir_k5_s2_e3_c8 ir_k3_e3_c8 ir_k7_s2_e3_c16 ir_k3_e3_c16 ir_k5_e3_c16 ir_k5_e3_c16 ir_k7_s2_e6_c24 ir_k5_e3_c24 ir_k5_e3_c24 ir_k5_e3_c24 ir_k5_e6_c24_nores ir_k5_e3_c24 ir_k5_e3_c24 ir_k5_e3_c24 ir_k7_s2_e6_c48 ir_k7_e6_c48 ir_k7_e3_c48 ir_k7_e3_c48 ir_k7_e6_c80 | cn_k1_c320 pool fc_c1000"),
    "proxylessnas-mobile": ("proxyless_mobile", "res224 in3 cls1000 | cn_k3_s2_c32 | ir_k3_e1_c16 ir_k5_s2_e3_c32 ir_k3_e3_c32 ir_k7_s2_e3_c40 ir_k3_e3_c40 ir_k5_e3_c40 ir_k5_e3_c40 ir_k7_s2_e6_c80 ir_k5_e3_c80 ir_k5_e3_c80 ir_k5_e3_c80 ir_k5_e6_c96 ir_k5_e3_c96 ir_k5_e3_c96 ir_k5_e3_c96 ir_k7_s2_e6_c192 ir_k7_e6_c192 ir_k7_e3_c192 ir_k7_e3_c192 ir_k7_e6_c320 | cn_k1_c1280 pool fc_c1000"),
}

# Zoo name -> the config file it transcribes (for tests and provenance).
CONFIG_OF_MODEL: dict[str, str] = {name: f"{config}.json" for name, (config, _) in MCUNET_SPECS.items()}
CONFIG_OF_MODEL["mbv2-w0.35-r144"] = "mbv2-w0.35-r144_imagenet.json"
CONFIG_OF_MODEL["mbv2-w0.3-r80"] = "mbv2-w0.3-r80_imagenet.json"

_MCUNET_SOURCE = "mit-han-lab/mcunet @ 8326da69, assets/configs/"

register_model("mobilenet-v1", zoo_families.mobilenet_v1, scalable_width=True,
               description="MobileNetV1 (depthwise-separable), width and resolution scalable",
               source="Howard et al. 2017")
register_model("mobilenet-v2", zoo_families.mobilenet_v2, scalable_width=True,
               description="MobileNetV2 (inverted residuals), width and resolution scalable",
               source="Sandler et al. 2018; head width as ProxylessNAS/MCUNet (1280 x width)")
register_model("mobilenet-v3-small", zoo_families.mobilenet_v3_small, scalable_width=True,
               description="MobileNetV3-Small (SE, h-swish)", source="Howard et al. 2019")
register_model("mobilenet-v3-large", zoo_families.mobilenet_v3_large, scalable_width=True,
               description="MobileNetV3-Large (SE, h-swish)", source="Howard et al. 2019")
register_model("efficientnet-lite0", zoo_families.efficientnet_lite0, scalable_width=False,
               description="EfficientNet-Lite0 (no SE, ReLU6, fixed stem/head)",
               source="tensorflow/tpu efficientnet/lite")
register_model("dscnn", zoo_families.ds_cnn, scalable_width=True,
               description="DS-CNN keyword spotting, [49, 10] MFCC (resolution: bins per frame, e.g. 40)",
               source="MLPerf Tiny (mlcommons/tiny keyword_spotting); Zhang et al. 2017, Hello Edge")
register_model("mcunet-kws", zoo_families.mcunet_kws, scalable_width=True,
               description="MCUNet-style inverted-residual keyword spotting, [49, 10] or [49, 40] input",
               source="mcuforge; block shapes in the style of Lin et al. 2020 (MCUNet)")
for _name, (_config, _text) in MCUNET_SPECS.items():
    _build = _int4(_text) if _name.endswith("-int4") else _fixed(_text)
    register_model(_name, _build, scalable_width=False,
                   description=f"{_name} ({'int4 weights' if _name.endswith('-int4') else 'int8'})",
                   source=_MCUNET_SOURCE + _config + ".json")
register_model("mbv2-w0.35-r144", lambda w, r: zoo_families.mobilenet_v2(0.35, r or 144),
               scalable_width=False, description="MobileNetV2 w0.35 at 144 px (MCUNet baseline)",
               source=_MCUNET_SOURCE + "mbv2-w0.35-r144_imagenet.json")
register_model("mbv2-w0.3-r80", lambda w, r: zoo_families.mobilenet_v2(0.3, r or 80),
               scalable_width=False, description="MobileNetV2 w0.3 at 80 px (MCUNet baseline)",
               source=_MCUNET_SOURCE + "mbv2-w0.3-r80_imagenet.json")
register_model("mcunet-in3-yolo",
               lambda w, r: zoo_families.detector(parse_spec(MCUNET_SPECS["mcunet-in3"][1])).with_resolution(r or 256),
               scalable_width=False,
               description="mcunet-in3's backbone with a YOLO head (3 anchors, 20 classes), r256: "
                           "fits 256 KB with patches only",
               source=_MCUNET_SOURCE + "mcunet-320kb-1mb_imagenet.json (backbone)")
from . import zoo_redistributed  # noqa: E402,F401  (registers the receptive-field redistributed variants)
