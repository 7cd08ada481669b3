"""A model project with an audio front end: raw int16 PCM in, the model's int8 scores and label out.

`add_frontend` puts the front end's C (`FrontendSources`, made by `mcuforge.audio.emit`, which sits
above codegen) under ``frontend/``, with ``mf_listen.{h,c}`` (``mcuforge_listen``: a clip through
the front end into the model's input, then ``mcuforge_invoke``; ``mcuforge_stream_push``: 20 ms
hops, a ring of feature frames, an inference every N hops and micro_speech's averaged-posterior
recognizer), the WAV-reading runners and the Makefile's ``listen-*`` targets. `run_qemu_listen` runs
the Cortex-M listen runner on one WAV; `count_listen` calls ``mcuforge_listen`` of a Cortex-M listen
ELF on one clip in unicorn and counts its instructions, the front end's share apart.
"""

from __future__ import annotations

import io
import re
import wave
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import McuforgeError
from .build import BuildError
from .elf import read_elf
from .emit import GeneratedModel
from .kernels import render_template
from .qemu import run_semihosted
from .targets import TARGETS, Target
from .unicorn_count import count_call

LISTEN_RUNNER_FILES = ("main_listen_cortex_m.c", "main_listen_host.c", "mf_wav.c", "mf_wav.h")
STREAM_EVERY = 1  # an inference on every hop (20 ms), as micro_speech does
STREAM_AVERAGE = 3  # score vectors averaged by the recognizer
STREAM_THRESHOLD = 200  # of 255 (int8 + 128), micro_speech's detection threshold
FRONTEND_SYMBOL_PREFIXES = ("mf_fe_", "mf_frontend_")


@dataclass(frozen=True)
class FrontendSources:
    """An audio front end's C files (name -> text, written under ``frontend/``) and its framing, as
    `mcuforge.audio.emit.frontend_sources` gives them; codegen only places and builds them."""

    name: str
    files: dict[str, str]
    sample_rate: int
    window_samples: int
    hop_samples: int
    features: int
    clip_window: int = 16_000  # samples a clip is centred in before framing (mcuforge.audio.clips)


def listen_frames(model: GeneratedModel, frontend: FrontendSources) -> int:
    """Feature frames the model reads; refuses a model whose input is not int8 frames × features."""
    graph = model.graph
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise McuforgeError(f"model {graph.name}: a front end feeds a model of one input and one output")
    tensor = graph.tensors[graph.inputs[0]]
    if model.edges.float_inputs or model.edges.float_outputs or tensor.nbytes % frontend.features:
        raise McuforgeError(
            f"model {graph.name}: input {graph.inputs[0]} ({list(tensor.shape)}, {tensor.nbytes} B) is not "
            f"int8 frames of the {frontend.name} front end's {frontend.features} features")
    return tensor.nbytes // frontend.features


def add_frontend(model: GeneratedModel, frontend: FrontendSources,
                 labels: tuple[str, ...]) -> GeneratedModel:
    """``model`` with the front end, the listen API and runners and the Makefile's listen targets."""
    frames = listen_frames(model, frontend)
    outputs = model.graph.tensors[model.graph.outputs[0]].nbytes
    if len(labels) != outputs:
        raise McuforgeError(f"model {model.graph.name}: {outputs} scores but {len(labels)} labels "
                            f"({', '.join(labels)})")
    context = {"frontend": frontend.name, "frames": frames, "window": frontend.window_samples,
               "hop": frontend.hop_samples,
               "clip_window": frontend.clip_window, "labels": [label.replace('"', "'") for label in labels],
               "stream_every": STREAM_EVERY, "stream_average": STREAM_AVERAGE,
               "stream_threshold": STREAM_THRESHOLD}
    files = dict(model.files)
    for name, text in frontend.files.items():
        files[f"frontend/{name}"] = text
    files["frontend/mf_listen.h"] = render_template("frontend/mf_listen.h.j2", **context)
    files["frontend/mf_listen.c"] = render_template("frontend/mf_listen.c.j2", **context)
    for runner in LISTEN_RUNNER_FILES:
        files[f"runner/{runner}"] = render_template(f"runner/{runner}")
    arm_targets = [{"name": t.name, "var": t.name.replace("-", "_").upper(), "machine": t.qemu_machine,
                    "cpu": t.qemu_cpu} for t in TARGETS.values() if t.is_cortex_m]
    files["Makefile"] = files["Makefile"] + render_template(
        "Makefile.listen.j2", frontend=frontend.name, arm_targets=arm_targets)
    return replace(model, files=files)


