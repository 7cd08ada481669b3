"""Keyword spotting side by side: our generated C (front end + model) against TensorFlow Lite Micro
running its audio preprocessor model plus the same classifier, on Cortex-M7.

Run: ``.venv/bin/python benchmarks/kws_vs_tflm.py`` (micro_speech_quantized.tflite with the
micro-speech front end, always), ``--model X.tflite --frontend micro-speech|mfcc`` (repeatable; one
``--frontend`` applies to every ``--model``) for more models, ``--json out.json`` to keep the figures.

Ours: ``compile_model(..., "cortex-m7", frontend=...)``, the listen build (``mcuforge_listen``: PCM
in, scores out). SRAM = arena + .data + .bss + painted-stack high-water of the listen ELF under QEMU
(front-end state and scratch and the feature frames are in its .bss); Flash = its .text + .data
(code, weights, front-end tables, runner). Instructions: ``mcuforge_listen`` on one clip counted in
unicorn (`codegen.listen.count_listen`), i.e. 49 front-end frames + 1 inference per second of audio
(clip mode, not the streaming rate of an inference every hop), the front end's functions apart.

TFLite Micro: arena of the preprocessor and of the classifier from the tflite-micro pip interpreter
(`rivals.tflm.measure_tflm_arena`, head + tail), the classifier built with TFLite Micro + CMSIS-NN by
the shared kit and counted in unicorn the same way (`rivals.tflm_kit`: instructions inside one
``Invoke()``, Flash, SRAM = .bss with arena + .data + stack). The kit has no signal-library kernels,
so the preprocessor does not link (the output says so, with the linker's line) and TFLite Micro's
instructions are the classifier's alone: the ratios compare like with like (our model share against
their classifier), and our front end's count stands beside it without a TFLM counterpart. TFLM's
SRAM = the kit's classifier SRAM + the preprocessor's arena (its code, stack and a frame buffer
outside the arena not counted); Flash = the classifier build + the preprocessor .tflite (without the
signal kernels' code). Every shared WAV (four 1 s, two 30 ms; clips fitted to the model's window as
the C does) goes through both: our C's features and int8 scores must equal TFLite Micro's (the
pip interpreter: preprocessor once per 20 ms hop, state carried, then the classifier; for an mfcc
model the features are compared with our numpy front end, TFLM having no MFCC model), and the kit's
scores on yes_1000ms.wav with both. 1 kB = 1024 B.

Measured 2026-12-06 (arm-none-eabi-gcc 12.2.1, unicorn 2.1.4, tflite-micro pip 0.dev20261023182759),
``benchmarks/kws_vs_tflm.py --model .../mlperf_tiny/kws_ref_model.tflite --frontend mfcc`` (2 min on 2 shared cores;
kws_ref_model was trained on other MFCCs, so its scores only check bit-exactness, not labels):

    model (front end)                      SRAM    Flash  instr/s (clip)  front end/frame  model/inference
    micro_speech_quantized   ours        14,364   28,557       2,543,545           30,984        1,025,350
    (micro-speech)           TFLM        18,476   71,040             n/a      not counted        1,489,435
                             ratio        1.29x    2.49x               -                -            1.45x
    kws_ref_model (mfcc)     ours        15,098   46,761       6,408,010           29,955        4,940,206
                             TFLM        24,264  106,828             n/a      not counted        7,643,021
                             ratio        1.61x    2.28x               -                -            1.55x

Features and scores equal on all 6 WAVs for both models, and the kit's scores on yes_1000ms.wav too.
TFLM = kit classifier build (micro_speech: SRAM 8,252 B, arena 6,852 B, Flash 62,268 B) + the
preprocessor's arena 10,224 B (pip interpreter) and its 8,772 B .tflite; its instructions are not
countable (no signal kernels in the kit).
The front end per frame on Cortex-M7 was 69,890 instructions (micro-speech, yes_1000ms.wav; MFCC
68,647) before the packed-pair DSP code of `audio/templates/mf_frontend.c.j2`, 30,984 (29,955) after.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mcuforge.atomic import write_json_atomic
from mcuforge.audio import frontend_by_name
from mcuforge.audio.clips import fit_clip
from mcuforge.audio.emit import frontend_sources
from mcuforge.audio.wav import read_wav
from mcuforge.codegen.listen import count_listen
from mcuforge.codegen.project import compile_model
from mcuforge.codegen.targets import TARGETS
from mcuforge.errors import McuforgeError
from mcuforge.frontends.tflite import read_tflite
from mcuforge.frontends.tflite_decode import decode_model, read_model_bytes
from mcuforge.reference import reference_dir
from mcuforge.rivals.tflm import measure_tflm_arena
from mcuforge.rivals.tflm_audio import tflm_features, tflm_scores
from mcuforge.rivals.tflm_kit import count_tflm_cmsis_nn

MICRO_SPEECH = "models/tflite_micro/micro_speech_quantized.tflite"
PREPROCESSOR = "models/tflite_micro/audio_preprocessor_int8.tflite"
MICRO_SPEECH_LABELS = ("silence", "unknown", "yes", "no")
WAVS = ("yes_1000ms.wav", "no_1000ms.wav", "noise_1000ms.wav", "silence_1000ms.wav",
        "yes_30ms.wav", "no_30ms.wav")
COUNTED_WAV = "yes_1000ms.wav"  # the clip whose instructions the table shows (TFLM's input too)
CORE = "cortex-m7"


@dataclass(frozen=True)
class Job:
    """One model of the comparison: its .tflite, its front end and the names of its scores."""

    model: Path
    frontend: str
    labels: tuple[str, ...] | None = None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], type=Path,
                        help="another keyword model (.tflite) to compare; repeatable")
    parser.add_argument("--frontend", action="append", default=[],
                        help="its front end: micro-speech or mfcc (one per --model, or one for all)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--workdir", type=Path, help="keep the builds here (default: a temporary folder)")
    return parser.parse_args(argv)


def jobs_of(args: argparse.Namespace) -> list[Job]:
    """micro_speech first, then each ``--model`` with its ``--frontend``; one-line errors."""
    if args.frontend and not args.model:
        raise McuforgeError("--frontend names the front end of a --model: give --model too")
    if args.model and len(args.frontend) not in (1, len(args.model)):
        raise McuforgeError(f"{len(args.model)} --model but {len(args.frontend)} --frontend: give one "
                            "--frontend for all, or one per --model")
    frontends = args.frontend * len(args.model) if len(args.frontend) == 1 else args.frontend
    jobs = [Job(reference_dir() / MICRO_SPEECH, "micro-speech", MICRO_SPEECH_LABELS)]
    for model, frontend in zip(args.model, frontends):
        frontend_by_name(frontend)  # an unknown name is one line
        if not model.is_file():
            raise McuforgeError(f"--model {model}: no such file")
        if model.suffix != ".tflite":
            raise McuforgeError(f"--model {model}: a .tflite file is needed (TFLite Micro runs it)")
        jobs.append(Job(model, frontend))
    return jobs


def reference_features(frontend: str, pcm: np.ndarray, frames: int) -> np.ndarray:
    """The features our C must produce for ``pcm`` fitted to ``frames``: TFLite Micro's preprocessor
    for micro-speech, our numpy front end (its definition) for mfcc."""
    clip = fit_clip(pcm, frames)
    if frontend == "micro-speech":
        return tflm_features(reference_dir() / PREPROCESSOR, clip)
    return frontend_by_name(frontend).features(clip)


def measure_ours(job: Job, workdir: Path) -> tuple[dict, dict[str, object]]:
    """Compile ``job`` with its front end for Cortex-M7; its report and one unicorn run per WAV."""
    graph = read_tflite(job.model)
    report = compile_model(graph, workdir / job.model.stem, CORE, source=str(job.model),
                           frontend=frontend_sources(job.frontend), labels=job.labels)
    elf = workdir / job.model.stem / "build" / f"listen-{CORE}" / "app.elf"
    rate = frontend_by_name(job.frontend).SAMPLE_RATE
    runs = {}
    for wav in WAVS:
        pcm = read_wav(reference_dir() / "models" / "tflite_micro" / wav, rate)[0]
        runs[wav] = count_listen(elf, TARGETS[CORE], pcm, report["output_bytes"], report["input_bytes"])
    return report, runs


def measure_tflm(job: Job, features: np.ndarray, input_shape: tuple[int, ...], workdir: Path) -> dict:
    """TFLite Micro's arenas (pip interpreter) and the kit's build and count of the classifier on
    ``features``; the preprocessor's kit build is tried and its failure recorded."""
    preprocessor = reference_dir() / PREPROCESSOR
    classifier = measure_tflm_arena(job.model)
    kit = count_tflm_cmsis_nn(job.model, workdir / f"tflm-{job.model.stem}",
                              [features.reshape(input_shape).astype(np.int8)], CORE)
    figures = {"classifier_arena_bytes": classifier.total, "kit_instructions": kit.instructions,
               "kit_sram_bytes": kit.sram_bytes, "kit_flash_bytes": kit.flash_bytes,
               "kit_arena_bytes": kit.arena_bytes,
               "kit_scores": [int(v) for v in np.asarray(kit.outputs[0]).reshape(-1)]}
    if job.frontend != "micro-speech":
        figures.update(preprocessor_arena_bytes=0, preprocessor_model_bytes=0,
                       preprocessor_note="TFLite Micro has no MFCC preprocessor model: classifier only")
        return figures
    figures["preprocessor_arena_bytes"] = measure_tflm_arena(preprocessor).total
    figures["preprocessor_model_bytes"] = preprocessor.stat().st_size
    try:
        counted = count_tflm_cmsis_nn(preprocessor, workdir / "tflm-preprocessor",
                                      [np.zeros((1, 480), dtype=np.int16)], CORE)
        figures["preprocessor_instructions"] = counted.instructions
    except McuforgeError as error:
        figures["preprocessor_instructions"] = None
        custom = sorted({op.custom_code for op in decode_model(read_model_bytes(preprocessor),
                                                               str(preprocessor)).operators
                         if op.custom_code})
        figures["preprocessor_note"] = (f"the kit cannot build the preprocessor: it has no kernels for "
                                        f"its signal ops ({', '.join(custom)}); {error}")
    return figures


