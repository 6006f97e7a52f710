"""The emotion vocabulary: canonical names, their order, and the subsets a model can be trained on.

Every part of ser_lib speaks of emotions by these names (a corpus maps its own codes onto them when
it builds the clip table). A model's classes are a list of names stored once in its checkpoint;
targets, reports and predictions map by name, never by a corpus's codes.
"""
from __future__ import annotations

from ..errors import SplitError

#: The eight RAVDESS emotions, in RAVDESS code order: the label order everywhere in ser_lib.
EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

#: Emotion subsets by name (each in :data:`EMOTIONS` order).
SUBSETS: dict[str, tuple[str, ...]] = {
    "all": EMOTIONS,
    "basic6": ("neutral", "happy", "sad", "angry", "fearful", "surprised"),
    "basic4": ("neutral", "happy", "sad", "angry"),
}


def subset_labels(subset: str) -> list[str]:
    """The class names of an emotion subset, in :data:`EMOTIONS` order."""
    if subset not in SUBSETS:
        raise SplitError(f"unknown emotion subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    return list(SUBSETS[subset])


def label_index(labels: list[str]) -> dict[str, int]:
    """Class index of each name in ``labels`` (the model's output order)."""
    return {name: k for k, name in enumerate(labels)}


def select(clips, labels: list[str]):
    """Rows of a clip table whose emotion is one of ``labels`` (index reset)."""
    return clips[clips["emotion"].isin(labels)].reset_index(drop=True)
