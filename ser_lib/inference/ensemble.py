"""Several models as one: the mean of their probabilities, for files, arrays, streams and the live demo.

Models trained with different seeds (or on different folds) err on a new voice in different ways, so
the mean of their probabilities is more often right than any one of them: ``evaluate`` scores an
ensemble the same way, and this class lets ``infer`` and the widget use it. Each model prepares the
audio with its own settings and keeps its own statistics of the current speaker.

    Ensemble.load(["runs/seed0/best_model.pt", "runs/seed1/best_model.pt"]).predict_file("clip.wav")
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..data import audio
from ..errors import ConfigError, SERError
from ..model import checkpoint as ckpt_io
from .predictor import Prediction, Predictor


class Ensemble:
    """Predictors of the same classes used together (the interface of :class:`Predictor` that ``infer``,
    :class:`~ser_lib.inference.StreamingPredictor` and the live demo use)."""

    def __init__(self, members: Sequence[Predictor]):
        if not members:
            raise ConfigError("an ensemble needs at least one model")
        names = [m.checkpoint.path or f"model {k + 1}" for k, m in enumerate(members)]
        ckpt_io.check_ensemble([m.checkpoint for m in members], names)
        self.members = list(members)
        self.labels = list(members[0].labels)

    @classmethod
    def load(cls, paths: Sequence[str | Path], device: str = "auto", optimize: str = "none") -> "Ensemble":
        """Each of ``paths`` as :meth:`Predictor.load` reads it (checkpoints, run folders or ONNX models, each
        once); an error names the model it is about."""
        members = []
        for path in ckpt_io.model_files(list(paths)):
            try:
                members.append(Predictor.load(path, device=device, optimize=optimize))
            except SERError as error:
                raise type(error)(f"{path}: {error}") from None
        return cls(members)

    def predict(self, wave: np.ndarray, sr: int) -> Prediction:
        """The mean of the models' probabilities for a mono (or ``(samples, channels)``) array at ``sr``."""
        return Prediction(self.labels, np.mean([m.predict(wave, sr).probs for m in self.members], axis=0))

    def predict_file(self, path: str | Path) -> Prediction:
        """The same for an audio file (read once)."""
        return self.predict(audio.load(path, sr=None), audio.file_rate(path))

    def window_probs(self, window: np.ndarray, sr: int, newest: np.ndarray | None = None) -> np.ndarray:
        """The mean of the models' :meth:`Predictor.window_probs` (each hears ``newest``)."""
        return np.mean([m.window_probs(window, sr, newest) for m in self.members], axis=0)

    def adapt(self, waves, sr: int | None = None) -> None:
        """Every model learns the current speaker from the same unlabelled clips (files are read once)."""
        clips = [(audio.load(w, sr=None), audio.file_rate(w)) if isinstance(w, (str, Path)) else (w, sr)
                 for w in waves]
        for member in self.members:
            for wave, rate in clips:
                member.adapt([wave], rate)

    def new_speaker(self) -> None:
        """Every model forgets the current speaker (:meth:`Predictor.new_speaker`)."""
        for member in self.members:
            member.new_speaker()

    def use_corpus(self, corpus: str | None) -> None:
        """:meth:`Predictor.use_corpus` for every model, or for none (an error names the model that refused)."""
        before = [(member.corpus, member.speaker) for member in self.members]
        for member in self.members:
            try:
                member.use_corpus(corpus)
            except SERError as error:
                for other, (was, speaker) in zip(self.members, before):
                    other.corpus, other.speaker = was, speaker
                raise type(error)(f"{member.checkpoint.path or 'a model of the ensemble'}: {error}") from None
