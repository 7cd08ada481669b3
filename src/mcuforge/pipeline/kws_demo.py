"""`mcuforge demo --task kws`: spoken digits from WAV to label on an emulated Cortex-M4.

Stages (a `mcuforge.stages.Run`, results in ``DIR/results/``; a rerun resumes at the first
unfinished one, and training resumes inside itself from its checkpoint):

1. ``train``   `pipeline.kws`: DS-CNN on FSDD's micro_speech features, trained on four speakers,
               int8 PTQ, float and int8 accuracy on the held-out speaker; ``DIR/model_int8.tflite``
               is the deployed model (its front end recorded in its metadata).
2. ``compile`` the C project of the int8 model for the Cortex-M4 with the audio front end in it
               (`codegen.project.compile_model` with ``frontend``: raw PCM in, scores out), built and
               measured: arena, Flash, measured SRAM (arena + data + bss + stack) of the model build
               and of the listen build (front end state, FFT buffers and feature frames included), the
               Cortex-M7 instruction counts; ``DIR/c/``. The SRAM limit applies to the listen build.
3. ``mcu``     every held-out clip through the Cortex-M4 model build under QEMU (``mps2-an386``), its
               features from the Python front end (bit-exact with the C one and with TFLite Micro's
               micro_speech preprocessor); its int8 scores against the reference runtime's (bit for
               bit), its labels against the float model's and the int8 reference's, the confusion
               matrix. Then every clip (or the first ``listen_clips``) as a 16 kHz WAV file of its own length
               (resampled; the C centres it in the window, as training does) through the listen build under QEMU: WAV -> C front end ->
               model -> label, its scores against the reference runtime's.
4. ``report``  ``DIR/report/index.html``: the figures, spectrograms (features) of a few clips, the
               confusion matrix and the memory budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import McuforgeError
from ..report.results import RESULTS_FOLDER, load_stage
from ..stages import Run, Stage
from ..targets import get_board
from .kws import TFLITE_NAME, KwsSettings, float_predictions, load_kws_splits, train_kws

STAGES = ("train", "compile", "mcu", "report")
EXAMPLE_CLIPS = 4


@dataclass(frozen=True)
class KwsDemoSettings:
    """What the KWS demo does; the defaults are the built-in job."""

    run_dir: Path = Path("mcuforge-demo-kws")
    target: str = "stm32f412"
    sram_bytes: int = 64 * 1024
    kws: KwsSettings = KwsSettings()
    listen_clips: int | None = None  # WAVs through the C front end under QEMU (None: every clip)


class _Context:
    """The settings plus what stages share in one process (the loaded data, the trained net)."""

    def __init__(self, settings: KwsDemoSettings):
        self.settings = settings
        self._splits = None
        self.net = None

    def splits(self):
        """(train, test) features, loaded once."""
        if self._splits is None:
            self._splits = load_kws_splits(self.settings.kws)
        return self._splits


def _tflite(settings: KwsDemoSettings) -> Path:
    return settings.run_dir / TFLITE_NAME


def _graph(settings: KwsDemoSettings):
    from ..frontends.tflite import read_tflite

    path = _tflite(settings)
    if not path.exists():
        raise McuforgeError(f"{path} is missing: rerun the train stage (delete {settings.run_dir / RESULTS_FOLDER})")
    return read_tflite(path)


def stage_train(context: _Context, log: Callable[[str], None]) -> dict:
    """Train, quantise and score on the held-out speaker; keep the deployed .tflite in DIR."""
    import shutil

    settings = context.settings
    train_dir = settings.run_dir / "train"
    resume = (train_dir / "checkpoint.pt").exists()
    net, graph, result = train_kws(settings.kws, train_dir, resume=resume, splits=context.splits())
    context.net = net
    shutil.copyfile(result.tflite, _tflite(settings))
    log(f"trained {result.spec}: held-out {', '.join(result.test_speakers)} ({result.test_clips} clips): "
        f"float {result.float_accuracy:.2%}, int8 {result.int8_accuracy:.2%}")
    return {**result.to_dict(), "tflite": str(_tflite(settings)), "task": "kws"}


def stage_compile(context: _Context, log: Callable[[str], None]) -> dict:
    """The Cortex-M4 C project of the int8 model, built and measured (SRAM limit checked)."""
    import shutil

    from ..analysis.profile import profile_graph
    from ..audio.emit import frontend_sources
    from ..codegen.project import compile_model
    from ..errors import DoesNotFitError
    from .kws_model import kws_info

    settings = context.settings
    graph = _graph(settings)
    info = kws_info(graph, source=str(_tflite(settings)))
    core = get_board(settings.target).core
    out_dir = settings.run_dir / "c"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    report = compile_model(graph, out_dir, core, settings.sram_bytes, source=str(_tflite(settings)),
                           frontend=frontend_sources(info.frontend, info.window_samples), labels=info.labels)
    frontend = report.get("frontend", {})
    listen_sram = frontend.get("listen_measured_sram_bytes", 0)
    log(f"compiled for {core}: arena {report['arena_bytes']:,} B, measured SRAM {report['measured_sram_bytes']:,} B "
        f"(with the {info.frontend} front end: {listen_sram:,} B), Flash {report['flash_bytes']:,} B "
        f"(with the front end: {frontend.get('listen_flash_bytes', 0):,} B)")
    if listen_sram > settings.sram_bytes:
        raise DoesNotFitError("the KWS listen build (model + front end, measured SRAM)", listen_sram,
                              settings.sram_bytes)
    blocks = [(b.name, b.peak_activation_bytes) for b in profile_graph(graph).blocks]
    return {**{k: v for k, v in report.items() if not isinstance(v, dict)}, "core": core,
            "clock_hz": get_board(settings.target).clock_hz, "blocks_layer": blocks,
            "sram_limit_bytes": settings.sram_bytes, "frontend_in_c": True,
            "frontend": {k: v for k, v in frontend.items() if not isinstance(v, dict)}}


def stage_mcu(context: _Context, log: Callable[[str], None]) -> dict:
    """Every held-out clip through the front end and the Cortex-M4 build under QEMU (module doc)."""
    from ..audio import frontend_by_name
    from ..codegen.build import build
    from ..codegen.qemu import run_qemu
    from ..codegen.targets import get_core
    from ..train.run import load_trained_model
    from .kws_model import classify_pcm, features_to_model_input, kws_info

    settings = context.settings
    graph = _graph(settings)
    info = kws_info(graph, source=str(_tflite(settings)))
    _, test = context.splits()
    pcm = test.window_pcm()
    features = frontend_by_name(info.frontend).features_batch(pcm)
    x = features_to_model_input(graph, features)
    reference = classify_pcm(graph, pcm, info)
    net = context.net or load_trained_model(settings.run_dir / "train" / "model.pt")[0]
    float_pred = float_predictions(net, test)
    core = get_core(get_board(settings.target).core)
    elf = build(settings.run_dir / "c", core.name)
    started = time.perf_counter()
    run = run_qemu(elf, core, np.ascontiguousarray(x).tobytes(), reference.shape[1], len(x), timeout_s=1800)
    mcu = np.frombuffer(run.outputs, dtype=np.int8).reshape(reference.shape)
    labels = test.labels
    mcu_pred, int8_pred = mcu.argmax(1), reference.argmax(1)
    identical = int((mcu == reference).all(axis=1).sum())
    classes = len(test.class_names)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (labels, mcu_pred), 1)
    picks = [int(np.flatnonzero(labels == digit)[0]) for digit in range(min(EXAMPLE_CLIPS, classes))
             if np.any(labels == digit)]
    result = {
        "clips": len(x), "speakers": test.metadata.get("speakers", []), "qemu_machine": core.qemu_machine,
        "float_accuracy": float(np.mean(float_pred == labels)), "int8_accuracy": float(np.mean(int8_pred == labels)),
        "mcu_accuracy": float(np.mean(mcu_pred == labels)), "bit_identical_scores": identical,
        "float_int8_agree": int(np.sum(float_pred == int8_pred)), "int8_mcu_agree": int(np.sum(int8_pred == mcu_pred)),
        "float_mcu_agree": int(np.sum(float_pred == mcu_pred)),
        "all_three_agree": int(np.sum((float_pred == int8_pred) & (int8_pred == mcu_pred))),
        "confusion": confusion.tolist(), "class_names": list(test.class_names),
        "examples": [{"file": test.metadata["files"][i], "label": test.class_names[labels[i]],
                      "predicted": test.class_names[mcu_pred[i]], "features": features[i].tolist()}
                     for i in picks],
        "stack_high_water_bytes": run.stack_high_water_bytes, "seconds": time.perf_counter() - started,
    }
    log(f"MCU (QEMU {core.qemu_machine}): {result['mcu_accuracy']:.2%} on {len(x)} clips; scores bit-identical "
        f"to the reference runtime on {identical}/{len(x)}; float/int8/MCU labels agree on "
        f"{result['all_three_agree']}/{len(x)}")
    if identical != len(x):
        raise McuforgeError(f"the Cortex-M build disagrees with the reference runtime on {len(x) - identical} "
                            f"of {len(x)} clips")
    # the recordings at their own length: the C centres each in the window as training did
    clips = list(test.clips[:settings.listen_clips])
    result["listen"] = _listen_on_mcu(settings, core, clips, reference, labels, info, log)
    return result


def _listen_on_mcu(settings: KwsDemoSettings, core, pcm: list[np.ndarray], reference: np.ndarray,
                   labels: np.ndarray, info, log: Callable[[str], None]) -> dict:
    """WAV files of the clips (16 kHz, each its own length) through the listen build (C front end
    + model, which centres them in the window) under QEMU, one run each."""
    from ..codegen.build import build
    from ..codegen.listen import pcm_wav_bytes, run_qemu_listen

    elf = build(settings.run_dir / "c", f"listen-{core.name}")
    started = time.perf_counter()
    same, correct = 0, 0
    for index, clip in enumerate(pcm):
        run = run_qemu_listen(elf, core, pcm_wav_bytes(clip, info.sample_rate), 0)
        same += int(tuple(int(v) for v in reference[index]) == run.scores)
        correct += int(run.label == info.labels[labels[index]])
    count = len(pcm)
    log(f"MCU listen build (WAV -> C front end -> model, QEMU): {correct}/{count} clips right, scores "
        f"identical to the reference runtime on {same}/{count}")
    if same != count:
        raise McuforgeError(f"the listen build disagrees with the reference runtime on {count - same} of {count} WAVs")
    return {"clips": count, "correct": correct, "identical_scores": same,
            "seconds": time.perf_counter() - started}


def stage_report(context: _Context, log: Callable[[str], None]) -> dict:
    """Render the KWS report from the saved results."""
    from ..report.kws_html import render_kws_report

    path = render_kws_report(context.settings.run_dir)
    log(f"report: {path}")
    return {"path": str(path)}


STAGE_FUNCTIONS = {"train": stage_train, "compile": stage_compile, "mcu": stage_mcu, "report": stage_report}


def run_kws_demo(settings: KwsDemoSettings, log: Callable[[str], None] = print) -> Path:
    """Run every unfinished stage in order (module doc); returns the report's path."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    run = Run(settings.run_dir, results_folder=RESULTS_FOLDER, timed=True, log=log)
    stages = [Stage(name, partial(STAGE_FUNCTIONS[name], log=log), always_runs=name == "report")
              for name in STAGES]
    run.run_stages(stages, _Context(settings), progress_label="demo --task kws")
    return settings.run_dir / "report" / "index.html"


def is_kws_run(run_dir: str | Path) -> bool:
    """Whether a run folder holds a KWS demo (its train result says so)."""
    saved = load_stage(run_dir, "train")
    return bool(saved and saved.get("task") == "kws")


__all__ = ["KwsDemoSettings", "STAGES", "is_kws_run", "run_kws_demo", "replace"]
