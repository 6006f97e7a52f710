"""The RAVDESS naming convention and the clip table (notebook 01 decodes it step by step).

A RAVDESS file name has seven two-digit fields, ``MM-VV-EE-II-SS-RR-AA.wav``:
modality (01 audio-video, 02 video-only, 03 audio-only), vocal channel (01 speech, 02 song),
emotion (01-08, see :data:`EMOTIONS`), intensity (01 normal, 02 strong; neutral has no strong),
statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the door"), repetition
(01, 02) and actor (01-24; odd actors are male, even actors female). Files live in ``Actor_AA/``.

:func:`scan` walks a dataset root and returns the clip table together with every problem it met;
:func:`index` returns just the table and warns about the problems. Nothing is dropped silently.
"""
from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import soundfile as sf

from ..errors import DatasetError
from . import audio, labels

log = logging.getLogger(__name__)

#: RAVDESS emotion codes and their canonical names (:data:`ser_lib.data.labels.EMOTIONS` is in code order).
EMOTIONS: dict[int, str] = dict(enumerate(labels.EMOTIONS, start=1))
INTENSITIES: dict[int, str] = {1: "normal", 2: "strong"}
STATEMENTS: dict[int, str] = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
MODALITIES: dict[int, str] = {1: "audio-video", 2: "video-only", 3: "audio-only"}
CHANNELS: dict[int, str] = {1: "speech", 2: "song"}

AUDIO_SUFFIXES = audio.SUPPORTED_SUFFIXES
COLUMNS = [
    "path", "file", "actor", "gender", "emotion", "emotion_code", "intensity", "statement",
    "repetition", "duration", "sample_rate", "channels",
]

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


@dataclass(frozen=True)
class Problem:
    """A file that is not in the clip table, and why."""

    path: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.path}: {self.message}"


@dataclass
class ScanResult:
    """The clip table and the problems met while building it."""

    clips: pd.DataFrame
    problems: list[Problem]


def scan(root: str | Path, *, speech_only: bool = True, read_headers: bool = True) -> ScanResult:
    """Walk ``root/Actor_XX/`` folders and build the clip table (one row per usable clip).

    Files that cannot be used are listed as :class:`Problem` entries: malformed names, an actor
    number that disagrees with its folder, song or video files (unless ``speech_only=False``),
    non-audio files, zero-byte, unreadable or truncated audio, and second copies of a recording (a
    copy in a sub-folder, or the same clip in two formats). ``read_headers`` reads each file's header
    (duration, sample rate, channels) and is what detects unreadable and truncated files.
    """
    root = Path(root).expanduser()
    actor_dirs = _actor_folders(root)
    rows: list[dict] = []
    problems: list[Problem] = []
    for stray in sorted(root.iterdir()):
        if stray.is_file() and stray.suffix.lower() in AUDIO_SUFFIXES:
            problems.append(Problem(str(stray), "outside_actor_folder",
                                    "audio file outside any Actor_XX/ folder: move it into its actor's folder"))
    for actor_dir in actor_dirs:
        folder_actor = int(_ACTOR_DIR.match(actor_dir.name).group(1))
        found = []
        for path in sorted(p for p in actor_dir.rglob("*") if not p.is_dir()):
            row, problem = _clip_row(path, folder_actor, speech_only, read_headers)
            problems += [problem] if problem is not None else []
            found += [(path, row)] if row is not None else []
        kept, copies = _without_copies(found, actor_dir)
        rows += kept
        problems += copies
    clips = pd.DataFrame(rows, columns=COLUMNS)
    if clips.empty:
        detail = f" {len(problems)} files were rejected, e.g. {problems[0]}." if problems else ""
        raise DatasetError(f"dataset root {root} has Actor_XX/ folders but no usable speech clips.{detail}")
    clips = clips.sort_values(["actor", "file"], kind="stable").reset_index(drop=True)
    clips["actor"] = clips["actor"].astype(int)
    return ScanResult(clips, problems)


