"""What every corpus adapter shares: the common clip table, problems, headers, copies, speakers.

A corpus adapter (:class:`Corpus`) turns a folder laid out as that corpus is published into the
common clip table, one row per usable clip:

* ``path``, ``file``, ``corpus``;
* ``speaker`` - namespaced by corpus (``ravdess:01``, ``cremad:1002``), so two corpora never share a
  speaker in a split, a K-fold or a per-speaker statistic;
* ``gender`` (``male``, ``female`` or ``unknown``), ``emotion`` (a canonical name of
  :data:`ser_lib.data.labels.EMOTIONS`), ``duration``, ``sample_rate``, ``channels``;
* the corpus's own columns (RAVDESS: actor, intensity, statement, repetition; CREMA-D: sentence,
  intensity; ...).

Every file left out is reported as a :class:`Problem` with the reason; nothing is dropped silently.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import soundfile as sf

from ...errors import DatasetError
from .. import audio, labels

#: The columns every clip table has, in this order (a corpus adds its own after them).
CLIP_COLUMNS = ["path", "file", "corpus", "speaker", "gender", "emotion", "duration", "sample_rate", "channels"]
GENDERS = ("male", "female", "unknown")
#: Files that come with a corpus but hold no clip; passed over without a problem.
DOCUMENTS = (".md", ".txt", ".csv", ".json", ".pdf", ".html", ".xlsx", ".ods", ".doc", ".docx", ".rtf")


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
    """The clip table, the files left out, and notes about the corpus as a whole."""

    clips: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def speaker_id(corpus: str, local: str) -> str:
    """The namespaced speaker id (``ravdess:01``)."""
    return f"{corpus}:{local}"


def natural_key(text: str) -> tuple:
    """Sort key that orders ``ravdess:2`` before ``ravdess:10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text)))


def speakers_of(clips: pd.DataFrame) -> list[str]:
    """The speakers of a clip table, sorted by corpus and (numerically) by local id."""
    return sorted(clips["speaker"].unique(), key=natural_key)


@dataclass(frozen=True)
class Parsed:
    """What a file's name and place say about its clip."""

    speaker: str                 # local id, namespaced by :func:`speaker_id`
    gender: str
    emotion: str                 # canonical name
    extra: dict = field(default_factory=dict)


class Corpus:
    """A corpus layout: :meth:`scan` builds the clip table; a subclass says how to read a file's name
    and place (:meth:`parse`), and may read corpus-wide information first (:meth:`context`). A subclass
    names its corpus in its class statement: ``class CremaD(Corpus, name="cremad", title="CREMA-D", ...)``."""

    name: str = ""
    title: str = ""
    #: The corpus's emotion codes and the canonical names they mean.
    codes: dict = {}
    #: Its own columns, after :data:`CLIP_COLUMNS`.
    columns: tuple[str, ...] = ()
    #: The layout this adapter expects, for error messages.
    layout: str = ""
    #: Where to get the corpus, for a folder that does not exist.
    source: str = ""

    def __init_subclass__(cls, **attributes) -> None:
        super().__init_subclass__()
        for key, value in attributes.items():
            setattr(cls, key, value)

    @property
    def emotions(self) -> tuple[str, ...]:
        """The canonical emotions this corpus has, in :data:`~ser_lib.data.labels.EMOTIONS` order."""
        return tuple(e for e in labels.EMOTIONS if e in set(self.codes.values()))

    def context(self, root: Path) -> tuple[dict, list[str]]:
        """Corpus-wide information the names need (e.g. a demographics table), and notes about it."""
        return {}, []

    def parse(self, path: Path, root: Path, context: dict) -> Parsed | Problem | None:
        """The clip an audio file holds, the problem that keeps it out, or None to pass over it silently."""
        raise NotImplementedError

    def names_a_clip(self, path: Path) -> bool:
        """Whether a file's name (and its folder) is one of this corpus's: tells a folder that mixes corpora."""
        return isinstance(self.parse(path, path.parent, {}), Parsed)

    def scan(self, root: str | Path, *, read_headers: bool = True) -> ScanResult:
        """The clip table of ``root`` and every file left out, with the reason."""
        root = self.check_root(root)
        context, notes = self.context(root)
        found, problems = [], []
        for path in audio_files(root):
            if path.suffix.lower() in DOCUMENTS:  # a corpus's README, licence, demographics: not clips
                continue
            parsed = not_audio(path) or self.parse(path, root, context)
            if isinstance(parsed, Parsed):
                row, parsed = clip_row(path, self.name, parsed.speaker, parsed.gender, parsed.emotion, parsed.extra,
                                       read_headers)
                found += [(path, row)] if row is not None else []
            problems += [parsed] if isinstance(parsed, Problem) else []
        return self.finish(root, found, problems, notes)

    def check_root(self, root: str | Path) -> Path:
        """``root`` as a folder, or :class:`DatasetError` saying what to do."""
        root = Path(root).expanduser()
        if not root.exists():
            raise DatasetError(f"dataset root {root} does not exist ({self.title}: {self.layout}). "
                               f"{self.source.format(root=root)}".strip())
        if not root.is_dir():
            raise DatasetError(f"dataset root {root} is a file, not a folder ({self.title}: {self.layout}).")
        return root

    def finish(self, root: Path, found: list[tuple[Path, dict]], problems: list[Problem],
               notes: list[str] | None = None) -> ScanResult:
        """The clip table of the rows found (second copies of a recording reported), sorted by speaker."""
        rows, copies = without_copies(found)
        problems = problems + copies
        clips = pd.DataFrame(rows, columns=CLIP_COLUMNS + list(self.columns))
        if clips.empty:
            detail = f" {len(problems)} files were left out, e.g. {problems[0]}." if problems else ""
            raise DatasetError(f"{root} holds no usable clips ({self.title}; expected: {self.layout}).{detail}")
        order = sorted(range(len(clips)), key=lambda i: (natural_key(clips["speaker"].iloc[i]), clips["file"].iloc[i]))
        return ScanResult(clips.iloc[order].reset_index(drop=True), problems, notes or [])


