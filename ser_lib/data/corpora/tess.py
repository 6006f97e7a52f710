"""TESS, the Toronto Emotional Speech Set (Dupuis & Pichora-Fuller, 2010): two female speakers.

200 target words said in the carrier phrase "Say the word _" by an older (OAF, 64) and a younger
(YAF, 26) actress, in 7 emotions. Files are named ``SPEAKER_WORD_EMOTION.wav`` (``OAF_back_angry.wav``;
``ps`` is pleasant surprise), in one folder per speaker and emotion (``OAF_angry/``,
``YAF_pleasant_surprised/``; case varies) or all in one folder. The public copies have quirks this
reader survives: a file whose speaker prefix is ``OA_`` (read as OAF), AIFF files carrying a ``.wav``
name (soundfile reads them by content), and one file at 96 kHz while the rest are at 24,414 Hz
(every clip is resampled on loading).
"""
from __future__ import annotations

from pathlib import Path

from .base import Corpus, Parsed, Problem

EMOTIONS = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy", "neutral": "neutral",
            "ps": "surprised", "sad": "sad"}
SPEAKERS = {"OAF": "OAF", "OA": "OAF", "YAF": "YAF"}


class TESS(Corpus, name="tess", title="TESS", codes=EMOTIONS, columns=("word",),
           layout="OAF_angry/OAF_back_angry.wav ... YAF_sad/ folders, "
                  "or all SPEAKER_WORD_EMOTION.wav files in one folder"):
    """TESS's speakers are OAF and YAF, both female; the folder names are not needed."""

    def parse(self, path: Path, root: Path, context: dict) -> Parsed | Problem | None:
        parts = path.stem.split("_")
        speaker, emotion = SPEAKERS.get(parts[0].upper()), EMOTIONS.get(parts[-1].lower())
        if len(parts) < 3 or speaker is None or emotion is None:
            return Problem(str(path), "malformed_name", f"{path.name!r} is not a TESS name SPEAKER_WORD_EMOTION "
                                                        f"such as OAF_back_angry.wav")
        return Parsed(speaker, "female", emotion, {"word": "_".join(parts[1:-1]).lower()})