def _actor_folders(root: Path) -> list[Path]:
    """The ``Actor_XX`` folders of a dataset root, or :class:`DatasetError` saying what is wrong."""
    if not root.exists():
        raise DatasetError(
            f"dataset root {root} does not exist. Get RAVDESS with "
            f"`python -m ser_lib download --root {root}`, or write the synthetic corpus with "
            f"`python -m ser_lib synth --out {root}`."
        )
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} is a file, not a folder of Actor_XX/ folders.")

    actor_dirs = sorted(p for p in root.iterdir() if p.is_dir() and _ACTOR_DIR.match(p.name))
    if not actor_dirs:
        nested = sorted({p.parent for p in root.glob("*/Actor_[0-9][0-9]") if p.is_dir()})
        hint = f" The Actor folders seem to be in {nested[0]}: use that as the root." if nested else ""
        raise DatasetError(
            f"dataset root {root} holds no Actor_XX/ folders, so there are no RAVDESS clips to "
            f"index.{hint}"
        )
    return actor_dirs


def _without_copies(found: list[tuple[Path, dict]], actor_dir: Path) -> tuple[list[dict], list[Problem]]:
    """One row per recording: of files with the same name stem, the one directly in the actor's folder
    in the first format of :data:`AUDIO_SUFFIXES` is kept; the others are reported."""
    by_stem: dict[str, list[tuple[Path, dict]]] = {}
    for path, row in found:
        by_stem.setdefault(path.stem, []).append((path, row))
    rows, problems = [], []
    for copies in by_stem.values():
        copies.sort(key=lambda pr: (len(pr[0].relative_to(actor_dir).parts), AUDIO_SUFFIXES.index(pr[0].suffix.lower())))
        rows.append(copies[0][1])
        problems += [Problem(str(path), "duplicate", f"another copy of {copies[0][0]} (used instead); one recording "
                                                     f"counts once") for path, _ in copies[1:]]
    return rows, problems


def _clip_row(path: Path, folder_actor: int, speech_only: bool,
              read_headers: bool) -> tuple[dict | None, Problem | None]:
    """One clip-table row for ``path``, or the problem that keeps it out."""
    suffix = path.suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        kind = "video" if suffix in (".mp4", ".mov", ".avi", ".mkv") else "not_audio"
        return None, Problem(str(path), kind, f"not an audio file ({suffix or 'no suffix'}); ignored")
    try:
        name = ClipName.parse(path.name)
    except ValueError as err:
        return None, Problem(str(path), "malformed_name", str(err))
    if name.actor != folder_actor:
        return None, Problem(str(path), "actor_mismatch",
                             f"name says actor {name.actor:02d} but the file is in Actor_{folder_actor:02d}/")
    if speech_only and not name.is_speech:
        what = f"{MODALITIES[name.modality]} {CHANNELS[name.channel]}"
        return None, Problem(str(path), "not_speech",
                             f"{what} file, not audio-only speech; pass speech_only=False to keep it")
    duration, sample_rate, channels = float("nan"), 0, 0
    if path.stat().st_size == 0:
        return None, Problem(str(path), "empty", "zero-byte file")
    if read_headers:
        try:
            info = sf.info(str(path))
        except Exception as err:  # libsndfile raises several types for broken files
            return None, Problem(str(path), "unreadable", f"cannot read audio header ({err})")
        if info.frames == 0:
            return None, Problem(str(path), "empty", "audio file with no samples")
        cut = audio.truncated_wav(info)
        if cut is not None:
            return None, Problem(str(path), "truncated", f"the header announces {cut[0]:.2f} s but the file holds "
                                                         f"{cut[1]:.2f} s: an incomplete download or copy (fetch it again)")
        duration, sample_rate, channels = info.frames / info.samplerate, info.samplerate, info.channels
    row = {
        "path": str(path.resolve()),
        "file": path.name,
        "actor": name.actor,
        "gender": name.gender,
        "emotion": EMOTIONS[name.emotion],
        "emotion_code": name.emotion,
        "intensity": INTENSITIES[name.intensity],
        "statement": name.statement,
        "repetition": name.repetition,
        "duration": duration,
        "sample_rate": sample_rate,
        "channels": channels,
    }
    return row, None


