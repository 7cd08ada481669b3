"""micro_speech end to end in C: the generated project of micro_speech_quantized.tflite with the
micro-speech front end takes a WAV and prints the label; its int8 scores equal TFLite Micro's (the pip
interpreter running audio_preprocessor_int8.tflite 49 times, then the classifier) and our reference
runtime's, and its features equal the oracle's. Host build by default; Cortex-M4 and M7 under QEMU
(slow)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from audio_support import CLASSIFIER, PREPROCESSOR, oracle_features, oracle_scores
from conftest import one_error_line, require_reference_file
from test_audio_c import edge_clips

from mcuforge.audio import frontend_by_name, micro_speech
from mcuforge.audio.clips import fit_clip, fit_to_window
from mcuforge.audio.emit import frontend_sources
from mcuforge.audio.wav import read_wav
from mcuforge.cli import main
from mcuforge.codegen.build import build
from mcuforge.codegen.listen import count_listen, run_qemu_listen
from mcuforge.codegen.project import compile_model
from mcuforge.codegen.targets import TARGETS
from mcuforge.errors import McuforgeError
from mcuforge.frontends.load import load_graph
from mcuforge.runtime.reference import Interpreter

LABELS = ("silence", "unknown", "yes", "no")
CLIPS = {"yes_1000ms.wav": "yes", "no_1000ms.wav": "no", "silence_1000ms.wav": None,
         "noise_1000ms.wav": None}


@pytest.fixture(scope="module")
def expected():
    """Per WAV: TFLM's features and scores, and the label TFLM's scores give."""
    preprocessor, classifier = require_reference_file(PREPROCESSOR), require_reference_file(CLASSIFIER)
    table = {}
    for wav in CLIPS:
        pcm = read_wav(require_reference_file(f"models/tflite_micro/{wav}"), 16000)[0]
        features = oracle_features(preprocessor, pcm)[:49]
        scores = oracle_scores(classifier, features)
        table[wav] = (features, scores, LABELS[int(np.argmax(scores))])
    return table


@pytest.fixture(scope="module")
def host_project(tmp_path_factory):
    return _compile(tmp_path_factory, "host")


def _compile(tmp_path_factory, target: str):
    graph = load_graph(str(require_reference_file(CLASSIFIER)))
    out = tmp_path_factory.mktemp(f"micro_speech_{target}")
    report = compile_model(graph, out, target, frontend=frontend_sources("micro-speech"), labels=LABELS)
    return out, report


def test_tflm_labels_and_our_reference_runtime(expected):
    graph = load_graph(str(require_reference_file(CLASSIFIER)))
    for wav, (features, scores, label) in expected.items():
        if CLIPS[wav] is not None:
            assert label == CLIPS[wav]
        pcm = read_wav(require_reference_file(f"models/tflite_micro/{wav}"), 16000)[0]
        ours = micro_speech.features(fit_clip(pcm, 49))
        assert np.array_equal(ours, features)
        runtime = Interpreter(graph).invoke([ours.reshape(1, -1)])[0].reshape(-1)
        assert np.array_equal(runtime, scores), wav


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_host_listen_runner(tmp_path_factory, host_project, expected):
    out, report = host_project
    assert report["frontend"]["name"] == "micro-speech" and report["frontend"]["frames"] == 49
    app = out / "build" / "listen-host" / "app"
    for wav, (features, scores, label) in expected.items():
        path = require_reference_file(f"models/tflite_micro/{wav}")
        line = subprocess.run([str(app), str(path)], capture_output=True, text=True, check=True,
                              timeout=60).stdout.strip()
        assert line == f"label={label} scores={','.join(str(int(s)) for s in scores)}", wav
    # Streaming: one inference per hop once 49 frames are in; the first is the clip behind 10 ms of
    # silence (mf_frontend_process keeps 160 samples of history).
    yes = require_reference_file("models/tflite_micro/yes_1000ms.wav")
    lines = subprocess.run([str(app), str(yes), "stream"], capture_output=True, text=True, check=True,
                           timeout=60).stdout.split("\n")
    assert lines[0].startswith("hop=49 ") and lines[1].startswith("hop=50 ")
    pcm = read_wav(yes, 16000)[0]
    padded = np.concatenate([np.zeros(160, dtype=np.int16), pcm])
    first = oracle_scores(require_reference_file(CLASSIFIER), micro_speech.features(padded)[:49])
    assert lines[0].split()[1] == f"scores={','.join(str(int(s)) for s in first)}"
    assert "heard=yes" in lines[1]
    # A short clip is zero-padded to the 49 frames, as fit_clip does; a bad WAV is one line, exit 2.
    short = tmp_path_factory.mktemp("wavs") / "short.wav"
    _write_wav(short, pcm[:9000], 16000)
    line = subprocess.run([str(app), str(short)], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()
    padded_scores = oracle_scores(require_reference_file(CLASSIFIER),
                                  micro_speech.features(fit_clip(pcm[:9000], 49)))
    assert line.endswith(f"scores={','.join(str(int(s)) for s in padded_scores)}")
    _write_wav(short, pcm, 8000)
    refused = subprocess.run([str(app), str(short)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "not 16-bit mono PCM at 16000 Hz" in refused.stderr


def _write_wav(path, pcm: np.ndarray, rate: int) -> None:
    import wave

    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm.astype("<i2").tobytes())


def test_a_model_the_front_end_cannot_feed_is_refused(tmp_path):
    graph = load_graph(str(require_reference_file(CLASSIFIER)))
    with pytest.raises(McuforgeError, match="4 scores but 2 labels"):
        compile_model(graph, tmp_path / "p", "host", measure=False,
                      frontend=frontend_sources("micro-speech"), labels=("a", "b"))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m7"])
def test_qemu_listen_runner(tmp_path_factory, expected, target):
    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")
    out, report = _compile(tmp_path_factory, target)
    elf = out / "build" / f"listen-{target}" / "app.elf"
    for wav, (features, scores, label) in expected.items():
        run = run_qemu_listen(elf, TARGETS[target],
                              require_reference_file(f"models/tflite_micro/{wav}").read_bytes(), 1960)
        assert run.label == label and run.scores == tuple(int(s) for s in scores), wav
        assert np.array_equal(np.frombuffer(run.features, dtype=np.int8).reshape(49, 40), features)
    frontend = report["frontend"]
    assert frontend["frontend_sram_bytes"] > 0 and frontend["frontend_flash_bytes"] > 0
    assert frontend["listen_measured_sram_bytes"] > report["arena_bytes"] + frontend["frontend_sram_bytes"]


def test_compile_cli_with_a_front_end(tmp_path, capsys):
    model = str(require_reference_file(CLASSIFIER))
    out = tmp_path / "ms"
    assert main(["compile", model, "-o", str(out), "--core", "host", "--frontend", "micro-speech",
                 "--labels", ",".join(LABELS)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["frontend"]["name"] == "micro-speech" and (out / "build/listen-host/app").exists()
    assert 'mcuforge_labels[MCUFORGE_LABEL_COUNT] = {\n    "silence",' in (out / "frontend/mf_listen.c").read_text()
    capsys.readouterr()
    assert main(["compile", model, "-o", str(tmp_path / "x"), "--labels", "a,b"]) == 2
    assert "give --frontend too" in one_error_line(capsys)


def test_fit_clip():
    """One clip rule (centred in the 1 s window, `data.audio_clips` uses the same functions)."""
    from mcuforge.data.audio_clips import fit_to_window as data_fit_to_window

    pcm = (np.arange(1, 20001) % 1000).astype(np.int16)
    long = fit_clip(pcm, 49)  # 20,000 samples: the centred second is 2,000 .. 17,999, its frames 15,840
    assert long.shape == (15840,) and np.array_equal(long, pcm[2000:2000 + 15840])
    assert np.array_equal(fit_clip(pcm[:16001], 49), pcm[1:15841])
    short = fit_clip(pcm[:100], 2)  # centred in 16,000: starts at 7,950, after the 800 samples 2 frames read
    assert short.shape == (800,) and not short.any()
    short = fit_clip(pcm[:100], 2, clip_window=600)
    assert np.array_equal(short[250:350], pcm[:100]) and not short[:250].any() and not short[350:].any()
    assert fit_clip(np.zeros((3, 500), dtype=np.int16), 49).shape == (3, 15840)
    assert data_fit_to_window is fit_to_window
    assert np.array_equal(fit_clip(pcm[:9600], 49), fit_to_window(pcm[:9600])[:15840])


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
@pytest.mark.parametrize("name, seconds", [("yes_30ms.wav", None), ("no_1000ms.wav", 0.6),
                                           ("no_1000ms.wav", 1.3)])
def test_c_listen_centres_clips_as_mcuforge_listen(tmp_path, host_project, capsys, name, seconds):
    """A short clip (30 ms of "yes", 0.6 s of "no") and a long one (1.3 s: "no" with noise around it) give the C
    listen build (host) exactly the int8 scores of `mcuforge listen`: both centre the clip."""
    out, _ = host_project
    pcm = read_wav(require_reference_file(f"models/tflite_micro/{name}"), 16000)[0]
    if seconds is not None and seconds < 1:
        pcm = pcm[2000:2000 + int(seconds * 16000)]
    elif seconds is not None:
        noise = read_wav(require_reference_file("models/tflite_micro/noise_1000ms.wav"), 16000)[0]
        pcm = np.concatenate([noise[:2400], pcm, noise[:2400]])
        assert len(pcm) == int(seconds * 16000)
    wav = tmp_path / "clip.wav"
    _write_wav(wav, pcm, 16000)
    line = subprocess.run([str(out / "build/listen-host/app"), str(wav)], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()
    capsys.readouterr()
    assert main(["listen", str(require_reference_file(CLASSIFIER)), str(wav), "--frontend", "micro-speech",
                 "--json"]) == 0
    heard = json.loads(capsys.readouterr().out)
    assert line == f"label={heard['label']} scores={','.join(map(str, heard['scores']))}"
    # not the old rule (cut or padded at the end): the centring matters for these clips
    ended = np.zeros(15840, dtype=np.int16)
    ended[:min(len(pcm), 15840)] = pcm[:15840]
    graph = load_graph(str(require_reference_file(CLASSIFIER)))
    at_end = Interpreter(graph).invoke([micro_speech.features(ended).reshape(1, -1)])[0].reshape(-1)
    assert [int(s) for s in at_end] != heard["scores"]


@pytest.mark.slow
def test_qemu_mfcc_keyword_model(tmp_path):
    """The MLPerf Tiny KWS DS-CNN ([1, 49, 10, 1] int8) with the MFCC front end, end to end on
    Cortex-M4 under QEMU: the features are the numpy MFCC's, the scores our reference runtime's."""
    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")
    from mcuforge.audio import mfcc

    graph = load_graph(str(require_reference_file("models/mlperf_tiny/kws_ref_model.tflite")))
    out = tmp_path / "kws"
    report = compile_model(graph, out, "cortex-m4", frontend=frontend_sources("mfcc"))
    assert report["frontend"]["frames"] == 49
    elf = out / "build" / "listen-cortex-m4" / "app.elf"
    for wav in ("yes_1000ms.wav", "no_1000ms.wav"):
        path = require_reference_file(f"models/tflite_micro/{wav}")
        run = run_qemu_listen(elf, TARGETS["cortex-m4"], path.read_bytes(), 490)
        features = mfcc.features(fit_clip(read_wav(path, 16000)[0], 49))
        assert np.array_equal(np.frombuffer(run.features, dtype=np.int8).reshape(49, 10), features)
        scores = Interpreter(graph).invoke([features.reshape(1, 49, 10, 1)])[0].reshape(-1)
        assert run.scores == tuple(int(s) for s in scores), wav


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_streaming_c_equals_the_numpy_recognizer(tmp_path_factory, host_project):
    """Two seconds ("yes" then "no") hop by hop: every inference's scores and the recognizer's
    label in C equal `mcuforge.audio.stream.StreamingRecognizer` with our runtime."""
    from mcuforge.audio.stream import StreamingRecognizer

    out, _ = host_project
    graph = load_graph(str(require_reference_file(CLASSIFIER)))
    pcm = np.concatenate([read_wav(require_reference_file(f"models/tflite_micro/{wav}"), 16000)[0]
                          for wav in ("yes_1000ms.wav", "no_1000ms.wav")])
    wav = tmp_path_factory.mktemp("stream") / "stream.wav"
    _write_wav(wav, pcm, 16000)
    lines = subprocess.run([str(out / "build/listen-host/app"), str(wav), "stream"], capture_output=True,
                           text=True, check=True, timeout=120).stdout.strip().split("\n")
    interpreter = Interpreter(graph)
    recognizer = StreamingRecognizer(micro_speech,
                                     lambda frames: interpreter.invoke([frames.reshape(1, -1)])[0])
    expected = []
    for start in range(0, len(pcm) - 320 + 1, 320):
        event = recognizer.push(pcm[start:start + 320])
        if event is not None:
            heard = LABELS[event.heard] if event.heard is not None else "-"
            expected.append(f"hop={event.hop} scores={','.join(map(str, event.scores))} "
                            f"heard={heard}{' new' if event.new else ''}")
    assert lines == expected
    heard_new = [line.split("heard=")[1].split()[0] for line in lines if line.endswith(" new")]
    assert "yes" in heard_new and "no" in heard_new


@pytest.mark.slow
@pytest.mark.parametrize("name, model, labels", [
    ("micro-speech", CLASSIFIER, LABELS), ("mfcc", "models/mlperf_tiny/kws_ref_model.tflite", None)])
def test_cortex_m_front_end_on_extreme_clips(tmp_path, name, model, labels):
    """The front end's Cortex-M code (the DSP path: SIMD FFT and window, the SSUB16/SEL running
    maximum, the VSQRT-seeded square root) equals numpy on the extreme clips (full-scale noise, all
    -32768, where TFLM's running maximum wraps, zeros, a loud sine): Cortex-M7 in unicorn,
    Cortex-M4 under QEMU."""
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    graph = load_graph(str(require_reference_file(model)))
    out = tmp_path / name
    report = compile_model(graph, out, "cortex-m7", measure=False, frontend=frontend_sources(name),
                           labels=labels)
    elves = {target: build(out, f"listen-{target}") for target in ("cortex-m4", "cortex-m7")}
    module = frontend_by_name(name)
    for label, pcm in edge_clips().items():
        expected = module.features(fit_clip(pcm, report["frontend"]["frames"])).reshape(-1)
        m7 = count_listen(elves["cortex-m7"], TARGETS["cortex-m7"], pcm, report["output_bytes"],
                          expected.size)
        assert np.array_equal(np.frombuffer(m7.features, dtype=np.int8), expected), (name, label)
        _write_wav(tmp_path / "clip.wav", pcm, 16000)
        m4 = run_qemu_listen(elves["cortex-m4"], TARGETS["cortex-m4"],
                             (tmp_path / "clip.wav").read_bytes(), expected.size)
        assert np.array_equal(np.frombuffer(m4.features, dtype=np.int8), expected), (name, label)
        assert m4.scores == m7.scores, (name, label)