def compare(job: Job, report: dict, runs: dict, kit_scores: list[int] | None = None) -> dict:
    """Per WAV: do our C's features and scores equal TFLite Micro's (and the kit's, where counted)?"""
    frames = report["frontend"]["frames"]
    rate = frontend_by_name(job.frontend).SAMPLE_RATE
    checks = {}
    for wav, run in runs.items():
        pcm = read_wav(reference_dir() / "models" / "tflite_micro" / wav, rate)[0]
        features = reference_features(job.frontend, pcm, frames)
        scores = tflm_scores(job.model, features)
        checks[wav] = {
            "features_equal": bool(np.array_equal(np.frombuffer(run.features, np.int8),
                                                  features.reshape(-1))),
            "scores_equal": list(run.scores) == scores.tolist(),
            "scores": list(run.scores), "label_index": run.label_index}
    if kit_scores is not None:
        checks[COUNTED_WAV]["kit_scores_equal"] = kit_scores == checks[COUNTED_WAV]["scores"]
    return checks


def measure(job: Job, workdir: Path) -> dict:
    """Every figure of one model, ours and TFLite Micro's, and the bit-exactness checks."""
    report, runs = measure_ours(job, workdir)
    frames = report["frontend"]["frames"]
    rate = frontend_by_name(job.frontend).SAMPLE_RATE
    counted = runs[COUNTED_WAV]
    pcm = read_wav(reference_dir() / "models" / "tflite_micro" / COUNTED_WAV, rate)[0]
    graph_input = read_tflite(job.model)
    shape = tuple(graph_input.tensors[graph_input.inputs[0]].shape)
    tflm = measure_tflm(job, reference_features(job.frontend, pcm, frames), shape, workdir)
    checks = compare(job, report, runs, tflm["kit_scores"])
    frontend = report["frontend"]
    return {
        "model": job.model.name, "frontend": job.frontend, "frames": frames,
        "ours": {
            "sram_bytes": frontend["listen_measured_sram_bytes"],
            "flash_bytes": frontend["listen_flash_bytes"],
            "frontend_flash_bytes": frontend["frontend_flash_bytes"],
            "frontend_sram_bytes": frontend["frontend_sram_bytes"],
            "instructions_per_second": counted.instructions,
            "frontend_instructions_per_second": counted.frontend_instructions,
            "frontend_instructions_per_frame": round(counted.frontend_instructions / frames),
            "model_instructions": counted.model_instructions,
            "instructions_wav": COUNTED_WAV,
        },
        "tflm": {
            **tflm,
            "sram_bytes": tflm["kit_sram_bytes"] + tflm["preprocessor_arena_bytes"],
            "flash_bytes": tflm["kit_flash_bytes"] + tflm["preprocessor_model_bytes"],
        },
        "checks": checks,
        "bit_exact": all(c["features_equal"] and c["scores_equal"] and c.get("kit_scores_equal", True)
                         for c in checks.values()),
    }


