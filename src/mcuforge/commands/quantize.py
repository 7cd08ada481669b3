"""`mcuforge quantize MODEL -o OUT.tflite`: post-training quantisation of a trained model to an
int8 .tflite (TFLite's scheme; see `mcuforge.quant.ptq`).

MODEL is a ``model.pt`` written by `mcuforge train` (calibrated on its own data set unless
``--dataset`` says otherwise; a detector's also writes its head JSON beside the .tflite) or a zoo name with pretrained weights (``mcunet-in3``; give
``--dataset`` with images to calibrate on). The .tflite runs in TFLite Micro, in `mcuforge run`,
and goes to `mcuforge compile`. Its input is int8: ``round(x / scale) + zero_point`` of the float
input ``x = pixel / 127.5 - 1``; the scale and zero point are printed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ..errors import McuforgeError, ModelFileError
from .calibration import CalibrationRequest, calibration_samples


def _load_model(model: str):
    """(float SpecNet, spec, the rest of model.pt ({} for a pretrained zoo name)) of a model.pt path
    or a pretrained zoo name."""
    from ..quant.pretrained import PRETRAINED, load_pretrained
    from ..train.run import load_trained_model

    if model in PRETRAINED:
        net = load_pretrained(model)
        return net, net.spec, {}
    if not Path(model).exists():
        raise McuforgeError(f"{model}: not a trained model file, and no pretrained weights by that "
                            f"name (pretrained: {', '.join(PRETRAINED)})")
    try:
        with warnings.catch_warnings():  # torch warns on stderr about foreign pickle protocols
            warnings.simplefilter("ignore")
            net, spec, saved = load_trained_model(model)
    except ModelFileError as exc:
        if exc.__cause__ is None:
            raise
        raise ModelFileError(f"{model}: not a trained model file (torch.load: "
                             f"{type(exc.__cause__).__name__}: "
                             f"{_first_sentence(str(exc.__cause__))})") from None
    return net, spec, saved


def _first_sentence(message: str, limit: int = 120) -> str:
    """The first sentence of the first line of ``message`` (torch's errors run over several lines)."""
    line = next((text.strip() for text in message.splitlines() if text.strip()), "unreadable")
    sentence = line.split(". ")[0]
    return sentence if len(sentence) <= limit else sentence[:limit] + "..."


@click.command("quantize")
@click.argument("model")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The .tflite file to write.")
@click.option("--dataset", "-d", help="Calibration data (default: the data set the model was trained on).")
@click.option("--calibration", type=click.IntRange(min=1), default=512, show_default=True,
              help="Number of random training images to calibrate activation ranges on.")
@click.option("--bits", type=click.Choice(["8", "4"]), default="8", show_default=True,
              help="Weight bits (activations are int8 either way).")
@click.option("--observer", default="minmax", show_default=True,
              help="minmax, percentile (99.99th) or percentile:Q.")
@click.option("--int4-fc", is_flag=True, help="With --bits 4, int4 classifier weights too "
              "(TFLite Micro cannot run them).")
@click.option("--evaluate", type=click.IntRange(min=0), default=0, show_default=True,
              help="Score float and int8 (reference runtime) top-1 accuracy on the first N test "
                   "images of the data set (0: skip).")
@click.option("--seed", type=int, default=0, show_default=True)
def command(model: str, output: Path, dataset: str | None, calibration: int, bits: str,
            observer: str, int4_fc: bool, evaluate: int, seed: int) -> None:
    """Quantise MODEL (a trained model.pt or a pretrained zoo name) to an int8 .tflite."""
    import torch

    from ..analysis.cost import graph_cost
    from ..frontends.tflite_writer import write_tflite
    from ..quant.observers import make_observer
    from ..quant.ptq import quantize_spec_net

    try:
        make_observer(observer)
    except ValueError as exc:
        raise McuforgeError(str(exc)) from None
    if output.suffix != ".tflite":
        raise McuforgeError(f"{output}: the output must be a .tflite file")
    if not output.parent.resolve().is_dir():
        raise McuforgeError(f"{output}: folder {output.parent} does not exist")
    from ..quant.pretrained import PRETRAINED

    if model in PRETRAINED and dataset is None:
        raise McuforgeError(f"{model}: give --dataset with images to calibrate on")
    net, spec, saved = _load_model(model)
    data_name = dataset or saved.get("dataset") or None
    if saved.get("task") == "detect":
        _quantize_detector(net, saved, data_name, output, calibration, evaluate)
        return
    if data_name is None:
        raise McuforgeError(f"{model}: give --dataset with images to calibrate on")
    images, _ = calibration_samples(
        (1, spec.resolution, spec.resolution, spec.in_channels),
        CalibrationRequest(dataset=data_name, samples=calibration, seed=seed))
    batches = [torch.as_tensor(images[i:i + 128]) for i in range(0, len(images), 128)]
    graph = quantize_spec_net(net, batches, weight_bits=int(bits), observer=observer,
                              int4_fc=int4_fc, name=spec.name or Path(model).stem)
    write_tflite(graph, output)
    quant = graph.tensor(graph.inputs[0]).quant
    cost = graph_cost(graph)
    click.echo(f"wrote {output}: {len(graph.ops)} ops, {cost.macs:,} MACs, Flash {cost.flash_bytes:,} B "
               f"(int{bits} weights), calibrated on {len(images)} images of {data_name}")
    click.echo(f"input: int8 {list(graph.tensor(graph.inputs[0]).shape)}, scale {quant.scale[0]:.8g}, "
               f"zero point {quant.zero_point[0]} (float input x = pixel / 127.5 - 1)")
    if evaluate:
        _evaluate(net, spec, graph, data_name, evaluate)


def _quantize_detector(net, saved: dict, data_name: str, output: Path, calibration: int, evaluate: int) -> None:
    """A detector's model.pt to an int8 .tflite and its head JSON beside it (``X.head.json``, what
    ``mcuforge detect`` and ``compile --head`` read), calibrated on letterboxed training images."""
    from ..data.registry import load_detection_dataset
    from ..detect.head import head_from_json, save_head_json, sidecar_head_path
    from ..frontends.tflite_writer import write_tflite
    from ..quant.detection import int8_scores, quantize_detector
    from ..train.detect import evaluate_detector

    head = head_from_json(saved["head"], "model.pt head")
    train_set = load_detection_dataset(data_name, "train")
    graph = quantize_detector(net, train_set, samples=min(calibration, len(train_set)))
    write_tflite(graph, output)
    head_path = save_head_json(head, sidecar_head_path(output))
    click.echo(f"wrote {output} and {head_path}: calibrated on {min(calibration, len(train_set))} "
               f"letterboxed images of {data_name}")
    if evaluate:
        val_set = load_detection_dataset(data_name, "val")
        val_set = val_set.subset(range(min(evaluate, len(val_set))))
        _, float_scores = evaluate_detector(net, val_set, head)
        scores = int8_scores(graph, val_set, head)
        click.echo(f"mAP@0.5 on the first {len(val_set)} validation images of {data_name}: float "
                   f"{float_scores.map50_voc:.3f}, int8 {scores.map50_voc:.3f} (reference runtime)")


def _evaluate(net, spec, graph, data_name: str, count: int) -> None:
    """Print float and int8 top-1 accuracy on the first ``count`` test images."""
    from ..data.registry import load_dataset
    from ..quant.inference import int8_accuracy
    from ..train.config import TrainConfig
    from ..train.loop import evaluate

    test_set = load_dataset(data_name, "test", image_size=(spec.resolution, spec.resolution))
    test_set = test_set.subset(list(range(min(count, len(test_set)))))
    _, float_acc = evaluate(net, test_set, TrainConfig(resolution=spec.resolution,
                                                       in_channels=spec.in_channels))
    int8, scored = int8_accuracy(graph, test_set, spec.resolution, spec.in_channels)
    click.echo(f"top-1 on the first {scored} test images of {data_name}: float {float_acc:.2%}, "
               f"int8 {int8:.2%} (reference runtime)")
