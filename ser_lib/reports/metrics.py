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
import pandas as pd


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


def compute_metrics(y_true: np.ndarray, probs: np.ndarray, labels: list[str], ece_bins: int = 15) -> dict:
    """Every number of ``metrics.json`` that depends only on labels and probabilities."""
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true, dtype=int)
    y_pred = probs.argmax(1)
    n = len(labels)
    matrix = confusion(y_true, y_pred, n)
    rows = per_class(matrix)
    aucs = {}
    for k, label in enumerate(labels):
        positives = y_true == k
        aucs[label] = float(roc_auc_score(positives, probs[:, k])) if 0 < positives.sum() < len(y_true) else None
    defined = [a for a in aucs.values() if a is not None]
    return {
        **classification_metrics(y_true, y_pred, n),
        "per_class": {label: rows[k] | {"roc_auc": aucs[label]} for k, label in enumerate(labels)},
        "roc_auc_macro": float(np.mean(defined)) if defined else None,
        "ece": expected_calibration_error(probs, y_true, ece_bins)[0],
        "confusion_matrix": matrix.tolist(),
        "n_clips": int(len(y_true)),
        "classes_without_test_clips": [label for k, label in enumerate(labels) if rows[k]["support"] == 0],
    }


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> tuple[float, pd.DataFrame]:
    """ECE over equal-width confidence bins, and the per-bin table behind the reliability diagram."""
    confidence = probs.max(1)
    correct = probs.argmax(1) == np.asarray(y_true)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        count = int(in_bin.sum())
        acc = float(correct[in_bin].mean()) if count else float("nan")
        conf = float(confidence[in_bin].mean()) if count else float("nan")
        if count:
            ece += count / len(confidence) * abs(acc - conf)
        rows.append({"lower": edges[b], "upper": edges[b + 1], "count": count, "accuracy": acc, "confidence": conf})
    return float(ece), pd.DataFrame(rows)


def paired_interval(diff, level: float = 0.95) -> tuple[float, float]:
    """Confidence interval of the mean of paired differences (one per fold), Student's t; NaN with
    fewer than two folds. An interval that spans 0 means the folds do not show a difference."""
    from scipy import stats

    diff = np.asarray(diff, dtype=np.float64)
    if len(diff) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    return float(diff.mean() - half), float(diff.mean() + half)
