"""Predictions from a checkpoint: whole files, arrays, and a stream of audio blocks.

* :class:`Predictor` - ``Predictor.from_checkpoint(path)`` then ``predict_file(path)`` or
  ``predict(array, sr)``; label names come from the checkpoint, never from this code.
* :class:`StreamingPredictor` - feed blocks of any size at any sample rate; every ``hop`` seconds it
  predicts the last ``window`` seconds, unless an energy-based voice-activity gate (with hysteresis
  and a hang-over, so it does not flicker) says nobody is speaking, smooths the probabilities over
  time and reports the compute latency of each hop. Notebook 06 and ``infer --mic`` use it.

The stream keeps the audio at the input rate and prepares and predicts each window as
:meth:`Predictor.predict` does, so with the same speaker statistics (``adapt=False``, or a model
without speaker normalisation) a streamed window gives exactly the offline prediction of its samples.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import audio
from . import checkpoint as ckpt_io
from .data import center_crop
from .devices import resolve_device
from .errors import ConfigError

NO_SPEECH = "no speech"


@dataclass
class Prediction:
    """Probabilities per emotion for one piece of audio."""

    labels: list[str]
    probs: np.ndarray

    @property
    def label(self) -> str:
        return self.labels[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probs))

    def as_dict(self) -> dict[str, float]:
        return {label: float(p) for label, p in zip(self.labels, self.probs)}


class Predictor:
    """A trained model ready to predict (eval mode, no gradients)."""

    def __init__(self, loaded: ckpt_io.Checkpoint, device: torch.device, optimize: str = "none"):
        self.checkpoint = loaded
        self.labels = list(loaded.labels)
        self.audio = loaded.audio
        self.sample_rate = loaded.audio.sample_rate
        self.device = device
        self.model = loaded.model.to(device).eval()
        self.optimize = optimize
        self.normalization = dict(loaded.normalization)
        self.speaker_norm = bool(self.normalization.get("speaker_norm"))
        self.adapter = None
        if self.speaker_norm:
            from .normalization import SpeakerAdapter

            spec = self.model.spectrogram
            global_mel = (spec.mel_mean.cpu().numpy(), spec.mel_std.cpu().numpy()) if spec is not None else None
            global_desc = None
            if self.model.config.descriptor_dim:
                global_desc = (np.asarray(self.normalization["descriptor_mean"], dtype=np.float32),
                               np.asarray(self.normalization["descriptor_std"], dtype=np.float32))
            self.adapter = SpeakerAdapter(self.model, self.audio, global_mel, global_desc)
        if optimize == "int8":
            self.model = quantize_dynamic_int8(self.model)
        elif optimize != "none":
            raise ConfigError(f"unknown optimisation {optimize!r}; use 'none' or 'int8'")

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", optimize: str = "none") -> "Predictor":
        """Load ``best_model.pt``; ``optimize="int8"`` quantises linear layers for faster CPU inference."""
        dev = resolve_device(device)
        if optimize == "int8" and dev.type != "cpu":
            raise ConfigError("int8 dynamic quantisation runs on the CPU only; use --device cpu")
        return cls(ckpt_io.load(path, "cpu"), dev, optimize)

    def prepare(self, wave: np.ndarray, sr: int, crop: bool = True) -> np.ndarray:
        """Resample, trim and (unless ``crop=False``) centre-crop exactly as during evaluation."""
        wave = audio.to_mono(np.asarray(wave, dtype=np.float32))
        if sr != self.sample_rate:
            wave = audio.resample(wave, sr, self.sample_rate)
        wave = self.audio.prepare(wave)
        return center_crop(wave, self.audio) if crop else wave

    def adapt(self, waves, sr: int | None = None) -> None:
        """Learn the current speaker's statistics from unlabelled clips (files or arrays at ``sr``).

        Only for models trained with ``speaker_norm``; until enough audio has been seen, the
        training data's statistics stand in. A stream adapts by itself as it goes.
        """
        if self.adapter is None:
            raise ConfigError("this model was trained without speaker normalisation: nothing to adapt")
        for wave in waves:
            if isinstance(wave, (str, Path)):
                wave, rate = audio.load(wave, sr=None), _file_rate(wave)
            else:
                rate = sr or self.sample_rate
            self.adapter.update(self.prepare(wave, rate, crop=False))

    def describe(self, x: np.ndarray) -> np.ndarray | None:
        """The raw clip descriptors of a prepared clip (None for a model without descriptors)."""
        if not self.model.config.descriptor_dim:
            return None
        from .normalization import clip_descriptors

        # one BLAS thread: OpenBLAS threads left spinning after the descriptors' small matrix
        # operations compete with PyTorch's threads and can make the next forward pass 5x slower
        with _blas_controller().limit(limits=1, user_api="blas"):
            return clip_descriptors(x, self.audio)

    def _inputs(self, x: np.ndarray, described: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """Normalisation inputs of a prepared clip (speaker statistics, descriptors) for the model."""
        inputs: dict[str, torch.Tensor] = {}
        tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))[None].to(self.device)  # noqa: E731
        if self.adapter is not None and self.model.spectrogram is not None:
            mean, std = self.adapter.mel_stats()
            inputs["mel_mean"], inputs["mel_std"] = tensor(mean), tensor(std)
        if self.model.config.descriptor_dim:
            if self.adapter is not None:
                mean, std = self.adapter.descriptor_stats()
            else:
                mean, std = self.normalization["descriptor_mean"], self.normalization["descriptor_std"]
            values = self.describe(x) if described is None else described
            inputs["descriptors"] = tensor((values - np.asarray(mean)) / np.asarray(std))
        return inputs

    @torch.inference_mode()
    def forward(self, x: np.ndarray, described: np.ndarray | None = None):
        """The model's full output (logits of both heads, attention weights) for a clip already
        passed through :meth:`prepare`, with its normalisation inputs computed as in evaluation
        (``described``: its descriptors from :meth:`describe`, when already computed)."""
        if len(x) < self.checkpoint.model.config.n_fft:
            raise ConfigError(f"audio too short to classify: {len(x) / self.sample_rate:.3f} s")
        batch = torch.from_numpy(np.ascontiguousarray(x))[None].to(self.device)
        return self.model(batch, **self._inputs(x, described))

    def predict(self, wave: np.ndarray, sr: int) -> Prediction:
        """Probabilities for a mono (or ``(samples, channels)``) array at sample rate ``sr``."""
        logits = self.forward(self.prepare(wave, sr)).emotion_logits
        return Prediction(self.labels, torch.softmax(logits.float(), -1)[0].cpu().numpy())

    def predict_file(self, path: str | Path) -> Prediction:
        """Probabilities for an audio file (any rate and channel count soundfile reads)."""
        return self.predict(audio.load(path, sr=None), _file_rate(path))


@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _file_rate(path: str | Path) -> int:
    import soundfile as sf

    return int(sf.info(str(path)).samplerate)


def quantize_dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantisation of the pretrained encoder's ``nn.Linear`` layers (in place).

    Weights are stored as int8 and activations quantised on the fly: on a CPU this roughly halves
    the encoder's time. The small layers on top stay in float32 (PyTorch's fused transformer path
    does not take quantised linear layers).
    """
    import warnings

    from torch.ao.quantization import quantize_dynamic

    if getattr(model, "backbone", None) is None:
        return model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.backbone.encoder = quantize_dynamic(model.backbone.encoder, {torch.nn.Linear}, dtype=torch.qint8)
    return model


