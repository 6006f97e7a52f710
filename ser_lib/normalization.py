"""Input statistics: per-speaker normalisation and the clip descriptors of the model.

A speaker-independent model meets voices it has never heard. Part of what it must ignore is the
speaker's habitual pitch, loudness and timbre, and these can be measured without any label from a
speaker's own audio. With ``speaker_norm`` the model's inputs (log-mel bands and clip descriptors)
are z-normalised with statistics of the speaker's own clips: training speakers with theirs, a test
speaker with his or hers (unlabelled), and a live stream with running statistics of what it has
heard so far (:class:`SpeakerAdapter`). Results that use it are reported apart from plain ones.

Clip descriptors are the classic clip-level statistics of :func:`ser_lib.features.clip_statistics`
(MFCC, pitch, energy, timing, spectral balance), computed on exactly the audio the model sees.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

from . import features, paths
from .data import AudioSettings, center_crop


@dataclass
class RunningStats:
    """Mean and standard deviation of vectors, updated one batch of rows at a time (Chan/Welford)."""

    dim: int
    count: int = 0
    mean: np.ndarray = field(default=None)
    m2: np.ndarray = field(default=None)

    def __post_init__(self) -> None:
        if self.mean is None:
            self.mean = np.zeros(self.dim)
            self.m2 = np.zeros(self.dim)

    def update(self, rows: np.ndarray) -> None:
        rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        n = len(rows)
        if n == 0:
            return
        batch_mean = rows.mean(0)
        batch_m2 = ((rows - batch_mean) ** 2).sum(0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + batch_m2 + delta ** 2 * self.count * n / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation (as ``np.std``); ones before any data."""
        return np.sqrt(self.m2 / self.count) if self.count else np.ones(self.dim)


# ----------------------------------------------------------------------------------------------
# Log-mel statistics
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def log_mel_frames(model, wave: np.ndarray) -> np.ndarray:
    """Un-normalised log-mel frames ``(frames, n_mels)`` of one clip, as the model computes them."""
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
    mel = model.spectrogram.mel.to("cpu")
    return torch.log(mel(x) + 1e-6)[0].T.numpy()


def speaker_mel_statistics(model, waves: Sequence[np.ndarray], actors: Sequence[int]) -> dict[int, tuple]:
    """Per-speaker mean and standard deviation of each log-mel band over all the speaker's frames."""
    stats: dict[int, RunningStats] = {}
    for wave, actor in zip(waves, actors):
        stats.setdefault(int(actor), RunningStats(model.config.n_mels)).update(log_mel_frames(model, wave))
    return {actor: (s.mean.astype(np.float32), np.maximum(s.std, 1e-3).astype(np.float32))
            for actor, s in stats.items()}


def global_mel_statistics(model, waves: Sequence[np.ndarray], max_clips: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each log-mel band over (up to ``max_clips``) training clips."""
    stats = RunningStats(model.config.n_mels)
    for wave in list(waves)[:: max(1, len(waves) // max_clips)]:
        stats.update(log_mel_frames(model, wave))
    return stats.mean.astype(np.float32), np.maximum(stats.std, 1e-3).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Clip descriptors
# ----------------------------------------------------------------------------------------------
DESCRIPTOR_VERSION = 1


@lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    return tuple(features.clip_statistics(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)))


def descriptor_names() -> list[str]:
    """Names of the descriptors, in the model's input order."""
    return list(_names())


def _describe(wave: np.ndarray) -> list[float]:
    return list(features.clip_statistics(wave).values())


def clip_descriptors(wave: np.ndarray, settings: AudioSettings) -> np.ndarray:
    """The descriptors of one prepared (trimmed) clip, on the centre crop the model sees."""
    values = np.asarray(_describe(center_crop(wave, settings)), dtype=np.float32)
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)


def descriptor_matrix(paths_: Sequence[str], waves: Sequence[np.ndarray], settings: AudioSettings,
                      workers: int | None = None) -> np.ndarray:
    """Descriptors of many prepared clips ``(clips, descriptors)``, cached on disk by file and settings."""
    store = features.FeatureCache(paths.cache_dir() / "descriptors")
    params = {"version": DESCRIPTOR_VERSION, "sample_rate": settings.sample_rate, "trim_db": settings.trim_db,
              "max_seconds": settings.max_seconds}
    crops = [center_crop(wave, settings) for wave in waves]  # views: no copies
    table = np.asarray(store.get_many(paths_, "descriptors", params, _describe, crops, workers), dtype=np.float32)
    return np.nan_to_num(table, nan=0.0, posinf=0.0, neginf=0.0)


