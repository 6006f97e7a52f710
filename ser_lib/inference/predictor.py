"""Predictions from a checkpoint: whole files and arrays, at any sample rate.

``Predictor.from_checkpoint(path)`` (or ``from_onnx`` for an exported model, ``load`` for either)
then ``predict_file(path)`` or ``predict(array, sr)``. Label names
come from the checkpoint, never from this code. A clip is prepared (resampled, trimmed, centre-cropped)
and normalised exactly as in evaluation; for a speaker-normalised model the predictor keeps running
statistics of the current speaker (:meth:`Predictor.adapt` from files, :meth:`Predictor.hear` from a
stream), shrunk towards the training data's statistics while little has been heard.
"""
from __future__ import annotations

import copy
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import audio
from ..data.splits import by_corpus
from ..devices import resolve_device
from ..errors import ConfigError
from ..model import checkpoint as ckpt_io
from ..model.ser_model import SERModel


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
        self.normalizer = loaded.normalizer
        self.corpus: str | None = None
        self.speaker = self.normalizer.new_speaker()
        self.device = device
        self.model = loaded.model.to(device).eval()
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

    @classmethod
    def from_onnx(cls, path: str | Path, threads: int | None = None) -> "Predictor":
        """Load a model exported by ``python -m ser_lib export`` and run it on onnxruntime (CPU): the
        same predictions, streaming and speaker adaptation as :meth:`from_checkpoint`."""
        from .onnx_model import load_onnx

        return cls(load_onnx(path, threads), torch.device("cpu"))

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", optimize: str = "none") -> "Predictor":
        """:meth:`from_onnx` for a ``.onnx`` file, else :meth:`from_checkpoint` (a run folder stands for its
        ``best_model.pt``)."""
        path = ckpt_io.model_files([path])[0]
        if Path(path).suffix.lower() == ".onnx":
            if optimize != "none":
                raise ConfigError("an ONNX model is quantised when exported: `python -m ser_lib export "
                                  "--quantize int8`, then infer without --optimize")
            if device not in ("auto", "cpu"):
                raise ConfigError("an ONNX model runs on the CPU here (onnxruntime's CPU provider); use --device cpu")
            return cls.from_onnx(path)
        return cls.from_checkpoint(path, device=device, optimize=optimize)

    def prepare(self, wave: np.ndarray, sr: int, crop: bool = True) -> np.ndarray:
        """Resample, trim and (unless ``crop=False``) centre-crop exactly as during evaluation."""
        wave = audio.to_mono(np.asarray(wave, dtype=np.float32))
        if sr != self.sample_rate:
            wave = audio.resample(wave, sr, self.sample_rate)
        wave = self.audio.prepare(wave)
        return self.audio.center_crop(wave) if crop else wave

    def describe(self, x: np.ndarray) -> np.ndarray | None:
        """The raw clip descriptors of a prepared clip (None for a model without descriptors)."""
        if self.normalizer.descriptors is None:
            return None
        # one BLAS thread: OpenBLAS threads left spinning after the descriptors' small matrix
        # operations compete with PyTorch's threads and can make the next forward pass 5x slower
        with _blas_controller().limit(limits=1, user_api="blas"):
            return self.normalizer.describe(x)

    def hear(self, x: np.ndarray, described: np.ndarray | None = None) -> None:
        """Add prepared audio of the current speaker (and one row of its descriptors) to the speaker's
        running statistics; a model trained without speaker normalisation ignores it."""
        self.speaker.update(x, described)

    def adapt(self, waves, sr: int | None = None) -> None:
        """Learn the current speaker's statistics from unlabelled clips (files or arrays at ``sr``)."""
        self.normalizer.check_adaptable()
        for wave in waves:
            if isinstance(wave, (str, Path)):
                wave, rate = audio.load(wave, sr=None), audio.file_rate(wave)
            else:
                rate = sr or self.sample_rate
            x = self.prepare(wave, rate, crop=False)
            self.hear(x, self.describe(x))

    def new_speaker(self) -> None:
        """Forget the current speaker's statistics (the next voice starts from the training statistics:
        its corpus's, after :meth:`use_corpus`, else the pooled ones)."""
        self.speaker = self.normalizer.new_speaker(self.corpus)

    def use_corpus(self, corpus: str | None) -> None:
        """Say which training corpus the audio comes from (None: none of them): for a model trained on
        several, a new voice then starts from that corpus's statistics instead of the pooled ones (as
        ``evaluate`` does for its clips). Starts a new speaker: statistics learnt so far are forgotten."""
        known = sorted(self.normalizer.corpus_stats)
        trained_on = sorted(by_corpus(self.checkpoint.split.get("train", [])))
        if corpus is not None and corpus not in known and trained_on != [corpus]:
            if known:
                why = f"it has {', '.join(known)}"
            elif not self.normalizer.speaker_norm:
                why = "it was trained with --no-speaker_norm: every voice gets the same training statistics"
            else:
                why = (f"it was trained on {', '.join(trained_on) or 'other data'} with one set of statistics "
                       "(one corpus, or --no-corpus_stats)")
            raise ConfigError(f"this model has no statistics of {corpus!r} of its own ({why}); leave out "
                              "--corpus to start every voice from its training statistics")
        self.corpus = corpus if corpus in known else None
        self.new_speaker()

    @torch.inference_mode()
    def forward(self, x: np.ndarray, described: np.ndarray | None = None):
        """The model's full output (logits of both heads, attention weights) for a clip already
        passed through :meth:`prepare`, normalised as in evaluation (``described``: its descriptors
        from :meth:`describe`, when already computed)."""
        self._check_length(x)
        if described is None:
            described = self.describe(x)
        inputs = self.normalizer.clip_inputs(x, self.speaker, described)
        batch = torch.from_numpy(np.ascontiguousarray(x))[None].to(self.device)
        return self.model(batch, **{k: torch.as_tensor(v)[None].to(self.device) for k, v in inputs.items()})

    def _check_length(self, x: np.ndarray) -> None:
        if len(x) < self.model.config.mel.n_fft:
            raise ConfigError(f"audio too short to classify: {len(x) / self.sample_rate:.3f} s")

    def predict(self, wave: np.ndarray, sr: int) -> Prediction:
        """Probabilities for a mono (or ``(samples, channels)``) array at sample rate ``sr``."""
        logits = self.forward(self.prepare(wave, sr)).emotion_logits
        return Prediction(self.labels, torch.softmax(logits.float(), -1)[0].cpu().numpy())

    def predict_file(self, path: str | Path) -> Prediction:
        """Probabilities for an audio file (any rate and channel count soundfile reads)."""
        return self.predict(audio.load(path, sr=None), audio.file_rate(path))

    def window_probs(self, window: np.ndarray, sr: int, newest: np.ndarray | None = None) -> np.ndarray:
        """Probabilities of one window of a stream at ``sr``; when ``newest`` (the window's latest hop) is
        given, the current speaker's statistics hear it first (with the window's descriptors, computed
        once for both)."""
        x = self.prepare(window, sr)
        heard = None if newest is None else self.prepare(newest, sr)
        if self._overlaps():
            return self._overlapped_probs(x, heard)
        described = self.describe(x)
        if heard is not None:
            self.hear(heard, described)
        logits = self.forward(x, described).emotion_logits
        return torch.softmax(logits.float(), -1)[0].cpu().numpy()

    def _overlaps(self) -> bool:
        """Whether a window's network runs beside its descriptors: a PyTorch spectrogram model on the CPU
        whose descriptors include the voice encoder, a long computation that leaves Python's lock (a
        pretrained backbone needs every core for itself)."""
        return (self.device.type == "cpu" and isinstance(self.model, SERModel) and self.model.backbone is None
                and self.normalizer.descriptors is not None and "voice" in self.normalizer.descriptor_set.split("+"))

    @torch.inference_mode()
    def _overlapped_probs(self, x: np.ndarray, heard: np.ndarray | None) -> np.ndarray:
        """:meth:`window_probs` of a prepared window, with the network's part before the descriptors
        (:meth:`SERModel.encode`) on a thread of its own while they are computed: the same numbers, sooner."""
        self._check_length(x)
        heard_before = None if heard is None else copy.deepcopy(self.speaker.mel)
        if heard is not None:
            self.hear(heard)  # its log-mel first, the window's descriptor row once computed
        mel = {k: torch.as_tensor(v)[None] for k, v in self.normalizer.mel_inputs(self.speaker).items()}
        encoded = _network_thread(os.getpid()).submit(_encode, self.model,
                                                      torch.from_numpy(np.ascontiguousarray(x))[None], mel)
        try:
            described = self.describe(x)
            pooled, attention, mask = encoded.result()
        except BaseException:
            encoded.exception()  # waits: the network thread is done with this window before the error goes up
            if heard_before is not None:
                self.speaker.mel = heard_before  # nothing of a window that failed is heard, as without the thread
            raise
        if heard is not None:
            self.hear(None, described)
        inputs = self.normalizer.descriptor_inputs(x, self.speaker, described)
        descriptors = torch.as_tensor(inputs["descriptors"])[None]
        logits = self.model.classify(pooled, attention, mask, descriptors).emotion_logits
        return torch.softmax(logits.float(), -1)[0].numpy()


@functools.lru_cache(maxsize=1)
def _network_thread(pid: int) -> ThreadPoolExecutor:
    """The thread a window's network runs on beside its descriptors (one per process: a forked child gets its own)."""
    return ThreadPoolExecutor(1, thread_name_prefix=f"ser-network-{pid}")


def _encode(model: SERModel, wave: torch.Tensor, mel: dict[str, torch.Tensor]):
    """:meth:`SERModel.encode` on one PyTorch thread: beside the descriptors' two threads on 2 cores, and alone
    the network took 11 ms on one thread against 12 on two. The count is restored after: PyTorch keeps the last
    one set as the default of threads that start later."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            return model.encode(wave, **mel)
    finally:
        torch.set_num_threads(threads)


@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


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
