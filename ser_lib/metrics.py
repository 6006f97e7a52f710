"""Classification metrics with SER's conventions.

* ``accuracy`` - weighted accuracy (WA): the fraction of clips classified correctly.
* ``uar`` - unweighted average recall: the mean of per-class recalls, so every emotion counts the
  same however many clips it has (RAVDESS has half as many neutral clips as the others).
* ``macro_f1`` - the mean of per-class F1 scores.

Classes without any true clip have no recall: they are left out of UAR and macro-F1 and reported
as ``None`` ("n/a"), never as 0.
"""
from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]`` of shape ``(n_classes, n_classes)``."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return matrix


def per_class(matrix: np.ndarray) -> list[dict[str, float | int | None]]:
    """Precision, recall, F1 and support per class from a confusion matrix."""
    rows = []
    for k in range(matrix.shape[0]):
        tp = int(matrix[k, k])
        support = int(matrix[k].sum())
        predicted = int(matrix[:, k].sum())
        recall = tp / support if support else None
        precision = tp / predicted if predicted else (None if not support else 0.0)
        if recall is None:
            f1 = None
        elif not precision or not recall:
            f1 = 0.0
        else:
            f1 = 2 * precision * recall / (precision + recall)
        rows.append({"precision": precision, "recall": recall, "f1": f1, "support": support})
    return rows


def classification_metrics(y_true, y_pred, n_classes: int) -> dict[str, float]:
    """``accuracy``, ``uar`` and ``macro_f1`` (over classes present in ``y_true``)."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if len(y_true) == 0:
        return {"accuracy": float("nan"), "uar": float("nan"), "macro_f1": float("nan")}
    matrix = confusion(y_true, y_pred, n_classes)
    rows = per_class(matrix)
    present = [r for r in rows if r["support"]]
    return {
        "accuracy": float((y_true == y_pred).mean()),
        "uar": float(np.mean([r["recall"] for r in present])),
        "macro_f1": float(np.mean([r["f1"] for r in present])),
    }