def ratio(theirs: int | None, ours: int) -> str:
    """``theirs / ours`` as ``1.23x`` (> 1: we need less), ``-`` where theirs is unknown."""
    return f"{theirs / ours:.2f}x" if theirs and ours else "-"


def print_table(rows: list[dict]) -> None:
    """The side-by-side table, then the checks and the notes."""
    header = (f"{'model':34} {'front end':12} {'':6} {'SRAM':>9} {'Flash':>9} "
              f"{'instr/s (clip)':>14} {'front end/frame':>15} {'model/inference':>15}")
    print(header)
    print("-" * len(header))
    for row in rows:
        ours, tflm = row["ours"], row["tflm"]
        pre = tflm.get("preprocessor_instructions")
        print(f"{row['model']:34} {row['frontend']:12} {'ours':6} {ours['sram_bytes']:>9,} "
              f"{ours['flash_bytes']:>9,} {ours['instructions_per_second']:>14,} "
              f"{ours['frontend_instructions_per_frame']:>15,} {ours['model_instructions']:>15,}")
        total = f"{tflm['kit_instructions'] + 49 * pre:,}" if pre else "n/a"
        print(f"{'':34} {'':12} {'TFLM':6} {tflm['sram_bytes']:>9,} {tflm['flash_bytes']:>9,} "
              f"{total:>14} {f'{pre:,}' if pre else 'not counted':>15} {tflm['kit_instructions']:>15,}")
        print(f"{'':34} {'':12} {'ratio':6} {ratio(tflm['sram_bytes'], ours['sram_bytes']):>9} "
              f"{ratio(tflm['flash_bytes'], ours['flash_bytes']):>9} {'-':>14} {'-':>15} "
              f"{ratio(tflm['kit_instructions'], ours['model_instructions']):>15}")
    print("\nbit-exact (our C on Cortex-M7 vs TFLite Micro, every shared WAV):")
    for row in rows:
        for wav, check in row["checks"].items():
            kit = f", kit scores equal: {check['kit_scores_equal']}" if "kit_scores_equal" in check else ""
            print(f"  {row['model']:34} {wav:20} features equal: {check['features_equal']}, "
                  f"scores equal: {check['scores_equal']} {check['scores']}{kit}")
    print("\nnotes:")
    for row in rows:
        if "preprocessor_note" in row["tflm"]:
            print(f"  {row['model']}: TFLM instructions are the classifier's only; "
                  f"{row['tflm']['preprocessor_note']}")
    print("  ours: SRAM = arena + .data + .bss + stack of the listen build (front end included), Flash = "
          "its .text + .data; instr/s = mcuforge_listen on one 1 s clip (49 front-end frames + 1 "
          f"inference, clip mode) on {COUNTED_WAV}; model/inference = all but the front end's functions")
    print("  TFLM: SRAM = kit classifier build (.bss with arena + .data + stack) + preprocessor arena "
          "(pip interpreter); Flash = kit classifier build + preprocessor .tflite (no signal-kernel code); "
          "ratios are TFLM / ours (> 1: ours is smaller or faster); bytes, 1 kB = 1024 B")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; 0 when every check is bit-exact, 1 when one is not, 2 on bad input."""
    args = parse_args(argv)
    try:
        jobs = jobs_of(args)
        with tempfile.TemporaryDirectory(prefix="kws-vs-tflm-") as tmp:
            workdir = args.workdir or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            rows = [measure(job, workdir) for job in tqdm(jobs, desc="models", unit="model",
                                                          file=sys.stderr)]
    except McuforgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_table(rows)
    if args.json:
        write_json_atomic(args.json, {"core": CORE, "rows": rows})
    return 0 if all(row["bit_exact"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
