"""`mcuforge listen MODEL FILE.wav`: what a keyword-spotting model hears in a WAV file.

MODEL is an int8 KWS .tflite (or a compiled project folder made from one: its .tflite, or the
source named in its report.json). The front end comes from the model's ``mcuforge.kws`` metadata
(`pipeline.kws_model`), or from ``--frontend`` for a model that records none, such as TFLite Micro's
micro_speech_quantized.tflite (whose labels are silence, unknown, yes, no). The clip is read as
16-bit mono PCM at the front end's rate (``--resample`` takes any rate and resamples it as training
does), centred in (or cut centred to) the model's window as in training (`data.audio_clips`), turned
into int8 features and run through the int8 reference runtime. Prints the label and the int8
scores; ``--json`` prints ``{"label": ..., "scores": [...]}`` (plus ``labels`` and ``frontend``).
A bad WAV (not a WAV, truncated, stereo, 8-bit, another rate) is one line and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import McuforgeError, ModelFileError


def kws_model_path(model: Path) -> Path:
    """The .tflite of MODEL: the file itself, or the one of a compiled project folder."""
    if model.is_dir():
        found = sorted(model.glob("*.tflite"))
        if found:
            return found[0]
        report = model / "report.json"
        if report.is_file():
            source = Path(json.loads(report.read_text()).get("source") or "")
            if source.suffix == ".tflite" and source.is_file():
                return source
        raise ModelFileError(f"{model}: a folder without a .tflite model (nor a report.json naming one)")
    if model.suffix != ".tflite":
        raise ModelFileError(f"{model}: a keyword-spotting model is a .tflite file or a compiled project")
    if not model.is_file():
        raise ModelFileError(f"{model}: no such file")
    return model


@click.command("listen")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("wav", type=click.Path(path_type=Path))
@click.option("--frontend", type=click.Choice(["micro-speech", "mfcc"]),
              help="The audio front end, for a model that records none.")
@click.option("--resample", is_flag=True, help="Accept any sample rate and resample to the front end's.")
@click.option("--json", "as_json", is_flag=True, help='Print {"label": ..., "scores": [...]}.')
def command(model: Path, wav: Path, frontend: str | None, resample: bool, as_json: bool) -> None:
    """Classify the sound in WAV with the keyword-spotting MODEL (int8 reference runtime)."""
    from ..data.audio_clips import read_clip
    from ..frontends.tflite import read_tflite
    from ..ops.support import require_executable
    from ..pipeline.kws_model import check_input, classify_pcm, kws_info

    path = kws_model_path(model)
    graph = read_tflite(path)
    require_executable(graph, str(path), c_code=False)
    info = kws_info(graph, frontend, str(path))
    check_input(graph, info, str(path))
    clip = read_clip(wav, info.window_samples, None if resample else info.sample_rate)
    scores = classify_pcm(graph, clip[None, :], info)[0]
    if len(scores) != len(info.labels):
        raise McuforgeError(f"{path}: {len(scores)} scores but {len(info.labels)} labels in its metadata")
    best = int(scores.argmax())
    if as_json:
        click.echo(json.dumps({"label": info.labels[best], "scores": [int(s) for s in scores],
                               "labels": list(info.labels), "frontend": info.frontend}))
        return
    click.echo(f"{info.labels[best]}")
    click.echo("  " + "  ".join(f"{label} {int(score)}" for label, score in zip(info.labels, scores)) +
               f"   (int8 scores; {info.frontend} front end)")
