"""Small copies of each corpus, laid out and named exactly as the real ones, with tone clips as audio.

Each emotion gets its own pitch, so a model trained on them has something to learn.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

PITCH = {"neutral": 180.0, "calm": 200.0, "happy": 320.0, "sad": 140.0, "angry": 380.0, "fearful": 260.0,
         "disgust": 230.0, "surprised": 420.0}


def tone(path: Path, emotion: str, sr: int = 16000, seconds: float = 0.8, fmt: str | None = None,
         speaker: int = 0) -> Path:
    """A harmonic tone for ``emotion`` (a speaker shifts it a little), written to ``path``."""
    t = np.arange(int(sr * seconds)) / sr
    f0 = PITCH[emotion] * (1 + 0.03 * speaker)
    wave = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 5)) * np.hanning(len(t))
    wave += np.random.default_rng(len(path.name)).normal(0, 0.003, len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave.astype(np.float32), sr, format=fmt, subtype="PCM_16")
    return path


CREMAD_CODES = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}


def cremad(root: Path, actors=(1001, 1002, 1003, 1004), demographics: bool = True) -> Path:
    """``AudioWAV/ACTOR_SENTENCE_EMOTION_LEVEL`` in .wav and .flac, and VideoDemographics.csv."""
    for i, actor in enumerate(actors):
        for code, emotion in CREMAD_CODES.items():
            for sentence, level, suffix in (("DFA", "XX", ".wav"), ("IEO", "HI", ".flac")):
                tone(root / "AudioWAV" / f"{actor}_{sentence}_{code}_{level}{suffix}", emotion, speaker=i)
    if demographics:
        sexes = ["Male", "Female"] * 50
        rows = [f'{1001 + k},{30 + k % 20},"{sexes[k]}","Caucasian","Not Hispanic"' for k in range(91)]
        (root / "VideoDemographics.csv").write_text('"ActorID","Age","Sex","Race","Ethnicity"\n' + "\n".join(rows))
    return root


TESS_EMOTIONS = {"angry": "angry", "disgust": "disgust", "Fear": "fear", "happy": "happy", "neutral": "neutral",
                 "Pleasant_surprise": "ps", "Sad": "sad"}


def tess(root: Path, flat: bool = False) -> Path:
    """The Kaggle layout (``OAF_angry/OAF_back_angry.wav``, folder case varies) or all files in one folder,
    with the public copies' quirks: an ``OA_`` prefix, an AIFF file named .wav, one file at 96 kHz."""
    for speaker in ("OAF", "YAF"):
        for folder, code in TESS_EMOTIONS.items():
            emotion = {"fear": "fearful", "ps": "surprised"}.get(code, code)
            for word in ("back", "chain"):
                where = root if flat else root / f"{speaker}_{folder}"
                tone(where / f"{speaker}_{word}_{code}.wav", emotion, sr=24414, speaker=speaker == "YAF")
    where = root if flat else root / "OAF_neutral"
    tone(where / "OA_bite_neutral.wav", "neutral", sr=24414)
    tone(where / "OAF_bath_neutral.wav", "neutral", sr=24414, fmt="AIFF")  # AIFF content, .wav name
    tone(where / "OAF_bean_neutral.wav", "neutral", sr=96000)
    return root


SAVEE_CODES = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral", "sa": "sad",
               "su": "surprised"}


def savee(root: Path, flat: bool = False) -> Path:
    """``AudioData/DC/a01.wav`` (original) or ``DC_a01.wav`` (flat Kaggle copy)."""
    for i, speaker in enumerate(("DC", "JE", "JK", "KL")):
        for code, emotion in SAVEE_CODES.items():
            for n in (1, 2):
                name = f"{speaker}_{code}{n:02d}.wav" if flat else f"{code}{n:02d}.wav"
                tone((root if flat else root / "AudioData" / speaker) / name, emotion, sr=44100, speaker=i)
    return root


EMODB_LETTERS = {"W": "angry", "E": "disgust", "A": "fearful", "F": "happy", "N": "neutral", "T": "sad", "L": None}


def emodb(root: Path, speakers=("03", "08", "09", "10")) -> Path:
    """``wav/03a01Fa.wav``: speaker, text, emotion letter (L: boredom), version."""
    for i, speaker in enumerate(speakers):
        for letter, emotion in EMODB_LETTERS.items():
            for text in ("a01", "b02"):
                tone(root / "wav" / f"{speaker}{text}{letter}a.wav", emotion or "calm", speaker=i)
    return root
