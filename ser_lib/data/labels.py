"""The emotion vocabulary: canonical names, their order, and the subsets a model can be trained on.

Every part of ser_lib speaks of emotions by these names (a corpus maps its own codes onto them when
it builds the clip table: CREMA-D's ANG, TESS's ps, EmoDB's W). A model's classes are a list of names
stored once in its checkpoint; targets, reports and predictions map by name, never by a corpus's
codes. A subset that asks for an emotion a dataset lacks (calm in CREMA-D) is never shrunk silently:
the others teach it, with a warning that says so; ``shared`` asks for exactly the emotions all the
run's datasets have.
"""
from __future__ import annotations

import logging

from ..errors import SplitError

log = logging.getLogger(__name__)

#: The eight RAVDESS emotions, in RAVDESS code order: the label order everywhere in ser_lib.
EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

#: Emotion subsets by name (each in :data:`EMOTIONS` order).
SUBSETS: dict[str, tuple[str, ...]] = {
    "all": EMOTIONS,
    "basic6": ("neutral", "happy", "sad", "angry", "fearful", "surprised"),
    "basic4": ("neutral", "happy", "sad", "angry"),
}


#: The subset of the emotions every dataset of a run has (see :func:`for_data`).
SHARED = "shared"


def subset_labels(subset: str) -> list[str]:
    """The class names of an emotion subset, in :data:`EMOTIONS` order."""
    if subset not in SUBSETS:
        raise SplitError(f"unknown emotion subset {subset!r}; choose one of {', '.join(SUBSETS)} (or {SHARED}: "
                         f"the emotions all the datasets have)")
    return list(SUBSETS[subset])


def label_index(labels: list[str]) -> dict[str, int]:
    """Class index of each name in ``labels`` (the model's output order)."""
    return {name: k for k, name in enumerate(labels)}


def select(clips, labels: list[str]):
    """Rows of a clip table whose emotion is one of ``labels`` (index reset)."""
    return clips[clips["emotion"].isin(labels)].reset_index(drop=True)


def for_data(subset: str, clips) -> list[str]:
    """The classes of a run: ``subset``'s emotions, or, for ``shared``, the emotions every corpus in
    ``clips`` has (in :data:`EMOTIONS` order).

    An emotion that some corpora lack is learnt from the others, and a warning names what each corpus
    lacks (CREMA-D has no calm: RAVDESS teaches it); an emotion no corpus has is refused.
    """
    present = {corpus: set(group["emotion"]) for corpus, group in clips.groupby("corpus")}
    if subset == SHARED:
        shared = [e for e in EMOTIONS if all(e in emotions for emotions in present.values())]
        if len(shared) < 2:
            raise SplitError(f"the datasets share {len(shared)} emotion(s) ({', '.join(shared) or 'none'}): a model "
                             f"needs two classes at least")
        return shared
    wanted = subset_labels(subset)
    nowhere = [e for e in wanted if not any(e in emotions for emotions in present.values())]
    if nowhere:
        raise SplitError(f"--emotion_subset {subset} asks for {', '.join(nowhere)}, which no dataset of the run has "
                         f"({', '.join(sorted(present))}). Use --emotion_subset {SHARED} for the emotions all of them "
                         f"have, or a smaller subset ({', '.join(s for s in SUBSETS if s != subset)})")
    lacking = {corpus: [e for e in wanted if e not in emotions] for corpus, emotions in present.items()}
    lacking = {corpus: missing for corpus, missing in lacking.items() if missing}
    if lacking:
        which = "; ".join(f"{corpus} has no {', '.join(missing)}" for corpus, missing in lacking.items())
        log.warning("--emotion_subset %s: %s. Those emotions are learnt from the other datasets only, and their "
                    "test scores come from those datasets' speakers (--emotion_subset %s keeps the emotions all "
                    "of them have)", subset, which, SHARED)
    return wanted
