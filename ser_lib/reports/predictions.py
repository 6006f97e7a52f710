"""Per-clip predictions of an evaluation: the clip rows, probabilities and true classes together."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import CheckpointError

#: Corpus columns worth keeping beside each prediction (where the corpus has them).
EXTRA_COLUMNS = ("intensity", "statement", "sentence", "repetition", "word", "text")


@dataclass
class Predictions:
    """Per-clip probabilities of one evaluation, with the clip table rows they belong to."""

    clips: pd.DataFrame
    probs: np.ndarray
    y_true: np.ndarray
    labels: list[str]
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def y_pred(self) -> np.ndarray:
        return self.probs.argmax(1)

    def table(self) -> pd.DataFrame:
        """Clip rows plus true/predicted labels, confidence and one probability column per class."""
        keep = [c for c in ("file", "path", "corpus", "speaker", "gender", "emotion", *EXTRA_COLUMNS) if c in self.clips]
        out = self.clips[keep].copy()
        out["predicted"] = [self.labels[k] for k in self.y_pred]
        out["confidence"] = self.probs.max(1)
        out["p_true"] = self.probs[np.arange(len(self.y_true)), self.y_true]
        out["correct"] = self.y_pred == self.y_true
        for k, label in enumerate(self.labels):
            out[f"p_{label}"] = self.probs[:, k]
        return out


def pool_predictions(parts: list[Predictions]) -> Predictions:
    """One :class:`Predictions` of several evaluations with the same labels (e.g. every fold's test speakers)."""
    labels = parts[0].labels
    if any(p.labels != labels for p in parts):
        raise CheckpointError("cannot pool evaluations of models with different emotion classes")
    return Predictions(pd.concat([p.clips for p in parts], ignore_index=True),
                       np.concatenate([p.probs for p in parts]), np.concatenate([p.y_true for p in parts]),
                       labels, [f for p in parts for f in p.failures])