def index(root: str | Path, *, speech_only: bool = True, strict: bool = False) -> pd.DataFrame:
    """The clip table of a RAVDESS-layout folder (see :func:`scan`).

    Problems are reported as one ``UserWarning`` that lists them; ``strict=True`` raises
    :class:`DatasetError` instead.
    """
    result = scan(root, speech_only=speech_only)
    if result.problems:
        listing = "\n  ".join(str(p) for p in result.problems[:20])
        more = f"\n  ... and {len(result.problems) - 20} more" if len(result.problems) > 20 else ""
        message = f"{len(result.problems)} files in {root} are not in the clip table:\n  {listing}{more}"
        if strict:
            raise DatasetError(message)
        warnings.warn(message, UserWarning, stacklevel=2)
    return result.clips


def one_per_emotion(clips: pd.DataFrame, actor: int | None = None, intensity: str = "strong",
                    statement: int = 1) -> pd.DataFrame:
    """One clip per emotion of one actor (the first by default), for listening and figures.

    Neutral has only normal intensity, so it is taken at normal intensity.
    """
    actor = actor if actor is not None else int(clips["actor"].min())
    pick = clips[(clips["actor"] == actor) & (clips["statement"] == statement) & (clips["repetition"] == 1)]
    pick = pick[(pick["intensity"] == intensity) | (pick["emotion"] == "neutral")]
    return pick.drop_duplicates("emotion").sort_values("emotion_code").reset_index(drop=True)


def summary_tables(clips: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Counts a reader checks first: clips per actor and emotion, per emotion and intensity, per gender."""
    order = [e for e in labels.EMOTIONS if e in set(clips["emotion"])]
    named = clips.assign(actor=clips["actor"].map(lambda a: f"{a:02d}"))
    per_actor = pd.crosstab([named["actor"], named["gender"]], named["emotion"])[order]
    per_actor["total"] = per_actor.sum(axis=1)
    per_emotion = pd.crosstab(clips["emotion"], clips["intensity"], margins=True, margins_name="total")
    per_emotion = per_emotion.loc[order + ["total"]]
    per_gender = clips.groupby("gender").agg(clips=("file", "size"), actors=("actor", "nunique"))
    return {"actor": per_actor, "emotion": per_emotion, "gender": per_gender}


def format_summary(result: ScanResult, root: str | Path | None = None) -> str:
    """A plain-text summary of a scan: totals, the count tables and the problem list."""
    clips = result.clips
    tables = summary_tables(clips)
    genders = tables["gender"]["actors"].to_dict()
    where = f" in {root}" if root is not None else ""
    lines = [
        f"{len(clips)} clips{where}: {clips['actor'].nunique()} actors ({genders.get('male', 0)} male, "
        f"{genders.get('female', 0)} female), {clips['emotion'].nunique()} emotions, "
        f"{clips['duration'].sum() / 60:.1f} minutes of audio",
        f"sample rates: {', '.join(f'{r} Hz' for r in sorted(clips['sample_rate'].unique()))}; "
        f"{int((clips['channels'] > 1).sum())} multi-channel files (downmixed to mono on load)",
        "", "Clips per actor and emotion:", tables["actor"].to_string(),
        "", "Clips per emotion and intensity:", tables["emotion"].to_string(),
        "", "Clips per gender:", tables["gender"].to_string(), "",
    ]
    if result.problems:
        lines.append(f"{len(result.problems)} problems (files left out of the clip table):")
        lines += [f"  {p}" for p in result.problems]
    else:
        lines.append("No problems found.")
    return "\n".join(lines)


def actors_of(clips: pd.DataFrame) -> list[int]:
    """Sorted actor numbers present in a clip table."""
    return sorted(int(a) for a in clips["actor"].unique())
