"""One entry point from a user's MODEL argument to a Graph: a zoo name, a DSL spec string, a
ProxylessNAS/MCUNet JSON config, a .tflite or .onnx file, or a ``torch.export`` .pt2 file (a float
graph: `mcuforge import` quantises it)."""

from __future__ import annotations

from pathlib import Path

from ..errors import McuforgeError, ModelFileError, UnknownModelError
from ..ir import Graph
from ..ops.validation import validate_model
from ..models.dsl import NetSpec, parse_spec
from .proxyless_json import load_config
from ..models.spec_graph import build_graph
from ..models.zoo import check_resolution, get_spec, list_models


def load_spec(model: str, resolution: int | None = None, width: float | None = None,
              num_classes: int | None = None, in_channels: int | None = None) -> NetSpec:
    """The NetSpec of a zoo name, a spec string (contains ``|``) or a JSON config path."""
    if "|" in model:
        if width is not None:
            raise McuforgeError("--width does not apply to a spec string (widths are absolute in the DSL)")
        spec = parse_spec(model, name="spec")
    elif model.endswith(".json"):
        if width is not None:
            raise McuforgeError("--width does not apply to a JSON config (its widths are fixed)")
        if not Path(model).exists():
            raise ModelFileError(f"{model}: no such file")
        try:
            spec = load_config(model)
        except UnicodeDecodeError:
            raise ModelFileError(f"{model}: not a JSON config (binary data, not UTF-8 text; "
                                 "a .tflite model must end in .tflite)") from None
    else:
        return get_spec(model, resolution, width, num_classes, in_channels)
    if resolution is not None:
        spec = spec.with_resolution(resolution)
    if num_classes is not None or in_channels is not None:
        from dataclasses import replace
        from ..models.zoo_families import set_classes
        spec = set_classes(replace(spec, in_channels=in_channels or spec.in_channels),
                           num_classes or spec.num_classes)
    check_resolution(spec, spec.name or model)
    return spec


def load_graph(model: str, resolution: int | None = None, width: float | None = None,
               require: str | None = None) -> Graph:
    """The IR graph of MODEL: a .tflite or .onnx file (with weights) or an analytic zoo/spec/config
    graph. ``require`` "run" or "compile": refuse, in one line (`ops.support.require_executable`), a
    graph the reference runtime cannot run or the generated C cannot compute (float32 or int16 ops,
    ops without a kernel, analytic weights); None: any graph the IR can describe."""
    if model.endswith(".tflite"):
        if resolution is not None or width is not None:
            raise McuforgeError("--resolution/--width do not apply to a .tflite model")
        from .tflite import read_tflite
        return _required(read_tflite(model), model, require)
    if model.endswith(".onnx"):
        if resolution is not None or width is not None:
            raise McuforgeError("--resolution/--width do not apply to an .onnx model")
        from .onnx_import import read_onnx
        return _required(read_onnx(model), model, require)
    if model.endswith(".pt2"):
        if resolution is not None or width is not None:
            raise McuforgeError("--resolution/--width do not apply to a .pt2 model")
        from .torch_export import load_pt2
        return _required(load_pt2(model), model, require)
    if not ("|" in model or model.endswith(".json")) and Path(model).exists():
        raise ModelFileError(f"{model}: not a .tflite, .onnx, .pt2 or .json model file")
    try:
        spec = load_spec(model, resolution, width)
    except UnknownModelError as exc:
        raise UnknownModelError(f"{exc} (or give a .tflite/.onnx/.pt2/.json path or a spec string)") from None
    return _required(validate_model(build_graph(spec, spec.name or Path(model).stem), model), model,
                     require)


def _required(graph: Graph, model: str, require: str | None) -> Graph:
    if require is None:
        return graph
    if require not in ("run", "compile"):
        raise ValueError(f"require must be None, 'run' or 'compile', not {require!r}")
    from ..ops.support import require_executable
    return require_executable(graph, model, c_code=require == "compile")


__all__ = ["load_graph", "load_spec", "list_models"]
