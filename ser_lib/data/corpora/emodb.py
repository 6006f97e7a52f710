"""Berlin EmoDB (Burkhardt et al., 2005): ten actors, ten German sentences, seven emotions.

File names such as ``03a01Fa.wav``: speaker (2 digits), text (``a01``-``b10``), emotion letter in German
(W Ärger/anger, L Langeweile/boredom, E Ekel/disgust, A Angst/fear, F Freude/happiness, T Trauer/
sadness, N neutral) and version letter. Boredom is not one of the eight canonical emotions: its
clips are reported and left out. Speaker sex from the corpus documentation.
"""
from __future__ import annotations

import re
from pathlib import Path

from .base import Corpus, Parsed, Problem

EMOTIONS = {"W": "angry", "E": "disgust", "A": "fearful", "F": "happy", "N": "neutral", "T": "sad"}
#: Speaker sex as the EmoDB documentation gives it.
SEXES = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male", "12": "male", "13": "female",
         "14": "female", "15": "male", "16": "female"}
_NAME = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")


class EmoDB(Corpus, name="emodb", title="EmoDB", codes=EMOTIONS, columns=("text", "version"),
            layout="wav/03a01Fa.wav ... (speaker, text, emotion letter W/L/E/A/F/T/N, version)"):
    """EmoDB's speakers are the two-digit numbers of its names."""

    def parse(self, path: Path, root: Path, context: dict) -> Parsed | Problem | None:
        match = _NAME.match(path.stem)
        if not match or match.group(1) not in SEXES:
            return Problem(str(path), "malformed_name", f"{path.name!r} is not an EmoDB name such as 03a01Fa.wav "
                                                        f"(speakers {', '.join(SEXES)})")
        speaker, text, letter, version = match.groups()
        if letter == "L":
            return Problem(str(path), "no_canonical_emotion", "boredom (L) is not one of the eight emotions "
                                                              "ser_lib recognises")
        if letter not in EMOTIONS:
            return Problem(str(path), "malformed_name", f"unknown EmoDB emotion letter {letter!r}")
        return Parsed(speaker, SEXES[speaker], EMOTIONS[letter], {"text": text, "version": version})
