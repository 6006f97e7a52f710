"""The input normaliser: everything the model needs besides the waveform, from one object.

A speaker-independent model meets voices it has never heard. Part of what it must ignore is the
speaker's habitual pitch, loudness and timbre, and these can be measured without any label from a
speaker's own audio. With ``speaker_norm`` the model's inputs (log-mel bands and clip descriptors)
are z-normalised with statistics of the speaker's own clips: a training speaker with theirs, a test
speaker with his or hers (unlabelled), and a live stream with running statistics of what it has
heard so far. Without it, or until enough of a new speaker has been heard, the training data's
statistics stand in: for a model trained on several corpora, those of the clip's own corpus when it
is one of them (RAVDESS and CREMA-D were recorded differently, and their pooled statistics fit
neither), else the pooled ones (another corpus, a microphone). Results that use speaker statistics
are reported apart from plain ones.

:class:`InputNormalizer` is fitted on the training clips, travels in the checkpoint, and is the only
code that reads the ``speaker_norm`` setting. It produces the model's extra inputs for a batch of
clips (:meth:`~InputNormalizer.inputs`), for one clip (:meth:`~InputNormalizer.clip_inputs`), and
keeps per-speaker running statistics (:class:`SpeakerStatistics`) for ``Predictor.adapt`` and streams.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..data import voice
from ..data.audio import AudioSettings
from ..data.features import (
    DESCRIPTOR_SETS,
    DESCRIPTOR_VERSION,
    DESCRIPTOR_VERSIONS,
    LogMel,
    MelSettings,
    clip_descriptors,
    descriptor_matrix,
    descriptor_names,
)
from ..errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

#: Floor of a log-mel band's standard deviation (a band that never changes is not amplified).
MEL_STD_FLOOR = 1e-3
#: Added to a descriptor's standard deviation before dividing (constant descriptors stay finite).
DESCRIPTOR_STD_EPS = 1e-6
#: The training data's log-mel statistics come from at most this many clips (evenly spaced).
GLOBAL_MEL_CLIPS = 400
#: How much the training data's statistics weigh in a speaker's (:class:`SpeakerStatistics`): as
#: much as this many log-mel frames (6 s) and this many clips' descriptors. Chosen on the validation
#: actors of the 5 RAVDESS folds (README), where it lifted the UAR after 3 clips from 0.36 to 0.53
#: and left it unchanged with all of a speaker's clips.
PRIOR_FRAMES = 600
PRIOR_CLIPS = 5
#: Corpora too generic to have statistics of their own: ``folder`` is any folder of recordings.
POOLED_ONLY = ("folder",)


@dataclass
class Stats:
    """Mean and standard deviation of each feature; :meth:`normalize` z-scores with them."""

    mean: np.ndarray
    std: np.ndarray

    def normalize(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "Stats":
        return cls(np.asarray(data["mean"], dtype=np.float32), np.asarray(data["std"], dtype=np.float32))


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

    def merge(self, other: "RunningStats") -> None:
        """Add the rows ``other`` has seen (as if they had been passed to :meth:`update` here)."""
        if other.count == 0:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean = self.mean + delta * other.count / total
        self.m2 = self.m2 + other.m2 + delta ** 2 * self.count * other.count / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation (as ``np.std``); ones before any data."""
        return np.sqrt(self.m2 / self.count) if self.count else np.ones(self.dim)

    def mel_stats(self) -> Stats:
        """As log-mel statistics (standard deviation floored at :data:`MEL_STD_FLOOR`)."""
        return Stats(self.mean.astype(np.float32), np.maximum(self.std, MEL_STD_FLOOR).astype(np.float32))

    def descriptor_stats(self) -> Stats:
        """As descriptor statistics (:data:`DESCRIPTOR_STD_EPS` added to the standard deviation)."""
        return Stats(self.mean.astype(np.float32), (self.std + DESCRIPTOR_STD_EPS).astype(np.float32))


def normalize_by_speaker(table: np.ndarray, speakers: Sequence) -> np.ndarray:
    """Z-normalise each column of ``table`` within each speaker (that speaker's own rows only)."""
    speakers = np.asarray(speakers)
    out = np.empty(np.shape(table), dtype=np.float32)
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        stats = RunningStats(table.shape[1])
        stats.update(table[rows])
        out[rows] = stats.descriptor_stats().normalize(table[rows])
    return out


