"""Streaming inference: window/hop predictions over audio blocks, and the one loop that shows them.

:class:`StreamingPredictor` takes blocks of any size at any sample rate; every ``hop`` seconds it
predicts the last ``window`` seconds, unless the voice-activity gate (:mod:`.vad`: Silero VAD, or an
energy threshold; both with hysteresis, so they do not flicker) says nobody is speaking, smooths
the probabilities over time and reports the compute latency of each hop (gate and model).
:func:`run_stream` feeds a source through it into a view: ``infer --mic`` (matplotlib window or
text) and notebook 06's widget all use it.

The stream keeps the audio at the input rate and prepares and predicts each window as
:meth:`Predictor.predict` does, so with the same speaker statistics (``adapt=False``, or a model
without speaker normalisation) a streamed window gives exactly the offline prediction of its samples.
An :class:`~ser_lib.inference.ensemble.Ensemble` streams the same way, the mean of its models' probabilities.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..data import audio
from ..errors import ConfigError
from .ensemble import Ensemble
from .predictor import Predictor
from .vad import VADS, EnergyGate, SileroGate, make_gate

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
    vad: str = field(default="auto", metadata={
        "help": "voice-activity detector: silero (a neural detector), energy (a level threshold), or auto "
                "(silero when installed)", "choices": VADS})

    def validate(self) -> None:
        if self.hop <= 0 or self.window <= 0 or self.hop > self.window:
            raise ConfigError(f"need 0 < hop <= window, got window {self.window} s and hop {self.hop} s")
        if not 0 < self.smoothing <= 1:
            raise ConfigError("smoothing is the weight of the newest window, in (0, 1]")
        if self.vad not in VADS:
            raise ConfigError(f"unknown voice-activity detector {self.vad!r}; use one of {', '.join(VADS)}")


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
    latency_ms: float                # compute time of this hop (voice-activity gate and model)
    labels: list[str] = field(default_factory=list)


class StreamingPredictor:
    """Window/hop predictions over a live stream of audio blocks.

    ``feed(block)`` returns the results of the hops completed by that block. The first window is
    predicted once ``settings.min_seconds`` of audio have arrived (shorter than the window at the
    start). Each spoken hop is also heard by the predictor, which updates its running statistics of
    the current speaker when the model uses them (``adapt=False`` keeps them fixed).
    """

    def __init__(self, predictor: Predictor | Ensemble, sample_rate: int, settings: StreamSettings = StreamSettings(),
                 gate: EnergyGate | SileroGate | None = None, adapt: bool = True):
        settings.validate()
        self.predictor, self.settings, self.adapt = predictor, settings, adapt
        self.sample_rate = int(sample_rate)
        self.window = int(round(settings.window * sample_rate))
        self.hop = int(round(settings.hop * sample_rate))
        self.min_samples = int(round(min(settings.min_seconds, settings.window) * sample_rate))
        self.gate = gate or make_gate(settings.vad)
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
        self.gate.reset()

    def feed(self, block: np.ndarray) -> list[StreamResult]:
        """Append a block (mono, or ``(frames, channels)``) and return the hops it completed."""
        block = audio.to_mono(np.asarray(block, dtype=np.float32))
        results = []
        while len(block):
            take = min(len(block), self.next_hop - self.received)
            self._append(block[:take])
            block = block[take:]
            if self.received == self.next_hop:
                started = time.perf_counter()  # the gate hears every hop, also before the first prediction
                speech = self.gate.update(self.buffer[-self.hop:], self.sample_rate)
                if self.received >= self.min_samples:
                    results.append(self._hop(speech, started))
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
        return self.predictor.window_probs(window, self.sample_rate, newest if self.adapt else None)

    def _hop(self, speech: bool, started: float) -> StreamResult:
        newest = self.buffer[-self.hop:]
        level = audio.rms_db(newest)
        window = self.current_window()
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
