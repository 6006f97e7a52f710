"""Corpora: every supported layout turns a folder into the common clip table (see :mod:`.base`).

``ravdess`` (and ``synthetic``, the built-in corpus in the RAVDESS layout), ``cremad``, ``tess``,
``savee``, ``emodb``, and ``folder`` (your own recordings). A run names its data as
``NAME=PATH`` (:class:`Dataset`), several at once; :func:`scan` builds one clip table of all of them,
speakers namespaced by corpus.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from ...errors import DatasetError
from . import base
from .base import CLIP_COLUMNS, Corpus, Problem, ScanResult, natural_key, speaker_id, speakers_of
from .cremad import CremaD
from .emodb import EmoDB
from .folder import Folder
from .ravdess import RAVDESS, Synthetic
from .savee import SAVEE
from .tables import few_clips_note, format_summary, one_per_emotion, summary_tables
from .tess import TESS

CORPORA: dict[str, Corpus] = {c.name: c for c in (RAVDESS(), Synthetic(), CremaD(), TESS(), SAVEE(), EmoDB(), Folder())}

__all__ = ["CLIP_COLUMNS", "CORPORA", "Corpus", "Dataset", "Problem", "ScanResult", "few_clips_note",
           "format_summary", "get", "index", "natural_key", "one_per_emotion", "scan", "speaker_id", "speakers_of",
           "summary_tables"]


def get(name: str) -> Corpus:
    """The adapter of a corpus by name."""
    if name not in CORPORA:
        raise DatasetError(f"unknown corpus {name!r}; ser_lib reads {', '.join(CORPORA)}")
    return CORPORA[name]


@dataclass(frozen=True)
class Dataset:
    """A corpus and the folder it is in (``NAME=PATH``); ``synthetic`` needs no path."""

    corpus: str
    root: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Dataset":
        """``ravdess=/data/RAVDESS`` (or ``synthetic``) as a :class:`Dataset`."""
        name, sep, root = str(text).partition("=")
        name = name.strip().lower()
        get(name)
        if name != "synthetic" and not root.strip():
            raise DatasetError(f"give the folder of {name} as {name}=PATH")
        return cls(name, str(Path(root.strip()).expanduser().resolve()) if root.strip() else None)

    def folder(self, progress: bool = True) -> Path:
        """The dataset's folder (the built-in synthetic corpus is generated on first use)."""
        if self.root is None:
            from .. import synth

            return synth.default_corpus(progress=progress)
        return Path(self.root)

    def __str__(self) -> str:
        return self.corpus if self.root is None else f"{self.corpus}={self.root}"


def scan(datasets: Sequence[Dataset], progress: bool = True, adapters: dict[str, Corpus] | None = None) -> ScanResult:
    """One clip table of several datasets (their own columns side by side), problems and notes of all
    (``adapters``: other adapters by corpus name, e.g. RAVDESS with song files)."""
    names = [d.corpus for d in datasets]
    if len(set(names)) != len(names):
        raise DatasetError(f"a corpus is given twice ({', '.join(names)}): one folder per corpus")
    results = [_scan_one((adapters or {}).get(d.corpus, get(d.corpus)), d.folder(progress)) for d in datasets]
    if len(results) == 1:
        return results[0]
    clips = pd.concat([r.clips for r in results], ignore_index=True)
    return ScanResult(clips, [p for r in results for p in r.problems], [n for r in results for n in r.notes])


def _scan_one(corpus: Corpus, root: Path) -> ScanResult:
    """``corpus.scan(root)``; a folder of another layout gets a hint which corpus it looks like."""
    try:
        result = corpus.scan(root)
    except DatasetError as err:
        guess = looks_like(root, exclude=corpus.name) if root.is_dir() else None
        if guess is None:
            raise
        raise DatasetError(f"{err} Its files look like {CORPORA[guess].title}: give it as --dataset "
                           f"{guess}={root}") from None
    check_not_mixed(corpus, root, result)
    return result


def check_not_mixed(corpus: Corpus, root: Path, result: ScanResult) -> None:
    """Refuse a folder whose left-out files are named as another corpus's: clips of two corpora in one
    folder would be half read (:class:`DatasetError` saying how many of which)."""
    others: dict[str, list[str]] = {}
    for problem in result.problems:
        if problem.kind not in ("malformed_name", "outside_actor_folder"):
            continue
        path = Path(problem.path)
        for name, other in CORPORA.items():
            if name in (corpus.name, "synthetic", "folder"):
                continue
            if other.names_a_clip(path):
                others.setdefault(other.title, []).append(path.name)
                break
    if others:
        found = "; ".join(f"{len(files)} named as {title}'s (e.g. {files[0]})" for title, files in others.items())
        raise DatasetError(f"{root} mixes corpora: beside its {len(result.clips)} {corpus.title} clips, {found}. "
                           f"Put each corpus in a folder of its own and give each as --dataset NAME=PATH")


def looks_like(root: Path, exclude: str = "", sample: int = 50) -> str | None:
    """The corpus whose names most of a folder's first audio files follow, if any."""
    files = [p for p in base.audio_files(root) if base.not_audio(p) is None][:sample]
    best, best_count = None, 0
    for name, corpus in CORPORA.items():
        if name in (exclude, "synthetic", "folder"):
            continue
        context = {}  # name parsing only (demographics and the like are not needed to recognise a layout)
        count = sum(isinstance(corpus.parse(p, root, context), base.Parsed) for p in files)
        if count > best_count:
            best, best_count = name, count
    return best if files and best_count >= len(files) / 2 else None


def datasets_of(dataset: Sequence[str] | None = None, dataset_root: str | None = None) -> list[Dataset]:
    """The datasets named by ``--dataset NAME=PATH`` options and ``--dataset_root`` (RAVDESS), or None given."""
    given = [Dataset.parse(text) for text in dataset or ()]
    return ([Dataset.parse(f"ravdess={dataset_root}")] if dataset_root else []) + given


def index(root: str | Path, corpus: str = "ravdess", *, strict: bool = False) -> pd.DataFrame:
    """The clip table of one folder; the files left out are listed in one ``UserWarning``
    (``strict=True``: :class:`DatasetError` instead)."""
    adapter = get(corpus)
    result = adapter.scan(root)
    check_not_mixed(adapter, Path(root), result)
    if result.problems or result.notes:
        listing = "\n  ".join(str(p) for p in result.problems[:20])
        more = f"\n  ... and {len(result.problems) - 20} more" if len(result.problems) > 20 else ""
        message = "\n".join(result.notes + ([f"{len(result.problems)} files in {root} are not in the clip table:\n  "
                                             f"{listing}{more}"] if result.problems else []))
        if strict:
            raise DatasetError(message)
        warnings.warn(message, UserWarning, stacklevel=2)
    return result.clips