# ----------------------------------------------------------------------------------------------
# Streaming
# ----------------------------------------------------------------------------------------------
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
    predicted once ``min_seconds`` of audio have arrived (shorter than ``window`` at the start).
    For a model trained with ``speaker_norm``, each spoken hop also updates the predictor's running
    statistics of the current speaker (``adapt=False`` keeps them fixed).
    """

    def __init__(self, predictor: Predictor, sample_rate: int, window: float = 3.0, hop: float = 0.5,
                 smoothing: float = 0.5, gate: VoiceActivityGate | None = None, min_seconds: float = 1.0,
                 adapt: bool = True):
        if hop <= 0 or window <= 0 or hop > window:
            raise ConfigError(f"need 0 < hop <= window, got window {window} s and hop {hop} s")
        if not 0 < smoothing <= 1:
            raise ConfigError("smoothing is the weight of the newest window, in (0, 1]")
        self.predictor = predictor
        self.sample_rate = int(sample_rate)
        self.window = int(round(window * sample_rate))
        self.hop = int(round(hop * sample_rate))
        self.min_samples = int(round(min(min_seconds, window) * sample_rate))
        self.smoothing = smoothing
        self.adapt = adapt
        self.gate = gate or VoiceActivityGate()
        self.buffer = np.zeros(self.window, dtype=np.float32)  # ring buffer of the last window
        self.received = 0   # samples fed so far
        self.next_hop = self.hop
        self.smoothed: np.ndarray | None = None

    @property
    def labels(self) -> list[str]:
        return self.predictor.labels

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

    def _hop(self) -> StreamResult:
        newest = self.buffer[-self.hop:]
        level = audio.rms_db(newest)
        speech = self.gate.update(level)
        window = self.current_window()
        end = self.received
        start = end - len(window)
        t0 = time.perf_counter()
        probs = None
        if speech:
            predictor, adapter = self.predictor, self.predictor.adapter
            x = predictor.prepare(window, self.sample_rate)
            described = predictor.describe(x)  # computed once, for the statistics and the model
            if adapter is not None and self.adapt:  # running statistics of this speaker, from what has been heard
                adapter.update_mel(predictor.prepare(newest, self.sample_rate))
                if described is not None:
                    adapter.add_descriptors(described)
            logits = predictor.forward(x, described).emotion_logits
            probs = torch.softmax(logits.float(), -1)[0].cpu().numpy()
            if self.smoothed is None:
                self.smoothed = probs.copy()
            else:
                self.smoothed = self.smoothing * probs + (1 - self.smoothing) * self.smoothed
        else:
            self.smoothed = None
        latency = (time.perf_counter() - t0) * 1000
        label = self.labels[int(np.argmax(self.smoothed))] if self.smoothed is not None else NO_SPEECH
        return StreamResult(time=end / self.sample_rate, start=start, end=end, speech=speech, level_db=level,
                            probs=probs, smoothed=None if self.smoothed is None else self.smoothed.copy(),
                            label=label, latency_ms=latency, labels=self.labels)

    def process(self, blocks) -> list[StreamResult]:
        """Feed every block of an iterable; return all results (for files and tests)."""
        results = []
        for block in blocks:
            results.extend(self.feed(block))
        return results
