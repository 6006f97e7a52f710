"""Streaming inference: window/hop predictions over audio blocks, and the one loop that shows them.

:class:`StreamingPredictor` takes blocks of any size at any sample rate; every ``hop`` seconds it
predicts the last ``window`` seconds, unless an energy-based voice-activity gate (with hysteresis and
a hang-over, so it does not flicker) says nobody is speaking, smooths the probabilities over time and
reports the compute latency of each hop. :func:`run_stream` feeds a source through it into a view:
``infer --mic`` (matplotlib window or text) and notebook 06's widget all use it.

The stream keeps the audio at the input rate and prepares and predicts each window as
:meth:`Predictor.predict` does, so with the same speaker statistics (``adapt=False``, or a model
without speaker normalisation) a streamed window gives exactly the offline prediction of its samples.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import audio
from ..errors import ConfigError
from .predictor import Predictor

log = logging.getLogger(__name__)

NO_SPEECH = "no speech"


@dataclass(frozen=True)
class StreamSettings:
    """How a stream is cut and smoothed (``infer`` and the widget take these options)."""

    window: float = field(default=3.0, metadata={"help": "seconds of audio per prediction"})
    hop: float = field(default=0.5, metadata={"help": "seconds between predictions"})
    smoothing: float = field(default=0.5, metadata={
        "help": "weight of the newest window in the exponential smoothing (1: no smoothing)"})
    min_seconds: float = field(default=1.0, metadata={"help": "first prediction once this much audio arrived"})

    def validate(self) -> None:
        if self.hop <= 0 or self.window <= 0 or self.hop > self.window:
            raise ConfigError(f"need 0 < hop <= window, got window {self.window} s and hop {self.hop} s")
        if not 0 < self.smoothing <= 1:
            raise ConfigError("smoothing is the weight of the newest window, in (0, 1]")


@dataclass
class VoiceActivityGate:
    """Energy gate with hysteresis: opens above ``on_db``, closes below ``off_db`` after a hang-over.

    Levels are in dB above a noise floor that follows the quietest recent hops (it falls at once
    and rises slowly), with ``min_speech_db`` as an absolute floor for digital silence.
    """

    on_db: float = 12.0
    off_db: float = 6.0
    hangover: int = 2            # hops below ``off_db`` before the gate closes
    min_speech_db: float = -55.0
    floor_rise_db: float = 0.5   # per hop
    floor_db: float = -70.0
    open: bool = False
    _quiet_hops: int = 0

    def update(self, level_db: float) -> bool:
        self.floor_db = min(level_db, self.floor_db + self.floor_rise_db)
        above = level_db - self.floor_db
        loud_enough = level_db > self.min_speech_db
        if not self.open:
            if loud_enough and above >= self.on_db:
                self.open, self._quiet_hops = True, 0
        elif not loud_enough or above < self.off_db:
            self._quiet_hops += 1
            if self._quiet_hops > self.hangover:
                self.open = False
        else:
            self._quiet_hops = 0
        return self.open


@dataclass
class StreamResult:
    """What one hop of a stream produced."""

    time: float                      # seconds since the stream started, at the end of the window
    start: int                       # window start and end, in input samples since the stream started
    end: int
    speech: bool
    level_db: float                  # level of the newest hop, dBFS
    probs: np.ndarray | None         # raw probabilities of this window (None without speech)
    smoothed: np.ndarray | None      # exponentially smoothed probabilities
    label: str                       # smoothed top emotion, or "no speech"
    latency_ms: float                # compute time of this hop
    labels: list[str] = field(default_factory=list)


class StreamingPredictor:
    """Window/hop predictions over a live stream of audio blocks.

    ``feed(block)`` returns the results of the hops completed by that block. The first window is
    predicted once ``settings.min_seconds`` of audio have arrived (shorter than the window at the
    start). Each spoken hop is also heard by the predictor, which updates its running statistics of
    the current speaker when the model uses them (``adapt=False`` keeps them fixed).
    """

    def __init__(self, predictor: Predictor, sample_rate: int, settings: StreamSettings = StreamSettings(),
                 gate: VoiceActivityGate | None = None, adapt: bool = True):
        settings.validate()
        self.predictor, self.settings, self.adapt = predictor, settings, adapt
        self.sample_rate = int(sample_rate)
        self.window = int(round(settings.window * sample_rate))
        self.hop = int(round(settings.hop * sample_rate))
        self.min_samples = int(round(min(settings.min_seconds, settings.window) * sample_rate))
        self.gate = gate or VoiceActivityGate()
        self.buffer = np.zeros(self.window, dtype=np.float32)  # ring buffer of the last window
        self.received = 0   # samples fed so far
        self.next_hop = self.hop
        self.smoothed: np.ndarray | None = None

    @property
    def labels(self) -> list[str]:
        return self.predictor.labels

    @property
    def first_prediction(self) -> int:
        """Samples the stream needs before its first prediction (the first hop at or after ``min_seconds``)."""
        return -(-self.min_samples // self.hop) * self.hop

    def reset(self) -> None:
        self.buffer[:] = 0
        self.received, self.next_hop, self.smoothed = 0, self.hop, None
        self.gate.open = False

    def feed(self, block: np.ndarray) -> list[StreamResult]:
        """Append a block (mono, or ``(frames, channels)``) and return the hops it completed."""
        block = audio.to_mono(np.asarray(block, dtype=np.float32))
        results = []
        while len(block):
            take = min(len(block), self.next_hop - self.received)
            self._append(block[:take])
            block = block[take:]
            if self.received == self.next_hop:
                if self.received >= self.min_samples:
                    results.append(self._hop())
                self.next_hop += self.hop
        return results

    def _append(self, samples: np.ndarray) -> None:
        n = len(samples)
        if n >= self.window:
            self.buffer[:] = samples[-self.window:]
        elif n:
            self.buffer = np.roll(self.buffer, -n)
            self.buffer[-n:] = samples
        self.received += n

    def current_window(self) -> np.ndarray:
        """The last ``window`` samples (fewer at the start of the stream)."""
        return self.buffer[-min(self.window, self.received):].copy()

    def _predict(self, window: np.ndarray, newest: np.ndarray) -> np.ndarray:
        """Probabilities of one spoken window; the speaker statistics hear the newest hop."""
        predictor = self.predictor
        x = predictor.prepare(window, self.sample_rate)
        described = predictor.describe(x)  # computed once, for the statistics and the model
        if self.adapt:
            predictor.hear(predictor.prepare(newest, self.sample_rate), described)
        logits = predictor.forward(x, described).emotion_logits
        return torch.softmax(logits.float(), -1)[0].cpu().numpy()

    def _hop(self) -> StreamResult:
        newest = self.buffer[-self.hop:]
        level = audio.rms_db(newest)
        speech = self.gate.update(level)
        window = self.current_window()
        started = time.perf_counter()
        probs = self._predict(window, newest) if speech else None
        if probs is None:
            self.smoothed = None
        elif self.smoothed is None:
            self.smoothed = probs.copy()
        else:
            weight = self.settings.smoothing
            self.smoothed = weight * probs + (1 - weight) * self.smoothed
        latency = (time.perf_counter() - started) * 1000
        label = self.labels[int(np.argmax(self.smoothed))] if self.smoothed is not None else NO_SPEECH
        return StreamResult(time=self.received / self.sample_rate, start=self.received - len(window),
                            end=self.received, speech=speech, level_db=level, probs=probs,
                            smoothed=None if self.smoothed is None else self.smoothed.copy(),
                            label=label, latency_ms=latency, labels=self.labels)

    def process(self, blocks) -> list[StreamResult]:
        """Feed every block of an iterable; return all results (for files and tests)."""
        results = []
        for block in blocks:
            results.extend(self.feed(block))
        return results


def run_stream(stream: StreamingPredictor, source, view, max_seconds: float | None = None) -> list[StreamResult]:
    """Feed ``source``'s blocks through ``stream`` into ``view`` until the source ends or is stopped,
    the view is closed, ``max_seconds`` of audio have passed, or Ctrl-C; always stops the source and
    closes the view. A view has ``update(result)``, ``close()`` and optionally ``closed``."""
    results = []
    try:
        for block in source.blocks():
            for result in stream.feed(block):
                results.append(result)
                view.update(result)
            if getattr(view, "closed", False):
                break
            if max_seconds is not None and stream.received >= max_seconds * stream.sample_rate:
                break
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
    finally:
        source.stop()
        view.close()
        dropped = getattr(source, "dropped", 0)
        if dropped:
            log.warning("%d audio blocks were dropped because inference was too slow", dropped)
    return results