class SpeakerStatistics:
    """Running statistics of one speaker's audio (log-mel frames and clip descriptors).

    ``update(wave, descriptors)`` adds prepared audio of the speaker and/or one row of raw
    descriptors. The statistics in use are the speaker's shrunk towards the training data's, which
    weigh as much as ``prior_frames`` log-mel frames and ``prior_clips`` descriptor rows: nothing
    heard gives the training data's (the cold start), a few seconds a mix, and a speaker's whole
    corpus almost only their own. A few clips' standard deviations alone are too noisy to divide
    by. A model trained without ``speaker_norm`` ignores all of this.
    """

    def __init__(self, normalizer: "InputNormalizer", prior_frames: float = PRIOR_FRAMES,
                 prior_clips: float = PRIOR_CLIPS, corpus: str | None = None):
        self.normalizer = normalizer
        self.prior = normalizer.training_stats(corpus)
        self.prior_frames, self.prior_clips = prior_frames, prior_clips
        self.mel = RunningStats(normalizer.mel_settings.n_mels)
        self.descriptors = RunningStats(len(normalizer.descriptor_names))

    def update(self, wave: np.ndarray | None = None, descriptors: np.ndarray | None = None) -> None:
        if not self.normalizer.speaker_norm:
            return
        if wave is not None and self.normalizer.mel is not None and len(wave) >= self.normalizer.mel_settings.n_fft:
            self.mel.update(self.normalizer.log_mel_frames(wave))
        if descriptors is not None and self.normalizer.descriptors is not None:
            self.descriptors.update(descriptors)

    @property
    def adapted(self) -> bool:
        """Whether any of the speaker's own audio is in use."""
        return self.mel.count > 0 or self.descriptors.count > 0

    def mel_stats(self) -> Stats:
        if self.mel.count == 0:
            return self.prior.mel
        return blend(self.mel.mel_stats(), self.prior.mel, self.mel.count, self.prior_frames)

    def descriptor_stats(self) -> Stats:
        if self.descriptors.count == 0:
            return self.prior.descriptors
        return blend(self.descriptors.descriptor_stats(), self.prior.descriptors, self.descriptors.count,
                     self.prior_clips)


def blend(own: Stats, prior: Stats, count: float, prior_count: float) -> Stats:
    """``own`` statistics (of ``count`` observations) shrunk towards ``prior``, which weighs as much as
    ``prior_count`` observations: means and variances are mixed by weight."""
    w = count / (count + prior_count) if prior_count > 0 else 1.0
    return Stats((w * own.mean + (1 - w) * prior.mean).astype(np.float32),
                 np.sqrt(w * own.std ** 2 + (1 - w) * prior.std ** 2).astype(np.float32))


def _current_versions(descriptor_set: str, saved: dict) -> dict[str, str]:
    """:func:`_part_versions` for a checkpoint being loaded: weights this machine lacks are a CheckpointError."""
    try:
        return _part_versions(descriptor_set)
    except ConfigError as error:
        raise CheckpointError(f"this model (descriptor set {descriptor_set}, encoder "
                              f"{saved.get('voice_version', 'unknown')}) cannot be used here: {error}") from None


def _part_versions(descriptor_set: str) -> dict[str, str]:
    """``{"egemaps_version": ..., "voice_version": ...}`` for the external parts of a descriptor set."""
    from ..data.features import part_version

    return {f"{part}_version": part_version(part) for part in descriptor_set.split("+") if part != "ser"}


@dataclass
class TrainingStats:
    """The training data's statistics (all of it, or one corpus of it): log-mel and descriptors."""

    mel: Stats | None
    descriptors: Stats | None

    def to_dict(self) -> dict:
        return {"mel": self.mel.to_dict() if self.mel else None,
                "descriptors": self.descriptors.to_dict() if self.descriptors else None}

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingStats":
        return cls(*(Stats.from_dict(data[key]) if data.get(key) else None for key in ("mel", "descriptors")))