@dataclass(frozen=True)
class ListenRun:
    """What the Cortex-M listen runner printed and wrote for one WAV."""

    label: str
    scores: tuple[int, ...]
    features: bytes
    stack_high_water_bytes: int
    console: str


def pcm_wav_bytes(pcm: np.ndarray, sample_rate: int) -> bytes:
    """The bytes of a mono 16-bit WAV file holding ``pcm`` (what the listen runners read)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(np.asarray(pcm).astype("<i2").tobytes())
    return buffer.getvalue()


def run_qemu_listen(elf: Path, target: Target, wav: bytes, feature_bytes: int,
                    timeout_s: float = 600) -> ListenRun:
    """Run the listen ELF on ``wav`` (the bytes of a WAV file) under QEMU."""
    returncode, console, written = run_semihosted(elf, target, "input.wav", wav, timeout_s)
    match = re.search(r"label=(\S+) scores=([-0-9,]+) stack_high_water_bytes=(\d+)", console)
    if returncode != 0 or match is None:
        raise BuildError(f"the QEMU listen runner failed (exit {returncode}): {console.strip()[-500:]}")
    return ListenRun(match.group(1), tuple(int(v) for v in match.group(2).split(",")),
                     written[:feature_bytes], int(match.group(3)), console)


@dataclass(frozen=True)
class ListenCount:
    """One ``mcuforge_listen`` call counted in unicorn: all its instructions, the front end's own
    functions' share (`FRONTEND_SYMBOL_PREFIXES`; the memcpy/memset they call count for the rest),
    the label it returned, the int8 scores and feature frames it left, and its stack use."""

    instructions: int
    frontend_instructions: int
    label_index: int
    scores: tuple[int, ...]
    features: bytes
    stack_bytes: int

    @property
    def model_instructions(self) -> int:
        """Everything but the front end's functions: the inference, the listen glue, the copies."""
        return self.instructions - self.frontend_instructions


def count_listen(elf: Path, target: Target, pcm: np.ndarray, output_bytes: int,
                 feature_bytes: int) -> ListenCount:
    """Call ``mcuforge_listen(pcm, len(pcm), scores)`` of the listen ELF once in unicorn on the int16
    clip ``pcm`` (at most the runner's WAV buffer) and count it."""
    samples = np.asarray(pcm, dtype=np.int16)
    counted = count_call(elf, target, "mcuforge_listen", ("runner_wav", len(samples), "runner_scores"),
                         {"runner_wav": samples.astype("<i2").tobytes()})
    image = read_elf(elf)
    scores = bytes(counted.memory.mem_read(image.symbol("runner_scores"), output_bytes))
    features = bytes(counted.memory.mem_read(image.symbol("mf_listen_features"), feature_bytes))
    label = counted.return_value - (1 << 32) if counted.return_value >= 1 << 31 else counted.return_value
    if label < 0:
        raise McuforgeError("mcuforge_listen returned an error under unicorn")
    frontend = sum(count for name, count in counted.per_function.items()
                   if name.startswith(FRONTEND_SYMBOL_PREFIXES))
    return ListenCount(counted.instructions, frontend, label,
                       tuple(np.frombuffer(scores, dtype=np.int8).tolist()), features,
                       counted.stack_bytes)
