"""RAVDESS: the naming convention and the clip table (notebook 01 decodes it step by step).

A RAVDESS file name has seven two-digit fields, ``MM-VV-EE-II-SS-RR-AA.wav``:
modality (01 audio-video, 02 video-only, 03 audio-only), vocal channel (01 speech, 02 song),
emotion (01-08, see :data:`EMOTIONS`), intensity (01 normal, 02 strong; neutral has no strong),
statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the door"), repetition
(01, 02) and actor (01-24; odd actors are male, even actors female). Files live in ``Actor_AA/``.

:class:`RAVDESS` scans a dataset root into the common clip table (speakers ``ravdess:01`` ...,
plus the columns actor, emotion_code, intensity, statement, repetition) and reports every file it
leaves out. :class:`Synthetic` reads the built-in synthetic corpus, which has the same layout.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import labels
from .base import Corpus, Parsed, Problem

#: RAVDESS emotion codes and their canonical names (:data:`ser_lib.data.labels.EMOTIONS` is in code order).
EMOTIONS: dict[int, str] = dict(enumerate(labels.EMOTIONS, start=1))
INTENSITIES: dict[int, str] = {1: "normal", 2: "strong"}
STATEMENTS: dict[int, str] = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
MODALITIES: dict[int, str] = {1: "audio-video", 2: "video-only", 3: "audio-only"}
CHANNELS: dict[int, str] = {1: "speech", 2: "song"}

_ACTOR_DIR = re.compile(r"^Actor_(\d{2})$")
_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def gender_of(actor: int) -> str:
    """RAVDESS convention: odd-numbered actors are male, even-numbered actors female."""
    return "male" if actor % 2 == 1 else "female"


@dataclass(frozen=True)
class ClipName:
    """The seven fields of a RAVDESS file name."""

    modality: int
    channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int

    @classmethod
    def parse(cls, name: str) -> "ClipName":
        """Parse a file name (with or without suffix); raise ``ValueError`` saying what is wrong."""
        stem = Path(name).stem if "." in name else name
        match = _NAME.match(stem)
        if not match:
            raise ValueError(f"{name!r} is not of the form MM-VV-EE-II-SS-RR-AA (seven 2-digit fields)")
        fields = cls(*(int(g) for g in match.groups()))
        checks = [
            (fields.modality in MODALITIES, "modality must be 01-03"),
            (fields.channel in CHANNELS, "vocal channel must be 01 or 02"),
            (fields.emotion in EMOTIONS, "emotion must be 01-08"),
            (fields.intensity in INTENSITIES, "intensity must be 01 or 02"),
            (not (fields.emotion == 1 and fields.intensity == 2), "neutral has no strong intensity"),
            (fields.statement in STATEMENTS, "statement must be 01 or 02"),
            (fields.repetition in (1, 2), "repetition must be 01 or 02"),
            (1 <= fields.actor <= 99 and fields.actor != 0, "actor must be 01-99"),
        ]
        for ok, reason in checks:
            if not ok:
                raise ValueError(f"{name!r}: {reason}")
        return fields

    @property
    def is_speech(self) -> bool:
        """Audio-only speech: the part of RAVDESS this course uses."""
        return self.modality == 3 and self.channel == 1

    @property
    def gender(self) -> str:
        return gender_of(self.actor)

    def filename(self, suffix: str = ".wav") -> str:
        fields = (self.modality, self.channel, self.emotion, self.intensity, self.statement,
                  self.repetition, self.actor)
        return "-".join(f"{f:02d}" for f in fields) + suffix


class RAVDESS(Corpus, name="ravdess", title="RAVDESS", codes=EMOTIONS,
              columns=("actor", "emotion_code", "intensity", "statement", "repetition"),
              layout="Actor_01/ ... Actor_24/ folders of files named like 03-01-05-02-01-01-01.wav",
              source="Get RAVDESS with `python -m ser_lib download --root {root}`, or write the synthetic corpus "
                     "with `python -m ser_lib synth --out {root}`."):
    """The RAVDESS speech set: ``ROOT/Actor_XX/03-01-EE-II-SS-RR-XX.wav``."""
    """The RAVDESS speech set: ``ROOT/Actor_XX/03-01-EE-II-SS-RR-XX.wav``."""


    def __init__(self, speech_only: bool = True):
        self.speech_only = speech_only

    def names_a_clip(self, path: Path) -> bool:
        """Whether a file is named as a RAVDESS clip, wherever it lies."""
        try:
            ClipName.parse(path.name)
        except ValueError:
            return False
        return True

    def parse(self, path: Path, root: Path, context: dict) -> Parsed | Problem | None:
        """The clip of ``Actor_XX/<name>`` (the Actor folders may be a level or two down): malformed
        names, an actor number that disagrees with its folder, files outside any actor folder and
        (unless ``speech_only=False``) song or video files are problems."""
        folder = next((part for part in path.relative_to(root).parts[:-1] if _ACTOR_DIR.match(part)), None)
        if folder is None:
            return Problem(str(path), "outside_actor_folder", "audio file outside any Actor_XX/ folder: move it into "
                                                              "its actor's folder")
        try:
            name = ClipName.parse(path.name)
        except ValueError as err:
            return Problem(str(path), "malformed_name", str(err))
        if name.actor != int(_ACTOR_DIR.match(folder).group(1)):
            return Problem(str(path), "actor_mismatch",
                           f"name says actor {name.actor:02d} but the file is in {folder}/")
        if self.speech_only and not name.is_speech:
            return Problem(str(path), "not_speech", f"{MODALITIES[name.modality]} {CHANNELS[name.channel]} file, not "
                                                    f"audio-only speech; pass speech_only=False to keep it")
        return Parsed(f"{name.actor:02d}", name.gender, EMOTIONS[name.emotion],
                      {"actor": name.actor, "emotion_code": name.emotion, "intensity": INTENSITIES[name.intensity],
                       "statement": name.statement, "repetition": name.repetition})

class Synthetic(RAVDESS, name="synthetic", title="synthetic corpus"):
    """The built-in synthetic corpus (:mod:`ser_lib.data.synth`): the RAVDESS layout and names."""
