"""SAVEE, Surrey Audio-Visual Expressed Emotion (Haq & Jackson, 2009): four male speakers.

Speakers DC, JE, JK and KL read phonetically balanced TIMIT sentences in 7 emotions. Files are
``AudioData/DC/a01.wav`` in the original release or ``DC_a01.wav`` in the flat Kaggle copy; the code
before the number is the emotion: ``a`` anger, ``d`` disgust, ``f`` fear, ``h`` happiness, ``n``
neutral, ``sa`` sadness, ``su`` surprise.
"""
from __future__ import annotations

import re
from pathlib import Path

from .base import Corpus, Parsed, Problem

EMOTIONS = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprised"}
SPEAKERS = ("DC", "JE", "JK", "KL")
_CODE = re.compile(r"^(sa|su|a|d|f|h|n)(\d{2})$")


class SAVEE(Corpus, name="savee", title="SAVEE", codes=EMOTIONS, columns=("sentence",),
            layout="AudioData/DC/a01.wav ... (original) or DC_a01.wav ... (flat); speakers DC, JE, JK, KL"):
    """SAVEE's four speakers are male; a clip's speaker is its folder or its name's prefix."""

    def parse(self, path: Path, root: Path, context: dict) -> Parsed | Problem | None:
        speaker, code = _speaker_and_code(path)
        match = _CODE.match(code or "")
        if speaker is None or match is None:
            return Problem(str(path), "malformed_name",
                           f"{path.relative_to(root)} is not a SAVEE clip "
                           f"(SPEAKER/a01.wav or SPEAKER_a01.wav, speakers {', '.join(SPEAKERS)})")
        return Parsed(speaker, "male", EMOTIONS[match.group(1)], {"sentence": code})


def _speaker_and_code(path: Path) -> tuple[str | None, str | None]:
    """``("DC", "a01")`` from ``DC/a01.wav`` or ``DC_a01.wav``."""
    if "_" in path.stem:
        speaker, _, code = path.stem.partition("_")
    else:
        speaker, code = path.parent.name, path.stem
    return (speaker.upper(), code.lower()) if speaker.upper() in SPEAKERS else (None, None)
