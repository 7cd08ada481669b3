"""`mcuforge import MODEL -o OUT.tflite`: a PyTorch model saved with `torch.export.save` (.pt2) or a
float ONNX model (.onnx) becomes an int8 .tflite (see `mcuforge.frontends.torch_export` and
`mcuforge.frontends.onnx_import` for the ops they take and `mcuforge.quant.graph_ptq` for the
quantisation). A QDQ-quantised ONNX model is already int8: its graph is written as read, with no
calibration.

Calibration data (the options and the quantise step are `commands/calibration.py`'s, shared with
`compile` and `bench`): ``--calibration data.npy`` (float inputs in the model's own layout,
[N, C, H, W] for images, as the torch module or onnxruntime takes them; transposed to the .tflite's
NHWC here) or ``--dataset NAME`` (images of a data set, resized and normalised to
``pixel / 127.5 - 1`` as `mcuforge train` does); ``--samples`` of them are used. The float-vs-int8
agreement (argmax agreement, largest absolute difference of the dequantised outputs) is reported on
those samples. The .tflite's input is int8: ``round(x / scale) + zero_point`` of the NHWC float
input; scale and zero point are printed.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import McuforgeError
from .calibration import CalibrationRequest, calibration_options, echo_quantised, int8_model


@click.command("import")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The int8 .tflite file to write.")
@calibration_options
def command(model: Path, output: Path, request: CalibrationRequest) -> None:
    """Import MODEL (a torch.export .pt2 or an .onnx file) and quantise it to an int8 .tflite (a
    QDQ-quantised .onnx is written as it is quantised)."""
    from ..frontends.tflite_writer import write_tflite

    if model.suffix not in (".pt2", ".onnx"):
        raise McuforgeError(f"{model}: mcuforge import takes a torch.export .pt2 or an .onnx file")
    if output.suffix != ".tflite":
        raise McuforgeError(f"{output}: the output must be a .tflite file")
    if not output.parent.resolve().is_dir():
        raise McuforgeError(f"{output}: folder {output.parent} does not exist")
    result = int8_model(str(model), request)
    write_tflite(result.graph, output)
    echo_quantised(result, prefix=f"wrote {output}: ")
