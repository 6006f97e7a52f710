"""Enrolment protocols: which of a test speaker's clips give the statistics a clip is normalised with.

A model with per-speaker normalisation needs some unlabelled audio of the speaker. How much, and of
what kind, changes its accuracy, and a user of the live demo gives far less than a corpus does:

* ``none`` - the cold start: nothing of the speaker (the training data's statistics, those of the
  speaker's corpus for a model trained on several);
* ``all`` - every clip of the speaker in the evaluation, the clip being classified included (the
  transductive protocol of most published per-speaker normalisation results);
* ``K`` (a positive integer) - K clips of the speaker drawn at random (seeded), never the clip being
  classified: what a user gives after K utterances;
* with ``emotions`` - the clips are drawn from those emotions only (e.g. ``neutral``: a user who
  reads a few sentences calmly), never the clip being classified. The labels choose the enrolment
  clips only; the model never sees them.

The statistics are those of :class:`~ser_lib.model.normalizer.SpeakerStatistics`, exactly as in the
live demo: the speaker's shrunk towards the training data's, so a few clips move them a little.
``evaluate --adapt none|all|K --adapt_emotions NAMES`` chooses the headline protocol; the report
also gives the cold start and ``all``. Training shows the model a few clips' statistics too
(``--enrolment_rate``, :data:`TRAINING_ENROLMENTS`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..data import labels as emotion_labels
from ..errors import ConfigError


@dataclass(frozen=True)
class Enrolment:
    """One protocol: ``clips`` per test clip (``None``: all of the speaker's, ``0``: none), drawn
    from ``emotions`` only when given, with ``seed``."""

    clips: int | None = None
    emotions: tuple[str, ...] = ()
    seed: int = 0

    @classmethod
    def parse(cls, adapt: str | int, emotions: str | Sequence[str] | None = None, seed: int = 0) -> "Enrolment":
        """From ``--adapt`` (``none``, ``all`` or a positive integer) and ``--adapt_emotions`` (names,
        comma-separated or a list)."""
        text = str(adapt).strip().lower()
        if text in ("none", "0"):
            clips = 0
        elif text == "all":
            clips = None
        elif text.isdigit():
            clips = int(text)
        else:
            raise ConfigError(f"--adapt must be none, all or a number of clips, got {adapt!r}")
        names = tuple(e.strip() for e in emotions.split(",") if e.strip()) if isinstance(emotions, str) \
            else tuple(emotions or ())
        unknown = [e for e in names if e not in emotion_labels.EMOTIONS]
        if unknown:
            raise ConfigError(f"--adapt_emotions: unknown emotion(s) {', '.join(unknown)}; known: "
                              f"{', '.join(emotion_labels.EMOTIONS)}")
        if clips == 0 and names:
            raise ConfigError("--adapt_emotions chooses enrolment clips, and --adapt none has none: leave one out")
        return cls(clips, names, seed)

    @property
    def cold(self) -> bool:
        return self.clips == 0

    @property
    def key(self) -> str:
        """The ``--adapt`` value, with the emotions after a colon (``none``, ``all``, ``10``, ``3:neutral``)."""
        base = "none" if self.cold else "all" if self.clips is None else str(self.clips)
        return base + (":" + "+".join(self.emotions) if self.emotions else "")

    @property
    def name(self) -> str:
        """The protocol's name in ``metrics.json``: ``cold_start``, ``adapted``, ``adapted_10``,
        ``adapted_3_neutral``."""
        if self.cold:
            return "cold_start"
        parts = ["adapted"] + ([str(self.clips)] if self.clips is not None else []) + list(self.emotions)
        return "_".join(parts)

    def describe(self, own_corpora: Sequence[str] = ()) -> str:
        """A phrase for reports; ``own_corpora``: the corpora whose speakers start from (and are shrunk
        towards) their own corpus's training statistics instead of the pooled ones."""
        own = ", ".join(own_corpora)
        if self.cold:
            if own:
                return (f"cold start (the training statistics of the speaker's corpus for {own}, else the "
                        "pooled ones: nothing of the speaker)")
            return "cold start (the training data's statistics: nothing of the speaker)"
        if self.clips is None and not self.emotions:
            phrase = "each speaker's own statistics (all their clips, unlabelled)"
        else:
            count = "all" if self.clips is None else f"{self.clips} random"
            kind = f" {'/'.join(self.emotions)}" if self.emotions else ""
            phrase = f"each speaker's statistics from {count}{kind} clip(s) of theirs, never the clip classified"
        if own:
            phrase += (f"; shrunk towards the training statistics of the speaker's corpus for {own}, "
                       "else the pooled ones")
        return phrase

    def draw(self, clips: pd.DataFrame) -> list[list[int]] | None:
        """For each row of ``clips`` (columns ``speaker`` and ``emotion``), the rows whose audio gives its
        speaker statistics; ``None`` for the cold start."""
        if self.cold:
            return None
        speakers = clips["speaker"].to_numpy()
        allowed = clips["emotion"].isin(self.emotions).to_numpy() if self.emotions else np.ones(len(clips), bool)
        rng = np.random.default_rng(self.seed)
        pools = {s: np.flatnonzero((speakers == s) & allowed) for s in pd.unique(speakers)}
        if self.clips is None and not self.emotions:
            return [pools[s].tolist() for s in speakers]
        chosen = []
        for k, speaker in enumerate(speakers):
            pool = pools[speaker][pools[speaker] != k]
            if self.clips is not None and len(pool) > self.clips:
                pool = np.sort(rng.choice(pool, self.clips, replace=False))
            chosen.append(pool.tolist())
        return chosen


#: The protocols every evaluation of a speaker-normalised model reports beside its headline.
COLD_START, ALL_CLIPS = Enrolment(0), Enrolment(None)
#: The few-clip statistics training shows with ``--enrolment_rate`` (seeds offset from the run's).
TRAINING_ENROLMENTS = (Enrolment(1), Enrolment(1, seed=1), Enrolment(3), Enrolment(3, seed=1), Enrolment(10),
                       Enrolment(10, seed=1), Enrolment(None, ("neutral",)))
