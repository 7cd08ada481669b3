"""The calibration options and the quantise step that `import`, `compile` and `bench` share: one
home for turning any MODEL argument into the int8 graph the runtime, the C and TFLite Micro take.

MODEL may be:

- an int8 ``.tflite`` or a QDQ ``.onnx``: already quantised, taken as it is (calibration options
  are noted as unused);
- a float model, a ``torch.export`` ``.pt2`` or a float ``.onnx``: quantised by
  `quant.graph_ptq` on ``--calibration data.npy`` (float inputs in the model's own layout, NCHW
  for images) or ``--dataset NAME`` (its images resized and normalised to ``pixel / 127.5 - 1``);
  without either it is refused in one line naming the options;
- a zoo name, DSL spec string or JSON config: its `SpecNet`, with MCUNet's pretrained weights
  where `quant.pretrained` has them and the checkpoint is in the reference folder, otherwise
  seeded random weights (whose batch norms then take the calibration data's statistics, as a
  trained network's would); quantised by `quant.ptq` on ``--calibration``, ``--dataset``, or, with
  neither, seeded synthetic images (uniform in [-1, 1], the normalised pixel range), which the
  output line says so that nobody mistakes the ranges for calibrated ones.

``--samples`` of the data are used; the float-vs-int8 agreement (argmax agreement, largest
absolute difference of the dequantised outputs) is reported on them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import click
import numpy as np

from ..errors import McuforgeError
from ..ir import Graph

F = TypeVar("F", bound=Callable[..., object])
SYNTHETIC = "synthetic images (seeded uniform noise in [-1, 1]; give --dataset or --calibration " \
            "for real activation ranges)"


@dataclass(frozen=True)
class CalibrationRequest:
    """What the user gave to calibrate a float model on."""

    calibration: Path | None = None
    dataset: str | None = None
    samples: int = 100
    observer: str = "minmax"
    seed: int = 0

    @property
    def given(self) -> bool:
        """True when --calibration or --dataset was given."""
        return self.calibration is not None or self.dataset is not None


def calibration_options(f: F) -> F:
    """The ``--calibration``, ``--dataset``, ``--samples``, ``--observer`` and ``--seed`` options;
    the command receives them as one `CalibrationRequest` argument called ``request``."""
    options = [
        click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path),
                     help="A .npy of float model inputs in the model's own layout ([N, C, H, W] "
                          "for images, as torch / onnxruntime take them; not NHWC)."),
        click.option("--dataset", "-d", help="A data set (name or folder) to calibrate on."),
        click.option("--samples", type=click.IntRange(min=1), default=100, show_default=True,
                     help="Calibration samples to use."),
        click.option("--observer", default="minmax", show_default=True,
                     help="minmax, percentile (99.99th) or percentile:Q."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the sample order (and of random zoo weights)."),
    ]

    @functools.wraps(f)  # keeps the options declared below this decorator
    def gather(**kwargs: object) -> object:
        request = CalibrationRequest(*(kwargs.pop(k) for k in
                                       ("calibration", "dataset", "samples", "observer", "seed")))
        _check_observer(request.observer)
        return f(request=request, **kwargs)

    for option in reversed(options):
        gather = option(gather)
    return gather  # type: ignore[return-value]


def _check_observer(observer: str) -> None:
    from ..quant.observers import make_observer
    try:
        make_observer(observer)
    except ValueError as exc:
        raise McuforgeError(str(exc)) from None


@dataclass(frozen=True)
class Quantised:
    """An int8 graph and how it came to be: ``lines`` say it to the user; ``agreement`` is the
    float-vs-int8 comparison on the calibration samples (None for a model read as int8)."""

    graph: Graph
    lines: tuple[str, ...]
    agreement: dict[str, float] | None = None
    synthetic: bool = False
    notes: tuple[str, ...] = field(default=())


def calibration_samples(nhwc_shape: tuple[int, ...], request: CalibrationRequest
                        ) -> tuple[np.ndarray, str]:
    """(float samples in the model's own layout, NCHW for images; where they came from) from
    ``--calibration`` or ``--dataset`` (exactly one must be given)."""
    if (request.calibration is None) == (request.dataset is None):
        raise McuforgeError("give exactly one of --calibration data.npy or --dataset NAME "
                            "(the data to calibrate activation ranges on)")
    if request.calibration is not None:
        try:
            data = np.load(request.calibration, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise McuforgeError(f"{request.calibration}: not a .npy array ({exc})") from None
        return data[:request.samples], str(request.calibration)
    from ..data.registry import load_dataset
    from ..data.transforms import eval_batch

    if len(nhwc_shape) != 4:
        raise McuforgeError(f"--dataset needs an image model (input {list(nhwc_shape)}); "
                            "use --calibration")
    _, h, w, c = nhwc_shape
    if h != w:
        raise McuforgeError(f"--dataset needs a square input (input {h}x{w}); use --calibration")
    train = load_dataset(request.dataset, "train", image_size=(h, w))
    order = np.random.default_rng(request.seed).permutation(len(train))[:request.samples]
    batches = [eval_batch(train.batch(order[i:i + 128])[0], h, c).numpy()
               for i in range(0, len(order), 128)]
    return np.concatenate(batches), str(request.dataset)


def quantise_float_model(float_graph: Graph, model: str, request: CalibrationRequest) -> Quantised:
    """The int8 graph of a float graph read from a ``.pt2`` or float ``.onnx`` file."""
    from ..quant.graph_ptq import float_int8_agreement, quantize_float_graph

    if not request.given:
        raise McuforgeError(f"{model} is a float model: give --calibration data.npy (float inputs "
                            "in the model's own layout) or --dataset NAME to quantise it")
    if model.endswith(".onnx"):
        from ..quant.onnx_ptq import onnx_calibration_inputs as to_ir_layout
    else:
        from ..quant.torch_import import to_ir_layout
    data, origin = calibration_samples(float_graph.tensor(float_graph.inputs[0]).shape, request)
    inputs = to_ir_layout(float_graph, data)
    graph = quantize_float_graph(float_graph, inputs, request.observer)
    agreement = float_int8_agreement(float_graph, graph, inputs)
    return Quantised(graph, (f"{len(graph.ops)} ops, int8, calibrated on {len(inputs)} samples "
                             f"of {origin}",), agreement)


def quantise_spec_model(model: str, request: CalibrationRequest, resolution: int | None = None,
                        width: float | None = None) -> Quantised:
    """The int8 graph of a zoo name, spec string or JSON config (see the module doc)."""
    import torch

    from ..frontends.load import load_spec
    from ..models.spec_torch import build_torch
    from ..quant.calibrate import batch_norm_statistics
    from ..quant.graph_ptq import float_int8_agreement
    from ..quant.pretrained import PRETRAINED, load_pretrained
    from ..quant.ptq import quantize_spec_net
    from ..quant.torch_import import to_ir_layout

    spec = load_spec(model, resolution, width)
    name = spec.name or "spec"
    if name in PRETRAINED and resolution is None and width is None:
        try:
            net, weights = load_pretrained(name), "pretrained weights"
        except McuforgeError as exc:  # the checkpoint is not in the reference folder
            net, weights = None, f"random weights (seed {request.seed}; no pretrained: {exc})"
    else:
        net, weights = None, f"random weights (seed {request.seed})"
    random_weights = net is None
    if random_weights:
        torch.manual_seed(request.seed)
        net = build_torch(spec).eval()
    nhwc = (1, spec.resolution, spec.resolution, spec.in_channels)
    if request.given:
        data, origin = calibration_samples(nhwc, request)
        synthetic = False
        want = (spec.in_channels, spec.resolution, spec.resolution)
        if data.ndim != 4 or tuple(data.shape[1:]) != want:
            raise McuforgeError(f"calibration data of shape {list(data.shape)} does not hold inputs "
                                f"of {name} ([N, {', '.join(map(str, want))}], NCHW)")
    else:
        generator = torch.Generator().manual_seed(request.seed)
        data = (torch.rand(request.samples, spec.in_channels, spec.resolution, spec.resolution,
                           generator=generator) * 2 - 1).numpy()
        origin, synthetic = SYNTHETIC, True
    batches = [torch.as_tensor(data[i:i + 64], dtype=torch.float32) for i in range(0, len(data), 64)]
    if random_weights:  # batch norms take the calibration data's statistics, as trained ones would
        batch_norm_statistics(net, batches)
        weights += ", batch-norm statistics of the calibration data"
    graph = quantize_spec_net(net, batches, observer=request.observer, name=name)
    inputs = to_ir_layout(graph, data)

    def float_model(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.as_tensor(x.transpose(0, 3, 1, 2), dtype=torch.float32)).numpy()

    agreement = float_int8_agreement(float_model, graph, inputs)
    return Quantised(graph, (f"{name}: {weights}, {len(graph.ops)} ops, int8, calibrated on "
                             f"{len(inputs)} samples of {origin}",), agreement, synthetic)


def is_float_model(graph: Graph) -> bool:
    """True for the float graph of a ``.pt2`` or float ``.onnx`` file (one to quantise)."""
    return graph.metadata.get("source") == "torch.export" or \
        graph.metadata.get("quantisation") == "float"


def int8_model(model: str, request: CalibrationRequest, resolution: int | None = None,
               width: float | None = None) -> Quantised:
    """The int8 graph of any MODEL argument (see the module doc)."""
    from ..frontends.load import load_graph

    unused = ("--calibration/--dataset not used (the model is already int8)",) \
        if request.given else ()
    if model.endswith((".tflite", ".onnx", ".pt2")):
        if resolution is not None or width is not None:
            raise McuforgeError(f"--resolution/--width do not apply to a {Path(model).suffix} model")
        graph = load_graph(model)
        if is_float_model(graph):
            return quantise_float_model(graph, model, request)
        how = "int8 as quantised in the QDQ model" if model.endswith(".onnx") else "int8"
        return Quantised(graph, (f"{len(graph.ops)} ops, {how}",), notes=unused)
    return quantise_spec_model(model, request, resolution, width)


def echo_quantised(result: Quantised, prefix: str = "", notes_only: bool = False) -> None:
    """Print what `int8_model` did: its lines, the input quantisation, the agreement, notes
    (``notes_only``: just the notes of a model read as int8)."""
    if notes_only and result.agreement is None:
        for note in result.notes:
            click.echo(f"note: {note}")
        return
    for line in result.lines:
        click.echo(f"{prefix}{line}")
    x = result.graph.tensor(result.graph.inputs[0])
    if x.quant is not None and x.dtype.value == "int8":
        click.echo(f"input: int8 {list(x.shape)} (NHWC), scale {x.quant.scale[0]:.8g}, zero point "
                   f"{x.quant.zero_point[0]}")
    else:
        click.echo(f"input: {x.dtype.value} {list(x.shape)} (NHWC)")
    if result.agreement is not None:
        a = result.agreement
        where = "synthetic" if result.synthetic else "calibration"
        click.echo(f"float vs int8 (reference runtime) on the {a['count']} {where} samples: "
                   f"argmax agreement {a['argmax_agreement']:.1%}, max abs diff "
                   f"{a['max_abs_diff']:.4g} (output range {a['output_span']:.4g})")
    for note in result.notes:
        click.echo(f"note: {note}")
