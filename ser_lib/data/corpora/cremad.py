"""CREMA-D (Cao et al., 2014): 91 actors, 12 sentences, 6 emotions, intensity levels for one sentence.

Files ``AudioWAV/1001_DFA_ANG_XX.wav`` (``.flac`` too): actor id 1001-1091, sentence code, emotion
(ANG, DIS, FEA, HAP, NEU, SAD: no calm, no surprise) and level (LO, MD, HI, or XX unspecified).
Each actor's sex comes from the corpus's ``VideoDemographics.csv`` (in the root or beside
``AudioWAV/``); without it the gender is ``unknown`` and a note says so.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ...errors import DatasetError
from .base import Corpus, Parsed, Problem

EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


class CremaD(Corpus, name="cremad", title="CREMA-D", codes=EMOTIONS, columns=("sentence", "intensity"),
             layout="AudioWAV/1001_DFA_ANG_XX.wav (or .flac) files, with VideoDemographics.csv",
             source="CREMA-D is at github.com/CheyneyComputerScience/CREMA-D (Open Database License)."):
    """CREMA-D's speakers are its actor ids; their sex comes from VideoDemographics.csv."""

    def context(self, root: Path) -> tuple[dict, list[str]]:
        return _demographics(root)

    def parse(self, path: Path, root: Path, context: dict) -> Parsed | Problem | None:
        match = _NAME.match(path.stem)
        if not match or match.group(3) not in EMOTIONS or match.group(4) not in LEVELS:
            return Problem(str(path), "malformed_name", f"{path.name!r} is not a CREMA-D name "
                           f"ACTOR_SENTENCE_EMOTION_LEVEL such as 1001_DFA_ANG_XX")
        actor, sentence, emotion, level = match.groups()
        return Parsed(actor, context.get(int(actor), "unknown"), EMOTIONS[emotion],
                      {"sentence": sentence, "intensity": LEVELS[level]})


def _demographics(root: Path) -> tuple[dict[int, str], list[str]]:
    """Each actor's sex (``male``/``female``) from VideoDemographics.csv, and a note when it is missing."""
    for candidate in (root / "VideoDemographics.csv", root.parent / "VideoDemographics.csv"):
        if candidate.is_file():
            try:
                table = pd.read_csv(candidate)
            except (ValueError, UnicodeDecodeError) as err:  # ParserError and EmptyDataError are ValueErrors
                raise DatasetError(f"{candidate} cannot be read as CSV ({err}). Fix it, or remove it (every gender "
                                   f"is then 'unknown')") from None
            try:
                return {int(a): str(s).strip().lower() for a, s in zip(table["ActorID"], table["Sex"])}, []
            except (KeyError, ValueError) as err:
                columns = ", ".join(map(str, table.columns))
                raise DatasetError(f"{candidate} is not CREMA-D's VideoDemographics.csv: it needs the columns "
                                   f"ActorID (numbers such as 1001) and Sex; it has {columns} ({type(err).__name__}: "
                                   f"{err}). Fix it, or remove it (every gender is then 'unknown')") from None
    return {}, [f"no VideoDemographics.csv in {root} or its parent: every CREMA-D speaker's gender is 'unknown' "
                f"(the file is in the official repository, github.com/CheyneyComputerScience/CREMA-D)"]
