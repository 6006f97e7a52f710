"""Tables a reader looks at first: counts per speaker, emotion, intensity and gender; one clip per emotion."""
from __future__ import annotations

import pandas as pd

from .. import labels
from .base import ScanResult, natural_key

#: Intensities from strongest to weakest, as the corpora name them.
_STRENGTH = ("strong", "high", "normal", "medium", "unspecified", "low")


def summary_tables(clips: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Clips per speaker and emotion, per emotion (and intensity, where the corpus has it), per gender."""
    order = [e for e in labels.EMOTIONS if e in set(clips["emotion"])]
    per_speaker = pd.crosstab([clips["speaker"], clips["gender"]], clips["emotion"])[order]
    per_speaker = per_speaker.loc[sorted(per_speaker.index, key=lambda key: natural_key(key[0]))]
    per_speaker["total"] = per_speaker.sum(axis=1)
    if "intensity" in clips and clips["intensity"].notna().any():
        per_emotion = pd.crosstab(clips["emotion"], clips["intensity"], margins=True, margins_name="total")
    else:
        per_emotion = clips.groupby("emotion").size().to_frame("clips")
        per_emotion.loc["total"] = per_emotion["clips"].sum()
    per_emotion = per_emotion.loc[order + ["total"]]
    per_gender = clips.groupby("gender").agg(clips=("file", "size"), speakers=("speaker", "nunique"))
    return {"speaker": per_speaker, "emotion": per_emotion, "gender": per_gender}


def few_clips_note(clips: pd.DataFrame, least: int = 3) -> str:
    """A note naming the speakers with fewer than ``least`` clips (empty when there are none)."""
    few = [str(s) for s, n in clips.groupby("speaker").size().items() if n < least]
    return (f"Speakers with fewer than {least} clips (their own statistics cannot be estimated; the training data's "
            f"stand in): {', '.join(sorted(few, key=natural_key))}") if few else ""


def format_summary(result: ScanResult, where: str = "") -> str:
    """A plain-text summary of a scan: totals, the count tables, notes and the list of files left out."""
    clips, tables = result.clips, summary_tables(result.clips)
    genders = tables["gender"]["speakers"].to_dict()
    corpora = ", ".join(f"{c} {n}" for c, n in clips.groupby("corpus")["speaker"].nunique().items())
    lines = [
        f"{len(clips)} clips{' in ' + where if where else ''}: {clips['speaker'].nunique()} speakers ({corpora}; "
        f"{genders.get('male', 0)} male, {genders.get('female', 0)} female, {genders.get('unknown', 0)} unknown), "
        f"{clips['emotion'].nunique()} emotions, {clips['duration'].sum() / 60:.1f} minutes of audio",
        f"sample rates: {', '.join(f'{r} Hz' for r in sorted(clips['sample_rate'].unique()))}; "
        f"{int((clips['channels'] > 1).sum())} multi-channel files (downmixed to mono on load)",
        "", "Clips per speaker and emotion:", tables["speaker"].to_string(),
        "", "Clips per emotion:", tables["emotion"].to_string(),
        "", "Clips per gender:", tables["gender"].to_string(), "",
    ]
    if note := few_clips_note(clips):
        lines += [note, ""]
    lines += result.notes + ([""] if result.notes else [])
    if result.problems:
        lines.append(f"{len(result.problems)} problems (files left out of the clip table):")
        lines += [f"  {p}" for p in result.problems]
    else:
        lines.append("No problems found.")
    return "\n".join(lines)


def one_per_emotion(clips: pd.DataFrame, speaker: str | int | None = None) -> pd.DataFrame:
    """One clip per emotion of one speaker (the first by default), the most intense rendering of the
    first sentence where the corpus says so, for listening and figures. ``speaker`` is a speaker id
    (``ravdess:01``) or the number within a single corpus (``1``)."""
    speakers = sorted(clips["speaker"].unique(), key=natural_key)
    if speaker is None:
        chosen = speakers[0]
    else:
        wanted = str(speaker)
        chosen = next((s for s in speakers if s == wanted or s.split(":", 1)[1].lstrip("0") == wanted.lstrip("0")),
                      None)
        if chosen is None:
            raise KeyError(f"no speaker {speaker!r} among {', '.join(speakers[:10])}...")
    pick = clips[clips["speaker"] == chosen].copy()
    strength = (pick["intensity"].map(lambda i: _STRENGTH.index(i) if i in _STRENGTH else 9)
                if "intensity" in pick else 0)
    pick = pick.assign(_strength=strength, _first=[(getattr(r, "statement", 1) != 1, getattr(r, "repetition", 1) != 1)
                                                   for r in pick.itertuples()])
    pick = pick.sort_values(["_strength", "_first", "file"]).drop_duplicates("emotion")
    pick["_order"] = pick["emotion"].map(labels.EMOTIONS.index)
    return pick.sort_values("_order").drop(columns=["_strength", "_first", "_order"]).reset_index(drop=True)
