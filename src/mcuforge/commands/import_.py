"""`mcuforge import MODEL -o OUT.tflite`: a PyTorch model saved with `torch.export.save` (.pt2) or a
float ONNX model (.onnx) becomes an int8 .tflite (see `mcuforge.frontends.torch_export` and
`mcuforge.frontends.onnx_import` for the ops they take and `mcuforge.quant.graph_ptq` for the
quantisation). A QDQ-quantised ONNX model is already int8: its graph is written as read, with no
calibration.

Calibration data: ``--calibration data.npy`` (float inputs in the model's own layout, [N, C, H, W]
for images, as the torch module or onnxruntime takes them; transposed to the .tflite's NHWC here) or
``--dataset NAME`` (images of a data set, resized and
normalised to ``pixel / 127.5 - 1`` as `mcuforge train` does); ``--samples`` of them are used. The
float-vs-int8 agreement (argmax agreement, largest absolute difference of the dequantised outputs)
is reported on those samples. The .tflite's input is int8: ``round(x / scale) + zero_point`` of the
NHWC float input; scale and zero point are printed.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import McuforgeError


def _calibration(graph, calibration: Path | None, dataset: str | None, samples: int, seed: int):
    """Torch-layout calibration samples from a .npy file or a data set."""
    import numpy as np

    if (calibration is None) == (dataset is None):
        raise McuforgeError("give exactly one of --calibration data.npy or --dataset NAME "
                            "(the data to calibrate activation ranges on)")
    if calibration is not None:
        try:
            data = np.load(calibration, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise McuforgeError(f"{calibration}: not a .npy array ({exc})") from None
        return data[:samples], str(calibration)
    from ..data.registry import load_dataset
    from ..data.transforms import eval_batch

    shape = graph.tensor(graph.inputs[0]).shape
    if len(shape) != 4:
        raise McuforgeError(f"--dataset needs an image model (input {list(shape)}); use --calibration")
    _, h, w, c = shape
    if h != w:
        raise McuforgeError(f"--dataset needs a square input (input {h}x{w}); use --calibration")
    train = load_dataset(dataset, "train", image_size=(h, w))
    order = np.random.default_rng(seed).permutation(len(train))[:samples]
    return eval_batch(train.batch(order)[0], h, c).numpy(), dataset


@click.command("import")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The int8 .tflite file to write.")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path),
              help="A .npy of float model inputs in the model's own layout ([N, C, H, W] for "
                   "images, as torch / onnxruntime take them; not NHWC).")
@click.option("--dataset", "-d", help="A data set (name or folder) to calibrate on.")
@click.option("--samples", type=click.IntRange(min=1), default=100, show_default=True,
              help="Calibration samples to use.")
@click.option("--observer", default="minmax", show_default=True,
              help="minmax, percentile (99.99th) or percentile:Q.")
@click.option("--seed", type=int, default=0, show_default=True)
def command(model: Path, output: Path, calibration: Path | None, dataset: str | None, samples: int,
            observer: str, seed: int) -> None:
    """Import MODEL (a torch.export .pt2 or an .onnx file) and quantise it to an int8 .tflite (a
    QDQ-quantised .onnx is written as it is quantised)."""
    from ..frontends.tflite_writer import write_tflite
    from ..quant.graph_ptq import float_int8_agreement, quantize_float_graph
    from ..quant.observers import make_observer

    try:
        make_observer(observer)
    except ValueError as exc:
        raise McuforgeError(str(exc)) from None
    if model.suffix not in (".pt2", ".onnx"):
        raise McuforgeError(f"{model}: mcuforge import takes a torch.export .pt2 or an .onnx file")
    if output.suffix != ".tflite":
        raise McuforgeError(f"{output}: the output must be a .tflite file")
    if not output.parent.resolve().is_dir():
        raise McuforgeError(f"{output}: folder {output.parent} does not exist")
    if model.suffix == ".onnx":
        from ..frontends.onnx_import import read_onnx
        from ..quant.onnx_ptq import is_float_onnx, onnx_calibration_inputs as to_ir_layout
        float_graph = read_onnx(model)
        if not is_float_onnx(float_graph):
            _write_qdq(float_graph, output, calibration is not None or dataset is not None)
            return
    else:
        from ..frontends.torch_export import load_pt2
        from ..quant.torch_import import to_ir_layout
        float_graph = load_pt2(model)
    data, origin = _calibration(float_graph, calibration, dataset, samples, seed)
    inputs = to_ir_layout(float_graph, data)
    graph = quantize_float_graph(float_graph, inputs, observer)
    write_tflite(graph, output)
    quant = graph.tensor(graph.inputs[0]).quant
    click.echo(f"wrote {output}: {len(graph.ops)} ops, int8, calibrated on {len(inputs)} samples "
               f"of {origin}")
    click.echo(f"input: int8 {list(graph.tensor(graph.inputs[0]).shape)} (NHWC), scale "
               f"{quant.scale[0]:.8g}, zero point {quant.zero_point[0]}")
    agreement = float_int8_agreement(float_graph, graph, inputs)
    click.echo(f"float vs int8 (reference runtime) on the {agreement['count']} calibration samples: "
               f"argmax agreement {agreement['argmax_agreement']:.1%}, max abs diff "
               f"{agreement['max_abs_diff']:.4g} (output range {agreement['output_span']:.4g})")


def _write_qdq(graph, output: Path, calibration_given: bool) -> None:
    """Write the int8 graph of a QDQ ONNX model (its float input goes through a QUANTIZE)."""
    from ..frontends.tflite_writer import write_tflite

    write_tflite(graph, output)
    x = graph.tensor(graph.inputs[0])
    note = "; --calibration/--dataset not used" if calibration_given else ""
    click.echo(f"wrote {output}: {len(graph.ops)} ops, int8 as quantised in the QDQ model{note}")
    click.echo(f"input: {x.dtype.value} {list(x.shape)} (NHWC)")
