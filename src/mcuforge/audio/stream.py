"""Streaming keyword spotting in numpy, step for step what the generated C's ``mcuforge_stream_push``
does (`mcuforge.codegen.listen`): 20 ms hops into the front end (each window = the previous 160
samples and the new 320, zeros before the stream starts), a ring of the last ``frames`` feature frames,
an inference every ``every`` hops once the ring is full, and a recognizer in the manner of
micro_speech's RecognizeCommands, simplified: the mean of the last ``average`` score vectors
(int8 + 128, integer division) and a command "heard" when its mean reaches ``threshold`` and differs
from the last one heard (no time-based suppression)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from ..errors import McuforgeError


@dataclass(frozen=True)
class StreamEvent:
    """One inference of the stream: after hop ``hop`` (1-based), the scores, the label heard last
    (None before any) and whether this inference heard it anew."""

    hop: int
    scores: tuple[int, ...]
    heard: int | None
    new: bool


@dataclass
class StreamingRecognizer:
    """Feed `push` 320-sample hops; ``classify`` maps int8 [frames, features] to int8 scores."""

    frontend: ModuleType
    classify: Callable[[np.ndarray], np.ndarray]
    frames: int = 49
    every: int = 1
    average: int = 3
    threshold: int = 200
    hops: int = 0
    heard: int | None = None
    _history: list = field(default_factory=list)
    _ring: np.ndarray | None = None
    _window_tail: np.ndarray | None = None
    _noise: np.ndarray | None = None

    def __post_init__(self) -> None:
        module = self.frontend
        self._ring = np.zeros((self.frames, module.NUM_CHANNELS), dtype=np.int8)
        self._window_tail = np.zeros(module.WINDOW_SAMPLES - module.HOP_SAMPLES, dtype=np.int16)
        self._noise = np.zeros(module.NUM_CHANNELS, dtype=np.uint32)

    def _features(self, window: np.ndarray) -> np.ndarray:
        if hasattr(self.frontend, "MicroSpeechState"):
            out, self._noise = self.frontend.process_windows(window, self._noise)
            return out
        return self.frontend.process_windows(window)

    def push(self, hop: np.ndarray) -> StreamEvent | None:
        """One hop of int16 samples; returns the inference it triggered, if any."""
        module = self.frontend
        hop = np.asarray(hop)
        if hop.shape != (module.HOP_SAMPLES,) or hop.dtype != np.int16:
            raise McuforgeError(f"a stream hop is {module.HOP_SAMPLES} int16 samples, got {hop.dtype} "
                                f"of shape {hop.shape}")
        window = np.concatenate([self._window_tail, hop])
        self._window_tail = window[module.HOP_SAMPLES:].copy()
        self._ring = np.concatenate([self._ring[1:], self._features(window)[None]])
        self.hops += 1
        if self.hops < self.frames or (self.hops - self.frames) % self.every:
            return None
        scores = np.asarray(self.classify(self._ring)).reshape(-1).astype(np.int64)
        self._history = (self._history + [scores + 128])[-self.average:]
        mean = np.sum(self._history, axis=0) // len(self._history)
        best = int(np.argmax(mean))
        new = bool(mean[best] >= self.threshold and best != self.heard)
        if new:
            self.heard = best
        return StreamEvent(self.hops, tuple(int(s) for s in scores), self.heard, new)
