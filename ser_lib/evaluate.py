"""Evaluation reports: metrics, figures and an error analysis a researcher can read on its own.

``python -m ser_lib evaluate --model_path RUN/best_model.pt`` evaluates a checkpoint on the test
actors of its own split (recorded in the checkpoint), or on ``--actors``; notebook 05 walks through
the result. It writes into ``--output_dir`` (default ``RUN/evaluation``):

* ``metrics.json`` - accuracy (WA), UAR, macro-F1, per-class precision/recall/F1/support, one-vs-rest
  ROC AUC per class and macro, expected calibration error, clip count and actors;
* ``predictions.csv`` - every clip with its probabilities;
* ``confusion_matrix.png`` (counts and row-normalised), ``roc.png``, ``per_class.png``,
  ``reliability.png``;
* ``report.md`` - the headline metrics, the figures, accuracy by intensity, gender, statement and
  actor, the most confused pairs and the most confident mistakes.

Given a K-fold run folder (from ``train --folds K``), every fold is evaluated on its own test actors
and ``RUN/evaluation/`` gets a summary table (mean ± std) and the pooled confusion matrix.
Classes without test clips are reported as ``n/a`` (``null`` in JSON), never as zero.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import checkpoint as ckpt_io
from . import normalization, paths, plots, ravdess
from .data import ClipDataset, load_clips
from .devices import resolve_device
from .errors import CheckpointError, DatasetError, SplitError
from .metrics import classification_metrics, confusion, per_class
from .train import predict_dataset

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """What :func:`evaluate_checkpoint` produced: the metrics, the per-clip predictions and the folder."""

    metrics: dict
    predictions: "Predictions"
    folder: Path


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
        out = self.clips[["file", "path", "actor", "gender", "emotion", "intensity", "statement",
                          "repetition"]].copy()
        out["predicted"] = [self.labels[k] for k in self.y_pred]
        out["confidence"] = self.probs.max(1)
        out["p_true"] = self.probs[np.arange(len(self.y_true)), self.y_true]
        out["correct"] = self.y_pred == self.y_true
        for k, label in enumerate(self.labels):
            out[f"p_{label}"] = self.probs[:, k]
        return out


# ----------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------
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


def breakdown(pred: Predictions, by: str) -> pd.DataFrame:
    """Clips, accuracy and UAR per value of a clip-table column (intensity, gender, statement, actor)."""
    rows = []
    for value, idx in pred.clips.groupby(by).indices.items():
        m = classification_metrics(pred.y_true[idx], pred.y_pred[idx], len(pred.labels))
        rows.append({by: value, "clips": len(idx), "accuracy": m["accuracy"], "uar": m["uar"]})
    return pd.DataFrame(rows)


def confused_pairs(matrix: np.ndarray, labels: list[str], top: int = 5) -> pd.DataFrame:
    """The ``top`` largest off-diagonal cells: true -> predicted, count, share of the true class."""
    rows = []
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i != j and matrix[i, j]:
                rows.append({"true": labels[i], "predicted": labels[j], "count": int(matrix[i, j]),
                             "share_of_true": matrix[i, j] / matrix[i].sum()})
    frame = pd.DataFrame(rows, columns=["true", "predicted", "count", "share_of_true"])
    return frame.sort_values(["count", "share_of_true"], ascending=False).head(top).reset_index(drop=True)


def confident_mistakes(pred: Predictions, top: int = 10) -> pd.DataFrame:
    """Wrong predictions with the highest confidence, with their files."""
    table = pred.table()
    wrong = table[~table["correct"]].sort_values("confidence", ascending=False).head(top)
    return wrong[["file", "path", "actor", "emotion", "predicted", "confidence", "p_true"]].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------
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
    for i, (key, shade) in enumerate((("precision", 0.45), ("recall", 0.7), ("f1", 1.0))):
        values = [metrics["per_class"][label][key] for label in labels]
        heights = [v if v is not None else 0 for v in values]
        bars = ax.bar(x + (i - 1) * width, heights, width, label=key, color=plots.colours(labels), alpha=shade,
                      edgecolor="black", linewidth=0.4)
        for bar, v in zip(bars, values):
            if v is None:
                ax.text(bar.get_x() + bar.get_width() / 2, 0.02, "n/a", ha="center", fontsize=7, rotation=90)
    ax.set_xticks(x, labels, rotation=30)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title("Per-class precision (light), recall, F1 (dark)")
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


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------
def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _md_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for i in range(len(frame)):
        lines.append("| " + " | ".join(_fmt(frame[c].iloc[i]) for c in cols) + " |")
    return "\n".join(lines)


def render_report(metrics: dict, pred: Predictions, title: str) -> str:
    """The Markdown error-analysis report."""
    labels = pred.labels
    actors = " ".join(f"{a:02d}" for a in metrics["actors"])
    lines = [
        f"# {title}",
        "",
        f"Speaker-independent evaluation of `{metrics['model_path']}` on actors {actors} "
        f"({metrics['n_clips']} clips, {len(labels)} classes: {', '.join(labels)}), "
        f"dataset `{metrics['dataset_root']}`.",
        "",
        "## Headline",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| accuracy (WA) | {_fmt(metrics['accuracy'])} |",
        f"| UAR | {_fmt(metrics['uar'])} |",
        f"| macro-F1 | {_fmt(metrics['macro_f1'])} |",
        f"| ROC AUC (macro, one vs rest) | {_fmt(metrics['roc_auc_macro'])} |",
        f"| expected calibration error | {_fmt(metrics['ece'])} |",
        f"| clips | {metrics['n_clips']} |",
        "",
    ]
    if metrics["classes_without_test_clips"]:
        lines += [f"No test clips for: {', '.join(metrics['classes_without_test_clips'])} (their recall, F1 "
                  f"and AUC are n/a and they are left out of UAR and macro-F1).", ""]
    lines += [
        "## Figures", "",
        "![confusion matrix](confusion_matrix.png)", "",
        "![ROC curves](roc.png) ![per-class scores](per_class.png) ![reliability diagram](reliability.png)", "",
        "## Per class", "",
    ]
    per = pd.DataFrame([{"emotion": label, **{k: metrics["per_class"][label][k]
                                              for k in ("precision", "recall", "f1", "roc_auc", "support")}}
                        for label in labels])
    lines += [_md_table(per), ""]
    for by, heading in (("intensity", "intensity"), ("gender", "gender"), ("statement", "statement"),
                        ("actor", "actor")):
        table = breakdown(pred, by)
        if by == "actor":
            table["actor"] = table["actor"].map(lambda a: f"{a:02d}")
        if by == "statement":
            table["statement"] = table["statement"].map(lambda s: f"{s:02d} {ravdess.STATEMENTS[int(s)]}")
        lines += [f"## Accuracy by {heading}", "", _md_table(table), ""]
    pairs = confused_pairs(np.asarray(metrics["confusion_matrix"]), labels)
    lines += ["## Most confused pairs", "", "True emotion -> predicted emotion, with the share of the true "
              "class's clips that went there.", "", _md_table(pairs) if len(pairs) else "No confusions.", ""]
    mistakes = confident_mistakes(pred)
    lines += ["## Most confident mistakes", "", "Listen to these first: they show what the model is sure "
              "about and wrong.", "",
              _md_table(mistakes.drop(columns=["path"]).rename(columns={"emotion": "true", "p_true": "p(true)"}))
              if len(mistakes) else "No mistakes.", ""]
    if pred.failures:
        lines += ["## Files that could not be loaded", "", "They are not in any number above.", ""]
        lines += [f"- `{path}`: {reason}" for path, reason in pred.failures]
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------
def predict_checkpoint(loaded: ckpt_io.Checkpoint, clips: pd.DataFrame, batch_size: int = 16,
                       device: str | torch.device = "cpu", progress: bool = True) -> Predictions:
    """Probabilities of a loaded checkpoint for every loadable clip of ``clips``."""
    waves, failures = load_clips(clips["path"].tolist(), loaded.audio, progress=progress)
    keep = [w is not None for w in waves]
    clips = clips[keep].reset_index(drop=True)
    waves = [w for w in waves if w is not None]
    if clips.empty:
        raise DatasetError("none of the evaluation clips could be loaded:\n  " +
                           "\n  ".join(f"{p}: {r}" for p, r in failures[:10]))
    lookup = {code: k for k, code in enumerate(loaded.emotion_codes)}
    y_true = clips["emotion_code"].map(lookup).to_numpy()
    extras = normalization.model_extras(loaded.model, loaded.normalization, waves, clips["path"].tolist(),
                                        clips["actor"].tolist(), loaded.audio)
    dataset = ClipDataset(clips, waves, y_true, loaded.audio, train=False, extras=extras)
    out = predict_dataset(loaded.model.to(device), dataset, batch_size, device, progress=progress)
    order = np.argsort(out["index"])
    return Predictions(clips, out["probs"][order], y_true, list(loaded.labels), failures)


def evaluate_checkpoint(model_path: str | Path, dataset_root: str | Path | None = None,
                        actors: tuple[int, ...] | None = None, emotion_subset: str | None = None,
                        output_dir: str | Path | None = None, batch_size: int = 16, device: str = "auto",
                        progress: bool = True) -> Evaluation:
    """Evaluate one checkpoint and write metrics, predictions, figures and report into ``output_dir``."""
    device = resolve_device(device)
    loaded = ckpt_io.load(model_path, device)
    if emotion_subset is not None and emotion_subset != loaded.emotion_subset:
        asked = ravdess.emotion_names(emotion_subset)
        if asked != loaded.labels:
            raise CheckpointError(
                f"{model_path} predicts {len(loaded.labels)} classes ({', '.join(loaded.labels)}) but "
                f"--emotion_subset {emotion_subset} asks for {', '.join(asked)}; evaluate with "
                f"--emotion_subset {loaded.emotion_subset} or use a model trained on {emotion_subset}"
            )
    root = dataset_root or loaded.train_config.get("dataset_root") or paths.synthetic_root(progress=progress)
    clips = ravdess.select_emotions(ravdess.scan(root).clips, loaded.emotion_subset)
    wanted = tuple(actors) if actors else tuple(loaded.split["test"])
    present = set(ravdess.actors_of(clips))
    missing = [a for a in wanted if a not in present]
    if missing:
        raise SplitError(
            f"actors {', '.join(f'{a:02d}' for a in missing)} (the "
            f"{'requested' if actors else 'checkpoint test split'} actors) are not in {root} "
            f"(present: {', '.join(f'{a:02d}' for a in sorted(present))}); pass --actors or another --dataset_root"
        )
    leaked = sorted(set(wanted) & (set(loaded.split["train"]) | set(loaded.split["val"])))
    if leaked:
        log.warning("actors %s were used for training or model selection: their scores are not "
                    "speaker-independent", ", ".join(f"{a:02d}" for a in leaked))
    clips = clips[clips["actor"].isin(wanted)].reset_index(drop=True)
    pred = predict_checkpoint(loaded, clips, batch_size, device, progress)
    out = Path(output_dir) if output_dir else Path(model_path).parent / "evaluation"
    metrics = write_evaluation(pred, out, model_path=str(model_path), dataset_root=str(root),
                               actors=sorted(wanted), leaked_actors=leaked)
    return Evaluation(metrics, pred, out)


def write_evaluation(pred: Predictions, out: Path, title: str = "Evaluation report", **meta) -> dict:
    """Write ``metrics.json``, ``predictions.csv``, figures and ``report.md`` for ``pred``."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = compute_metrics(pred.y_true, pred.probs, pred.labels)
    metrics.update(meta, labels=pred.labels,
                   failed_files=[{"path": p, "reason": r} for p, r in pred.failures])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    pred.table().to_csv(out / "predictions.csv", index=False)
    write_figures(pred, metrics, out)
    (out / "report.md").write_text(render_report(metrics, pred, title))
    log.info("evaluation written to %s", out)
    return metrics


