"""A deployed keyword-spotting model: the front end recorded in its .tflite, and WAV -> label.

An int8 KWS .tflite written by mcuforge carries one Model.metadata entry, ``mcuforge.kws``: JSON with
the audio front end that makes its input (``frontend``: ``micro-speech`` or ``mfcc``), the class
names (``labels``), the window the clips are fitted to (``window_samples`` at ``sample_rate``) and how
(``clip_rule``: ``centred``, `data.audio_clips.fit_to_window`). `kws_info` reads it back; a model
that records none (TFLite Micro's micro_speech_quantized.tflite) gets ``--frontend`` from the user,
and its labels from `KNOWN_LABELS` when its output size matches, else ``"0"``, ``"1"``, ...

`classify_pcm` is the whole chain in the int8 reference runtime: int16 PCM clips -> front-end features
(int8) -> the model's int8 input -> int8 scores. The features go in as they are, as TFLite Micro's
micro_speech example feeds them (its model's input scale is not the front end's): the int8 feature
*is* the model's int8 input. mcuforge trains on ``x = feature / 128`` and quantises the input with
scale 1/128 and zero point 0, so that holds exactly for its models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..audio import frontend_by_name
from ..data.audio_clips import CLIP_SAMPLES, SAMPLE_RATE
from ..data.transforms import FEATURE_SCALE
from ..errors import McuforgeError, ModelFileError
from ..ir import Graph
from ..quant.inference import int8_logits

METADATA_KEY = "mcuforge.kws"
# Labels of models that record none, by output size (TFLite Micro's micro_speech example).
KNOWN_LABELS = {4: ["silence", "unknown", "yes", "no"]}


@dataclass(frozen=True)
class KwsInfo:
    """What running a KWS model on sound needs: front end, labels, window."""

    frontend: str
    labels: tuple[str, ...]
    window_samples: int = CLIP_SAMPLES
    sample_rate: int = SAMPLE_RATE
    recorded: bool = True  # False: given by the caller (the model records no front end)

    def to_json(self) -> str:
        """The ``mcuforge.kws`` metadata text."""
        return json.dumps({"frontend": self.frontend, "labels": list(self.labels),
                           "window_samples": self.window_samples, "sample_rate": self.sample_rate,
                           "clip_rule": "centred", "input_scale": FEATURE_SCALE, "input_zero_point": 0})


def with_kws_metadata(graph: Graph, info: KwsInfo) -> Graph:
    """``graph`` with its ``mcuforge.kws`` metadata entry set (written into the .tflite)."""
    from dataclasses import replace

    entries = {**graph.metadata.get("tflite_metadata", {}), METADATA_KEY: info.to_json()}
    return replace(graph, metadata={**graph.metadata, "tflite_metadata": entries})


def kws_info(graph: Graph, frontend: str | None = None, source: str = "model") -> KwsInfo:
    """The model's recorded front end and labels; ``frontend`` overrides (or supplies) the front end."""
    text = graph.metadata.get("tflite_metadata", {}).get(METADATA_KEY)
    outputs = int(np.prod(graph.tensor(graph.outputs[0]).shape))
    if text is not None:
        try:
            saved = json.loads(text)
            info = KwsInfo(str(saved["frontend"]), tuple(str(x) for x in saved["labels"]),
                           int(saved["window_samples"]), int(saved["sample_rate"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelFileError(f"{source}: unreadable {METADATA_KEY} metadata ({exc})") from None
        if frontend is not None and frontend != info.frontend:
            raise McuforgeError(f"{source} was trained on the {info.frontend} front end, not {frontend}")
        return info
    if frontend is None:
        raise McuforgeError(f"{source} records no audio front end: give --frontend micro-speech or mfcc")
    labels = KNOWN_LABELS.get(outputs, [str(i) for i in range(outputs)])
    return KwsInfo(frontend, tuple(labels), recorded=False)


def check_input(graph: Graph, info: KwsInfo, source: str = "model") -> tuple[int, ...]:
    """The model's input shape, checked against the front end's feature count."""
    module = frontend_by_name(info.frontend)
    frames = module.frame_count(info.window_samples)
    shape = tuple(graph.tensor(graph.inputs[0]).shape)
    if int(np.prod(shape)) != frames * module.NUM_CHANNELS:
        raise McuforgeError(f"{source}: input {list(shape)} does not take the {info.frontend} front end's "
                            f"{frames} x {module.NUM_CHANNELS} features")
    return shape


def features_to_model_input(graph: Graph, features: np.ndarray) -> np.ndarray:
    """int8 front-end features [N, frames, bins] -> the model's int8 input [N, *input shape[1:]]:
    the same int8 values, reshaped (module doc)."""
    shape = graph.tensor(graph.inputs[0]).shape
    features = np.asarray(features, dtype=np.int8)
    return features.reshape((len(features),) + tuple(shape[1:]))


def classify_pcm(graph: Graph, pcm: np.ndarray, info: KwsInfo) -> np.ndarray:
    """int8 scores [N, classes] of int16 clips [N, window] through the front end and the int8
    reference runtime."""
    features = frontend_by_name(info.frontend).features_batch(np.asarray(pcm, dtype=np.int16))
    x = features_to_model_input(graph, features)
    return int8_logits(graph, x).reshape(len(x), -1)
