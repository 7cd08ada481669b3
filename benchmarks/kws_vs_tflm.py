"""Keyword spotting side by side: our C (audio front end + model) against TensorFlow Lite Micro
running the preprocessor model plus the classifier, per second of audio.

For each model (TFLite Micro's micro_speech_quantized.tflite, and our trained KWS .tflite when one
is given or the KWS demo left one): ``compile_model`` for the Cortex-M7 with the model's front end
(`codegen.listen`: PCM in, scores out), built and measured — the listen build's SRAM (arena + .data +
.bss + painted stack, front end state, FFT buffers and the feature frames included), its Flash, and
the instructions of one ``mcuforge_listen`` call on 1 s of audio (49 front-end frames and one
inference) in unicorn. TFLite Micro's side: the tflite-micro pip interpreter's arena for
audio_preprocessor_int8.tflite and for the classifier (two interpreters, the preprocessor called once
per 20 ms hop; `rivals.tflm.measure_tflm_arena`). TFLite Micro's instruction counts are not printed:
the shared rivals kit (../shared/rivals/tflm_cmsis_nn) leaves out TFLM's signal library, so it cannot
run the preprocessor. 1 kB = 1024 B.

Run: ``.venv/bin/python benchmarks/kws_vs_tflm.py [--model runs/kws/model_int8.tflite] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from mcuforge.audio.emit import frontend_sources
from mcuforge.codegen.project import compile_model
from mcuforge.frontends.tflite import read_tflite
from mcuforge.pipeline.kws_model import kws_info
from mcuforge.reference import reference_dir
from mcuforge.rivals.tflm import measure_tflm_arena

PREPROCESSOR = "models/tflite_micro/audio_preprocessor_int8.tflite"
MICRO_SPEECH = "models/tflite_micro/micro_speech_quantized.tflite"
DEMO_MODEL = Path("mcuforge-demo-kws/model_int8.tflite")


def measure(path: Path, frontend: str | None) -> dict:
    """Our listen build's figures and TFLite Micro's arenas for one KWS model."""
    graph = read_tflite(path)
    info = kws_info(graph, frontend, str(path))
    with tempfile.TemporaryDirectory(prefix="kws-vs-tflm-") as tmp:
        report = compile_model(graph, Path(tmp) / "c", "cortex-m7", source=str(path),
                               frontend=frontend_sources(info.frontend), labels=info.labels)
    ours = report["frontend"]
    preprocessor = measure_tflm_arena(reference_dir() / PREPROCESSOR)
    classifier = measure_tflm_arena(path)
    return {
        "model": path.name, "frontend": info.frontend,
        "ours_sram_bytes": ours["listen_measured_sram_bytes"], "ours_flash_bytes": ours["listen_flash_bytes"],
        "ours_instructions_per_second": ours["instructions_per_clip"],
        "ours_frontend_instructions_per_second": ours["frontend_instructions_per_clip"],
        "tflm_preprocessor_arena_bytes": preprocessor.total, "tflm_classifier_arena_bytes": classifier.total,
        "tflm_arena_bytes": preprocessor.total + classifier.total,
    }


def main() -> None:
    """Print the table (module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="our trained KWS .tflite (default: the KWS demo's, if any)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = [measure(reference_dir() / MICRO_SPEECH, "micro-speech")]
    ours = args.model or (DEMO_MODEL if DEMO_MODEL.is_file() else None)
    if ours is not None:
        rows.append(measure(ours, None))
    print(f"{'model':34} {'front end':12} {'our SRAM':>10} {'our Flash':>10} {'our instr/s':>12} "
          f"{'(front end)':>12} {'TFLM arena':>11} {'(pre + cls)':>16}")
    for row in rows:
        print(f"{row['model']:34} {row['frontend']:12} {row['ours_sram_bytes']:>10,} {row['ours_flash_bytes']:>10,} "
              f"{row['ours_instructions_per_second']:>12,} {row['ours_frontend_instructions_per_second']:>12,} "
              f"{row['tflm_arena_bytes']:>11,} {row['tflm_preprocessor_arena_bytes']:>7,} + "
              f"{row['tflm_classifier_arena_bytes']:>6,}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