def fold_checkpoints(run_dir: Path) -> list[Path]:
    """``fold*/best_model.pt`` of a K-fold run folder, in fold order."""
    found = sorted(run_dir.glob("fold*/best_model.pt"), key=lambda p: int(p.parent.name[4:] or 0))
    return found


def pool_predictions(parts: list[Predictions]) -> Predictions:
    """One :class:`Predictions` of several evaluations with the same labels (e.g. every fold's test actors)."""
    labels = parts[0].labels
    if any(p.labels != labels for p in parts):
        raise CheckpointError("cannot pool evaluations of models with different emotion classes")
    return Predictions(pd.concat([p.clips for p in parts], ignore_index=True),
                       np.concatenate([p.probs for p in parts]), np.concatenate([p.y_true for p in parts]),
                       labels, [f for p in parts for f in p.failures])


def evaluate_folds(run_dir: str | Path, dataset_root: str | Path | None = None, output_dir: str | Path | None = None,
                   batch_size: int = 16, device: str = "auto", progress: bool = True) -> dict:
    """Evaluate every fold of a K-fold run on its own test actors: a summary table (mean ± std over
    folds) and a full report of the predictions pooled over folds (every actor tested exactly once)."""
    run_dir = Path(run_dir)
    folds = fold_checkpoints(run_dir)
    if not folds:
        raise CheckpointError(f"{run_dir} has no fold*/best_model.pt: is it a `train --folds K` run folder?")
    rows, parts = [], []
    for path in folds:
        result = evaluate_checkpoint(path, dataset_root, batch_size=batch_size, device=device, progress=progress,
                                     output_dir=path.parent / "evaluation")
        metrics = result.metrics
        rows.append({"fold": path.parent.name, "actors": " ".join(f"{a:02d}" for a in metrics["actors"]),
                     "clips": metrics["n_clips"], **{k: metrics[k] for k in
                                                     ("accuracy", "uar", "macro_f1", "roc_auc_macro", "ece")}})
        parts.append(result.predictions)
    table = pd.DataFrame(rows)
    out = Path(output_dir) if output_dir else run_dir / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    pooled = write_evaluation(pool_predictions(parts), out / "pooled", title=f"Pooled over {len(folds)} folds",
                              model_path=str(run_dir / "fold*" / "best_model.pt"), dataset_root=metrics["dataset_root"],
                              actors=sorted({int(a) for p in parts for a in p.clips["actor"]}))
    keys = ("accuracy", "uar", "macro_f1", "roc_auc_macro", "ece")
    summary = {k: {"mean": float(table[k].mean()), "std": float(table[k].std(ddof=0))} for k in keys}
    summary.update(folds=len(folds), per_fold=rows, labels=pooled["labels"],
                   pooled_confusion_matrix=pooled["confusion_matrix"],
                   pooled={k: pooled[k] for k in ("accuracy", "uar", "macro_f1", "per_class")})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    table.to_csv(out / "summary.csv", index=False)
    mean_row = {"fold": "mean ± std", "actors": "", "clips": int(table["clips"].sum()),
                **{k: f"{summary[k]['mean']:.4f} ± {summary[k]['std']:.4f}" for k in keys}}
    text = ["# K-fold evaluation summary", "",
            f"{len(folds)} speaker-independent folds of `{run_dir}`, each model tested on its own held-out actors.",
            "", _md_table(pd.concat([table, pd.DataFrame([mean_row])], ignore_index=True)), "",
            f"Pooled over folds (every actor tested once): UAR {pooled['uar']:.4f}, accuracy "
            f"{pooled['accuracy']:.4f}, macro-F1 {pooled['macro_f1']:.4f}; [full report](pooled/report.md).", "",
            "![pooled confusion matrix](pooled/confusion_matrix.png)", "",
            "Per-fold reports: " + ", ".join(f"[{p.parent.name}](../{p.parent.name}/evaluation/report.md)"
                                             for p in folds), ""]
    (out / "summary.md").write_text("\n".join(text))
    return summary
