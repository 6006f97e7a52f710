"""Your own recordings: a folder per emotion, or a CSV that lists the clips.

Two layouts, so a course reader can record themselves and test a model on their own voice:

* folders: ``ROOT/angry/*.wav``, ``ROOT/neutral/*.wav``, ... (one speaker, named after ``ROOT``), or
  ``ROOT/SPEAKER/angry/*.wav`` for several speakers;
* a CSV file with the columns ``path`` (relative to the CSV's folder, or absolute), ``emotion`` and
  ``speaker``, and optionally ``gender`` (``male``/``female``).

Emotions are the eight canonical names or a common synonym (``anger``, ``happiness``, ``fear``,
``sadness``, ``surprise``, ``disgusted``, ...); anything else is reported with the names it accepts.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import DatasetError
from .. import labels
from .base import Corpus, Parsed, Problem, ScanResult, clip_row

SYNONYMS = {"anger": "angry", "mad": "angry", "happiness": "happy", "joy": "happy", "sadness": "sad",
            "fear": "fearful", "afraid": "fearful", "scared": "fearful", "surprise": "surprised",
            "disgusted": "disgust", "relaxed": "calm"}
CSV_COLUMNS = ("path", "emotion", "speaker")


def canonical_emotion(name: str) -> str | None:
    """The canonical emotion a label means (case and common synonyms forgiven), or None."""
    key = str(name).strip().lower()
    return key if key in labels.EMOTIONS else SYNONYMS.get(key)


class Folder(Corpus, name="folder", title="your recordings", codes={**{e: e for e in labels.EMOTIONS}, **SYNONYMS},
             layout="ROOT/<emotion>/*.wav, ROOT/<speaker>/<emotion>/*.wav, or a CSV with columns path, emotion, "
                    "speaker (and optionally gender)"):
    """A folder of emotion folders, or a CSV (see the module's docstring)."""

    def check_root(self, root: str | Path) -> Path:
        root = Path(root).expanduser()
        return root if root.is_file() and root.suffix.lower() == ".csv" else super().check_root(root)

    def scan(self, root: str | Path, *, read_headers: bool = True) -> ScanResult:
        root = self.check_root(root)
        return self._scan_csv(root, read_headers) if root.is_file() else super().scan(root, read_headers=read_headers)

    def parse(self, path: Path, root: Path, context: dict) -> Parsed | Problem | None:
        parts = path.relative_to(root).parts[:-1]
        emotion = canonical_emotion(parts[-1]) if parts else None
        if emotion is None or len(parts) > 2:
            return Problem(str(path), "no_emotion_folder", f"not in an emotion folder ({self.layout}); folder names: "
                                                           f"{', '.join(labels.EMOTIONS)}")
        speaker = parts[0] if len(parts) == 2 else root.name
        return Parsed(speaker, "unknown", emotion, {})

    def _scan_csv(self, table_path: Path, read_headers: bool) -> ScanResult:
        try:
            table = pd.read_csv(table_path, dtype=str).fillna("")
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
            raise DatasetError(f"{table_path} cannot be read as CSV ({err})") from None
        missing = [c for c in CSV_COLUMNS if c not in table.columns]
        if missing:
            raise DatasetError(f"{table_path} has no column {', '.join(missing)}: a clip list needs the columns "
                               f"{', '.join(CSV_COLUMNS)} (and optionally gender); it has {', '.join(table.columns)}")
        found, problems = [], []
        for record in table.to_dict("records"):
            path = Path(record["path"]).expanduser()
            path = path if path.is_absolute() else table_path.parent / path
            emotion = canonical_emotion(record["emotion"])
            gender = record.get("gender", "").strip().lower() or "unknown"
            if not path.is_file():
                problems.append(Problem(str(path), "missing", "listed in the CSV, a folder, not an audio file"
                                        if path.is_dir() else "listed in the CSV but not found"))
            elif emotion is None:
                problems.append(Problem(str(path), "unknown_emotion", f"unknown emotion {record['emotion']!r}: use one "
                                                                      f"of {', '.join(labels.EMOTIONS)}"))
            elif not record["speaker"].strip():
                problems.append(Problem(str(path), "no_speaker", "the CSV gives no speaker for this clip"))
            else:
                row, problem = clip_row(path, self.name, record["speaker"].strip(), gender if gender in
                                        ("male", "female") else "unknown", emotion, {}, read_headers)
                found += [(path, row)] if row is not None else []
                problems += [problem] if problem is not None else []
        return self.finish(table_path, found, problems)
