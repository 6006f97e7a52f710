"""The figures of an evaluation report: confusion matrices, ROC curves, per-class scores, reliability."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import plots
from .metrics import expected_calibration_error
from .predictions import Predictions


def plot_confusion(matrix: np.ndarray, labels: list[str], title: str = "Confusion matrix"):
    """Counts and row-normalised (recall) confusion matrices side by side."""
    import seaborn as sns

    fig, axes = plots.new_figure(1, 2, figsize=(12, 5))
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = matrix / matrix.sum(1, keepdims=True)
    for ax, data, fmt, name in ((axes[0], matrix, "d", "counts"), (axes[1], normalised, ".2f", "row-normalised (recall)")):
        sns.heatmap(data, annot=True, fmt=fmt, cmap="Blues", cbar=False, ax=ax, xticklabels=labels,
                    yticklabels=labels, square=True, annot_kws={"size": 8})
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title}: {name}")
        ax.tick_params(axis="x", rotation=45)
        ax.grid(False)
    fig.tight_layout()
    return fig


def plot_roc(y_true: np.ndarray, probs: np.ndarray, labels: list[str]):
    """One-vs-rest ROC curve per class, AUC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plots.new_figure(figsize=(6, 5.5))
    for k, (label, colour) in enumerate(zip(labels, plots.colours(labels))):
        positives = y_true == k
        if not 0 < positives.sum() < len(y_true):
            ax.plot([], [], color=colour, label=f"{label} (n/a: no test clips)")
            continue
        fpr, tpr, _ = roc_curve(positives, probs[:, k])
        ax.plot(fpr, tpr, color=colour, lw=1.8, label=f"{label} (AUC {roc_auc_score(positives, probs[:, k]):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curves, one vs rest")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_per_class(metrics: dict, labels: list[str]):
    """Precision, recall and F1 bars per class."""
    fig, ax = plots.new_figure(figsize=(max(6, 1.1 * len(labels) + 2), 4))
    width = 0.27
    x = np.arange(len(labels))
    series = (("precision", "precision", 0.45, ".."), ("recall", "recall", 0.7, "//"), ("f1", "F1", 1.0, ""))
    for i, (key, name, shade, hatch) in enumerate(series):
        values = [metrics["per_class"][label][key] for label in labels]
        heights = [v if v is not None else 0 for v in values]
        bars = ax.bar(x + (i - 1) * width, heights, width, color=plots.colours(labels), alpha=shade, hatch=hatch,
                      edgecolor="black", linewidth=0.4)
        for bar, v in zip(bars, values):
            if v is None:
                ax.text(bar.get_x() + bar.get_width() / 2, 0.02, "n/a", ha="center", fontsize=7, rotation=90)
    ax.set_xticks(x, labels, rotation=30)
    ax.set_ylim(0, 1.15)  # room for the legend above the bars
    ax.set_ylabel("score")
    ax.set_title("Per-class precision, recall and F1")
    plots.shade_legend(ax, [(name, shade, hatch) for _, name, shade, hatch in series], ncol=3)
    fig.tight_layout()
    return fig


def plot_reliability(probs: np.ndarray, y_true: np.ndarray, bins: int = 15):
    """Reliability diagram: accuracy against confidence per bin, with the ECE."""
    ece, table = expected_calibration_error(probs, y_true, bins)
    fig, ax = plots.new_figure(figsize=(5.5, 5))
    filled = table[table["count"] > 0]
    centres = (filled["lower"] + filled["upper"]) / 2
    ax.bar(centres, filled["accuracy"], width=1 / bins, edgecolor="black", linewidth=0.5, color="#3b6fb6",
           alpha=0.8, label="accuracy")
    ax.bar(centres, filled["confidence"] - filled["accuracy"], bottom=filled["accuracy"], width=1 / bins,
           color="#d1453b", alpha=0.3, label="gap to confidence")
    ax.plot([0, 1], [0, 1], ls="--", color="#555555", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability diagram (ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def write_figures(pred: Predictions, metrics: dict, folder: Path) -> dict[str, Path]:
    """All four report figures as PNGs in ``folder``."""
    import matplotlib.pyplot as plt

    figures = {
        "confusion_matrix": plot_confusion(np.asarray(metrics["confusion_matrix"]), pred.labels),
        "roc": plot_roc(pred.y_true, pred.probs, pred.labels),
        "per_class": plot_per_class(metrics, pred.labels),
        "reliability": plot_reliability(pred.probs, pred.y_true),
    }
    written = {}
    for name, fig in figures.items():
        written[name] = plots.save_fig(fig, name, folder)
        plt.close(fig)
    return written
