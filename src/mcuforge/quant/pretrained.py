"""Pretrained weights for zoo models: MCUNet's PyTorch checkpoints mapped onto our `SpecNet`.

mit-han-lab/mcunet saves ProxylessNAS-style modules (``torch.load(path, weights_only=True)`` gives
``{"state_dict": ...}``). Their names map one to one onto the zoo's spec blocks:

    first_conv.{conv,bn}                                   -> blocks.0.{conv,bn}          (stem)
    blocks.J.mobile_inverted_conv.inverted_bottleneck.*    -> blocks.(J+1).expand.*
    blocks.J.mobile_inverted_conv.depth_conv.*             -> blocks.(J+1).dw.*
    blocks.J.mobile_inverted_conv.point_linear.*           -> blocks.(J+1).project.*
    feature_mix_layer.{conv,bn}                            -> the 1x1 ``cn`` block before the pool
    classifier.linear.{weight,bias}                        -> the last ``fc`` block's linear

The mapped state dict is loaded strictly: a missing, extra or misshapen tensor is an error naming
it. `load_mcunet_backbone` loads the same checkpoint into a detector built on mcunet-in3's backbone
(`models.zoo_families.detector`): every block but the ``yolo`` head, the classifier left out. The models expect RGB input normalised to [-1, 1] (``(x - 0.5) / 0.5``, mcunet's
eval_imagenet.py), which is what `mcuforge.data.transforms` produces; the int8 .tflite of the same
model takes ``pixel - 128`` (scale 1/127).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..errors import McuforgeError, UnknownModelError
from ..models.spec_torch import Classifier, ConvBNAct, InvertedResidual, SpecNet, YoloHead, build_torch
from ..models.zoo import get_spec
from ..reference import reference_file

# Zoo name -> checkpoint inside the reference folder (mit-han-lab/mcunet assets/pt_ckpt).
PRETRAINED: dict[str, str] = {
    "mcunet-in3": "models/mcunet/mcunet-320kb-1mb_imagenet.pth",
}
_PARTS = {"inverted_bottleneck": "expand", "depth_conv": "dw", "point_linear": "project"}
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.mobile_inverted_conv\.(\w+)\.(.+)$")


def map_mcunet_state_dict(model: SpecNet, state_dict: dict[str, torch.Tensor], drop_classifier: bool = False
                          ) -> dict[str, torch.Tensor]:
    """mcunet/ProxylessNAS parameter names -> this `SpecNet`'s names (see the module doc);
    ``drop_classifier`` leaves the checkpoint's classifier out (a backbone for another head)."""
    blocks = list(model.blocks)
    ir_indices = [i for i, b in enumerate(blocks) if isinstance(b, InvertedResidual)]
    fc_indices = [i for i, b in enumerate(blocks) if isinstance(b, Classifier)]
    mix_indices = [i for i, b in enumerate(blocks) if isinstance(b, ConvBNAct)
                   and i > (ir_indices[-1] if ir_indices else 0)]
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if drop_classifier and key.startswith("classifier."):
            continue
        if key.startswith("first_conv."):
            target = "blocks.0." + key[len("first_conv."):]
        elif key.startswith("feature_mix_layer.") and mix_indices:
            target = f"blocks.{mix_indices[0]}." + key[len("feature_mix_layer."):]
        elif key.startswith("classifier.linear.") and fc_indices:
            target = f"blocks.{fc_indices[-1]}.linear." + key[len("classifier.linear."):]
        elif (match := _BLOCK_KEY.match(key)) and match.group(2) in _PARTS:
            index = int(match.group(1))
            if index >= len(ir_indices):
                raise McuforgeError(f"checkpoint block {index} does not exist in {model.spec.name}")
            target = f"blocks.{ir_indices[index]}.{_PARTS[match.group(2)]}.{match.group(3)}"
        else:
            raise McuforgeError(f"checkpoint parameter {key!r} has no place in {model.spec.name}")
        mapped[target] = value
    return mapped


def _read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise McuforgeError(f"cannot read checkpoint {path}: {exc}") from None
    state_dict = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state_dict, dict):
        raise McuforgeError(f"{path}: not a state dict")
    return state_dict


def load_mcunet_checkpoint(model: SpecNet, path: str | Path) -> SpecNet:
    """Load an mcunet ``.pth`` into ``model`` (strictly, in place); returns ``model`` in eval mode."""
    mapped = map_mcunet_state_dict(model, _read_state_dict(path))
    _check_mapped(model, mapped, path, set())
    model.load_state_dict(mapped, strict=True)
    return model.eval()


def load_mcunet_backbone(model: SpecNet, path: str | Path | None = None) -> SpecNet:
    """Load an mcunet ``.pth`` (default: mcunet-in3's ImageNet weights) into every block of
    ``model`` but its ``yolo`` head, which keeps its own initialisation (in place)."""
    checkpoint = Path(path) if path is not None else reference_file(PRETRAINED["mcunet-in3"])
    mapped = map_mcunet_state_dict(model, _read_state_dict(checkpoint), drop_classifier=True)
    heads = {f"blocks.{i}." for i, b in enumerate(model.blocks) if isinstance(b, YoloHead)}
    head_keys = {key for key in model.state_dict() if any(key.startswith(h) for h in heads)}
    _check_mapped(model, mapped, checkpoint, head_keys)
    model.load_state_dict(mapped, strict=False)
    return model


def _check_mapped(model: SpecNet, mapped: dict[str, torch.Tensor], path: str | Path, free: set[str]) -> None:
    """Every parameter of ``model`` but ``free`` has a value of its shape in ``mapped``."""
    own = model.state_dict()
    missing = sorted(set(own) - set(mapped) - free)
    if missing:
        raise McuforgeError(f"{path}: no value for {', '.join(missing[:5])}"
                            f"{' ...' if len(missing) > 5 else ''}")
    for name, value in mapped.items():
        if tuple(own[name].shape) != tuple(value.shape):
            raise McuforgeError(f"{path}: {name} has shape {tuple(value.shape)}, the model needs "
                                f"{tuple(own[name].shape)}")


def load_pretrained(name: str, path: str | Path | None = None) -> SpecNet:
    """The zoo model ``name`` with its pretrained weights (from the reference folder unless
    ``path`` is given), in eval mode."""
    if name not in PRETRAINED and path is None:
        raise UnknownModelError(f"no pretrained weights for {name!r}; available: "
                                f"{', '.join(PRETRAINED)}")
    model = build_torch(get_spec(name))
    checkpoint = Path(path) if path is not None else reference_file(PRETRAINED[name])
    return load_mcunet_checkpoint(model, checkpoint)