def clip_row(path: Path, corpus: str, speaker: str, gender: str, emotion: str, extra: dict,
             read_headers: bool = True) -> tuple[dict | None, Problem | None]:
    """One clip-table row for ``path`` (header read: duration, rate, channels), or its problem:
    not audio, empty, unreadable or truncated."""
    problem = not_audio(path)
    if problem is not None:
        return None, problem
    if path.stat().st_size == 0:
        return None, Problem(str(path), "empty", "zero-byte file")
    duration, sample_rate, channels = float("nan"), 0, 0
    if read_headers:
        try:
            info = sf.info(str(path))
        except Exception as err:  # libsndfile raises several types for broken files
            return None, Problem(str(path), "unreadable", f"cannot read audio header ({err})")
        if info.frames == 0:
            return None, Problem(str(path), "empty", "audio file with no samples")
        cut = audio.truncated_wav(info)
        if cut is not None:
            return None, Problem(str(path), "truncated",
                                 f"the header announces {cut[0]:.2f} s but the file holds {cut[1]:.2f} s: "
                                 "an incomplete download or copy (fetch it again)")
        duration, sample_rate, channels = info.frames / info.samplerate, info.samplerate, info.channels
    row = {"path": str(path.resolve()), "file": path.name, "corpus": corpus, "speaker": speaker_id(corpus, speaker),
           "gender": gender, "emotion": emotion, "duration": duration, "sample_rate": sample_rate,
           "channels": channels, **extra}
    return row, None


def not_audio(path: Path) -> Problem | None:
    """The problem of a file whose suffix is not an audio format soundfile reads, else None."""
    suffix = path.suffix.lower()
    if suffix in audio.SUPPORTED_SUFFIXES:
        return None
    kind = "video" if suffix in (".mp4", ".mov", ".avi", ".mkv") else "not_audio"
    if kind == "video" or suffix in (".m4a", ".aac", ".wma", ".opus", ".webm", ".amr", ".3gp"):
        return Problem(str(path), kind, f"a format ser_lib does not read ({suffix}; it reads "
                                        f"{', '.join(audio.SUPPORTED_SUFFIXES)}): convert it, e.g. "
                                        f"`ffmpeg -i in{suffix} out.wav`; ignored")
    return Problem(str(path), kind, f"not an audio file ({suffix or 'no suffix'}); ignored")


def without_copies(found: list[tuple[Path, dict]]) -> tuple[list[dict], list[Problem]]:
    """One row per recording: of rows with the same speaker, emotion and file stem, the shallowest file
    in the first format of :data:`~ser_lib.data.audio.SUPPORTED_SUFFIXES` is kept; the others are reported."""
    by_clip: dict[tuple, list[tuple[Path, dict]]] = {}
    for path, row in found:
        by_clip.setdefault((row["speaker"], row["emotion"], path.stem), []).append((path, row))
    rows, problems = [], []
    for copies in by_clip.values():
        copies.sort(key=lambda pr: (len(pr[0].parts), audio.SUPPORTED_SUFFIXES.index(pr[0].suffix.lower())))
        rows.append(copies[0][1])
        problems += [Problem(str(path), "duplicate", f"another copy of {copies[0][0]} (used instead); one recording "
                                                     f"counts once") for path, _ in copies[1:]]
    return rows, problems


def audio_files(root: Path) -> list[Path]:
    """Every file below ``root`` (hidden folders such as ``.download`` skipped), sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".")
                                                                           for part in p.relative_to(root).parts))