def normalize_by_speaker(table: np.ndarray, actors: Sequence[int]) -> np.ndarray:
    """Z-normalise each column within each speaker (the speaker's own clips only)."""
    actors = np.asarray(actors)
    out = np.empty_like(table, dtype=np.float32)
    for actor in np.unique(actors):
        rows = actors == actor
        mean, std = table[rows].mean(0), table[rows].std(0)
        out[rows] = (table[rows] - mean) / (std + 1e-6)
    return out


# ----------------------------------------------------------------------------------------------
# Live adaptation
# ----------------------------------------------------------------------------------------------
class SpeakerAdapter:
    """Running per-speaker statistics for a model trained with ``speaker_norm``.

    ``update(wave)`` adds a clip (or a speech window) of the current speaker; ``inputs(wave)``
    returns the normalisation the model needs for ``wave``. Until ``min_frames`` frames (or
    ``min_clips`` descriptor rows) have been seen, the training data's global statistics stand in.
    """

    def __init__(self, model, settings: AudioSettings, global_mel: tuple, global_descriptors: tuple | None,
                 min_frames: int = 300, min_clips: int = 3):
        self.model, self.settings = model, settings
        self.global_mel, self.global_descriptors = global_mel, global_descriptors
        self.mel = RunningStats(model.config.n_mels)
        self.descriptors = RunningStats(len(global_descriptors[0])) if global_descriptors else None
        self.min_frames, self.min_clips = min_frames, min_clips

    def update(self, wave: np.ndarray) -> None:
        """Add a whole clip of the speaker (prepared: trimmed, at the model's rate)."""
        self.update_mel(wave)
        self.update_descriptors(wave)

    def update_mel(self, wave: np.ndarray) -> None:
        if len(wave) >= self.model.config.n_fft:
            self.mel.update(log_mel_frames(self.model, wave))

    def update_descriptors(self, wave: np.ndarray) -> None:
        if self.descriptors is not None:
            self.add_descriptors(clip_descriptors(wave, self.settings))

    def add_descriptors(self, values: np.ndarray) -> None:
        """Add one row of raw descriptors already computed with :func:`clip_descriptors`."""
        if self.descriptors is not None:
            self.descriptors.update(values)

    @property
    def adapted(self) -> bool:
        return self.mel.count >= self.min_frames

    def mel_stats(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mel.count < self.min_frames:
            return self.global_mel
        return self.mel.mean.astype(np.float32), np.maximum(self.mel.std, 1e-3).astype(np.float32)

    def descriptor_stats(self) -> tuple[np.ndarray, np.ndarray]:
        if self.descriptors is None or self.descriptors.count < self.min_clips:
            return self.global_descriptors
        return self.descriptors.mean.astype(np.float32), self.descriptors.std.astype(np.float32) + 1e-6


# ----------------------------------------------------------------------------------------------
# Fitting and applying, shared by training, evaluation and inference
# ----------------------------------------------------------------------------------------------
def fit_statistics(model, waves: Sequence[np.ndarray], paths_: Sequence[str], train_index: Sequence[int],
                   settings: AudioSettings, speaker_norm: bool) -> dict:
    """Fit the training data's statistics: log-mel bands (stored in the model) and, for a model
    with descriptors, their mean and standard deviation. Returns the checkpoint's normalisation record."""
    train_waves = [waves[i] for i in train_index]
    info: dict = {"speaker_norm": bool(speaker_norm)}
    if model.spectrogram is not None:
        mean, std = global_mel_statistics(model, train_waves)
        model.set_normalization(mean, std)
    if model.config.descriptor_dim:
        table = descriptor_matrix([paths_[i] for i in train_index], train_waves, settings)
        info.update(descriptor_names=descriptor_names(), descriptor_mean=table.mean(0).tolist(),
                    descriptor_std=(table.std(0) + 1e-6).tolist())
    return info


def model_extras(model, info: dict, waves: Sequence[np.ndarray], paths_: Sequence[str], actors: Sequence[int],
                 settings: AudioSettings) -> dict[str, np.ndarray]:
    """The per-clip extra inputs (speaker log-mel statistics, normalised descriptors) of a model."""
    extras: dict[str, np.ndarray] = {}
    if info.get("speaker_norm") and model.spectrogram is not None:
        stats = speaker_mel_statistics(model, waves, actors)
        extras["mel_mean"] = np.stack([stats[int(a)][0] for a in actors])
        extras["mel_std"] = np.stack([stats[int(a)][1] for a in actors])
    if model.config.descriptor_dim:
        table = descriptor_matrix(paths_, waves, settings)
        if info.get("speaker_norm"):
            extras["descriptors"] = normalize_by_speaker(table, actors)
        else:
            mean, std = np.asarray(info["descriptor_mean"]), np.asarray(info["descriptor_std"])
            extras["descriptors"] = ((table - mean) / std).astype(np.float32)
    return extras