@dataclass
class InputNormalizer:
    """The model's extra inputs (``mel_mean``, ``mel_std``, ``descriptors``) and their statistics.

    ``mel`` and ``descriptors`` are the training data's statistics (``None`` for a model without the
    spectrogram branch or without descriptors). ``mel_settings`` and ``audio`` come from the model
    config and the checkpoint's audio settings and are not stored twice. ``descriptor_version`` is the
    :func:`~ser_lib.data.features.clip_statistics` version the model was trained with,
    ``descriptor_set`` which descriptors (:data:`~ser_lib.data.features.DESCRIPTOR_SETS`). ``corpus_stats``: for a model
    trained on several corpora, each one's own statistics (:meth:`training_stats`).
    """

    speaker_norm: bool
    mel: Stats | None
    descriptors: Stats | None
    mel_settings: MelSettings
    audio: AudioSettings
    descriptor_names: tuple[str, ...] = ()
    descriptor_version: int = DESCRIPTOR_VERSION
    descriptor_set: str = "ser"
    corpus_stats: dict[str, TrainingStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._front_end = LogMel(self.mel_settings)

    def training_stats(self, corpus: str | None = None) -> TrainingStats:
        """The statistics that stand in for a speaker's: ``corpus``'s own when the model has them, else
        the whole training data's."""
        return self.corpus_stats.get(corpus) or TrainingStats(self.mel, self.descriptors)

    # -- fitting and storing -----------------------------------------------------------------------
    @classmethod
    def fit(cls, waves: Sequence[np.ndarray], paths: Sequence[str], *, mel_settings: MelSettings,
            audio: AudioSettings, speaker_norm: bool, spectrogram: bool, descriptors: bool,
            descriptor_set: str = "ser", descriptor_version: int = DESCRIPTOR_VERSION,
            corpora: Sequence[str] | None = None) -> "InputNormalizer":
        """Fit the training data's statistics on prepared (trimmed) training clips; with the clips'
        ``corpora``, when there are several, each corpus's too (but :data:`POOLED_ONLY`)."""
        empty = cls(speaker_norm, None, None, mel_settings, audio)
        table = (descriptor_matrix(paths, waves, audio, version=descriptor_version, descriptor_set=descriptor_set)
                 if descriptors else None)

        def stats(rows: np.ndarray) -> TrainingStats:
            mel = desc = None
            if spectrogram:
                running = RunningStats(mel_settings.n_mels)
                for k in rows[:: max(1, len(rows) // GLOBAL_MEL_CLIPS)]:
                    running.update(empty.log_mel_frames(waves[k]))
                mel = running.mel_stats()
            if table is not None:
                running = RunningStats(table.shape[1])
                running.update(table[rows])
                desc = running.descriptor_stats()
            return TrainingStats(mel, desc)

        pooled = stats(np.arange(len(waves)))
        names = np.asarray(corpora if corpora is not None else [""] * len(waves))
        own = {str(c): stats(np.flatnonzero(names == c)) for c in np.unique(names) if c not in POOLED_ONLY} \
            if len(np.unique(names)) > 1 else {}
        return cls(speaker_norm, pooled.mel, pooled.descriptors, mel_settings, audio,
                   descriptor_names(descriptor_set) if descriptors else (), descriptor_version, descriptor_set, own)

    @classmethod
    def untrained(cls, mel_settings: MelSettings, audio: AudioSettings, *, spectrogram: bool = True,
                  descriptors: bool = False, descriptor_set: str = "ser") -> "InputNormalizer":
        """Statistics that pass the inputs on unchanged (zero mean, unit deviation), for a model that
        was never trained: shape tours and timing benchmarks."""
        n_desc = len(descriptor_names(descriptor_set)) if descriptors else 0
        identity = lambda n: Stats(np.zeros(n, np.float32), np.ones(n, np.float32))  # noqa: E731
        return cls(False, identity(mel_settings.n_mels) if spectrogram else None,
                   identity(n_desc) if descriptors else None, mel_settings, audio,
                   descriptor_names(descriptor_set) if descriptors else (), descriptor_set=descriptor_set)

    def to_dict(self) -> dict:
        return {"speaker_norm": self.speaker_norm, "mel": self.mel.to_dict() if self.mel else None,
                "descriptors": self.descriptors.to_dict() if self.descriptors else None,
                "descriptor_names": list(self.descriptor_names), "descriptor_version": self.descriptor_version,
                "descriptor_set": self.descriptor_set,
                **(_part_versions(self.descriptor_set) if self.descriptor_names else {}),
                **({"corpus_stats": {name: stats.to_dict() for name, stats in self.corpus_stats.items()}}
                   if self.corpus_stats else {})}

    @classmethod
    def from_dict(cls, data: dict, mel_settings: MelSettings, audio: AudioSettings) -> "InputNormalizer":
        names = tuple(data.get("descriptor_names") or ())
        descriptor_set = data.get("descriptor_set", "ser")  # checkpoints before eGeMAPS: today's descriptors
        if descriptor_set not in DESCRIPTOR_SETS:
            raise CheckpointError(f"the checkpoint's descriptor set {descriptor_set!r} is not one this ser_lib "
                                  f"computes ({', '.join(DESCRIPTOR_SETS)}): update ser_lib")
        current = _current_versions(descriptor_set, data) if names else {}
        saved = data.get("egemaps_version")
        if saved and saved != current.get("egemaps_version", saved):
            log.warning("this model's eGeMAPS descriptors were computed by %s, this machine has %s: its inputs "
                        "may differ slightly", saved, current["egemaps_version"])
        saved = data.get("voice_version")
        if saved and saved != current.get("voice_version", saved):
            raise CheckpointError(f"this model's voice descriptors come from the encoder {saved}, this machine's are "
                                  f"{current['voice_version']}: install the weights it was trained with (pip install "
                                  f"--no-deps {voice.PACKAGE}, or point {voice.ENV} at them)")
        if names and names != descriptor_names(descriptor_set):
            raise CheckpointError("the checkpoint's clip descriptors are not the ones this ser_lib computes "
                                  "(it was trained with another version): retrain it")
        version = int(data.get("descriptor_version", 1))  # checkpoints before version 2 did not say
        if version not in DESCRIPTOR_VERSIONS:
            raise CheckpointError(f"the checkpoint's clip descriptors (version {version}) are not ones this ser_lib "
                                  f"computes (versions {', '.join(map(str, DESCRIPTOR_VERSIONS))}): update ser_lib")
        return cls(bool(data["speaker_norm"]), Stats.from_dict(data["mel"]) if data.get("mel") else None,
                   Stats.from_dict(data["descriptors"]) if data.get("descriptors") else None,
                   mel_settings, audio, names, version, descriptor_set,
                   {name: TrainingStats.from_dict(stats) for name, stats in (data.get("corpus_stats") or {}).items()})

    # -- features ----------------------------------------------------------------------------------
    @torch.no_grad()
    def log_mel_frames(self, wave: np.ndarray) -> np.ndarray:
        """Un-normalised log-mel frames ``(frames, n_mels)`` of one clip, as the model computes them."""
        return self._front_end(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))).T.numpy()

    def describe(self, wave: np.ndarray) -> np.ndarray | None:
        """Raw clip descriptors of a prepared clip (``None`` for a model without descriptors)."""
        if self.descriptors is None:
            return None
        return clip_descriptors(wave, self.audio, self.descriptor_version, self.descriptor_set)

    # -- inputs ------------------------------------------------------------------------------------
    def new_speaker(self, corpus: str | None = None) -> SpeakerStatistics:
        """Empty running statistics for a new speaker (the training data's until some audio is heard:
        ``corpus``'s, when the model has statistics of it)."""
        return SpeakerStatistics(self, corpus=corpus)

    def check_adaptable(self) -> None:
        if not self.speaker_norm:
            raise ConfigError("this model was trained without speaker normalisation: nothing to adapt")

    def clip_inputs(self, wave: np.ndarray, speaker: SpeakerStatistics | None = None,
                    described: np.ndarray | None = None, corpus: str | None = None) -> dict[str, np.ndarray]:
        """The extra inputs of one prepared clip, with ``speaker``'s statistics when the model uses
        them, else the training data's (``corpus``'s when it has them; ``described``: its raw
        descriptors, when already computed)."""
        return {**self.mel_inputs(speaker, corpus), **self.descriptor_inputs(wave, speaker, described, corpus)}

    def mel_inputs(self, speaker: SpeakerStatistics | None = None, corpus: str | None = None) -> dict[str, np.ndarray]:
        """The log-mel statistics of :meth:`clip_inputs` (none for a model without them)."""
        if self.mel is None:
            return {}
        stats = speaker.mel_stats() if speaker is not None and self.speaker_norm else \
            self.training_stats(corpus if self.speaker_norm else None).mel
        return {"mel_mean": stats.mean, "mel_std": stats.std}

    def descriptor_inputs(self, wave: np.ndarray, speaker: SpeakerStatistics | None = None,
                          described: np.ndarray | None = None, corpus: str | None = None) -> dict[str, np.ndarray]:
        """The normalised clip descriptors of :meth:`clip_inputs` (none for a model without them)."""
        if self.descriptors is None:
            return {}
        stats = speaker.descriptor_stats() if speaker is not None and self.speaker_norm else \
            self.training_stats(corpus if self.speaker_norm else None).descriptors
        return {"descriptors": stats.normalize(self.describe(wave) if described is None else described)}

    def inputs(self, waves: Sequence[np.ndarray], paths: Sequence[str], speakers: Sequence,
               adapt: bool = True, enrolment: Sequence[Sequence[int]] | None = None,
               tag: dict | None = None, corpora: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The extra inputs of many prepared clips (one row per clip). With ``speaker_norm`` each
        clip is normalised with its speaker's statistics (no labels): by default from all of that
        speaker's clips here; with ``enrolment``, from the clips at ``enrolment[k]`` for clip ``k``
        (shrunk towards the training data's, as :class:`SpeakerStatistics` does). ``adapt=False``
        is the cold start: the training data's statistics for everyone (each clip's corpus's, given
        ``corpora``, when the model has them). ``tag`` marks waves that are not the files' own in the
        descriptor cache (:func:`~ser_lib.data.features.descriptor_matrix`)."""
        table = (descriptor_matrix(paths, waves, self.audio, version=self.descriptor_version,
                                   descriptor_set=self.descriptor_set, tag=tag)
                 if self.descriptors is not None else None)
        described = (lambda k: None) if table is None else (lambda k: table[k])  # noqa: E731
        corpus = (lambda k: None) if corpora is None else (lambda k: corpora[k])  # noqa: E731
        heard: list[SpeakerStatistics | None] = [None] * len(waves)
        if self.speaker_norm and adapt:
            if enrolment is None:
                groups: dict = {}
                for k, speaker in enumerate(speakers):
                    groups.setdefault(speaker, []).append(k)
                enrolment = [groups[speaker] for speaker in speakers]
            frames: dict[int, RunningStats] = {}  # each enrolled clip's log-mel statistics, computed once
            built: dict[tuple, SpeakerStatistics] = {}
            for k, members in enumerate(enrolment):
                members = tuple(sorted(members))
                if (members, corpus(k)) not in built:
                    built[members, corpus(k)] = self._enrolled(members, waves, frames, described, corpus(k))
                heard[k] = built[members, corpus(k)]
        rows = [self.clip_inputs(wave, heard[k], described(k), corpus(k)) for k, wave in enumerate(waves)]
        return {key: np.stack([row[key] for row in rows]) for key in (rows[0] if rows else {})}

    def _enrolled(self, members: tuple[int, ...], waves: Sequence[np.ndarray], frames: dict[int, RunningStats],
                  described, corpus: str | None) -> SpeakerStatistics:
        """A speaker's statistics from the clips at ``members`` (their log-mel statistics cached in ``frames``),
        shrunk towards ``corpus``'s training statistics."""
        speaker = self.new_speaker(corpus)
        for k in members:
            if self.mel is not None and len(waves[k]) >= self.mel_settings.n_fft:
                if k not in frames:
                    frames[k] = RunningStats(self.mel_settings.n_mels)
                    frames[k].update(self.log_mel_frames(waves[k]))
                speaker.mel.merge(frames[k])
            speaker.update(descriptors=described(k))
        return speaker
