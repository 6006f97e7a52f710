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
and ``RUN/evaluation/`` gets a summary table (mean ± std) and the pooled report.
Classes without test clips are reported as ``n/a`` (``null`` in JSON), never as zero.
Clips are selected and scored by emotion name: the checkpoint's label list is the only label set.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data import labels as emotion_labels
from ..data import ravdess, splits, synth
from ..data.dataset import ClipDataset, load_table
from ..devices import resolve_device
from ..errors import CheckpointError, ConfigError
from ..inference.batch import predict_dataset
from ..model import checkpoint as ckpt_io
from .figures import write_figures
from .metrics import compute_metrics
from .predictions import Predictions, pool_predictions
from .report import render_fold_summary, render_report
from .summary import fold_summary, write_fold_summary

log = logging.getLogger(__name__)

#: Clips per batch when evaluating (``evaluate --batch_size``).
BATCH_SIZE = 16
#: The metrics a K-fold evaluation summarises (mean ± std over folds).
FOLD_METRICS = ("accuracy", "uar", "macro_f1", "roc_auc_macro", "ece")


@dataclass
class Evaluation:
    """What :func:`evaluate_checkpoint` produced: the metrics, the per-clip predictions and the folder."""

    metrics: dict
    predictions: Predictions
    folder: Path


def predict_checkpoint(loaded: ckpt_io.Checkpoint, clips: pd.DataFrame, batch_size: int = BATCH_SIZE,
                       device: str | torch.device = "cpu", progress: bool = True) -> Predictions:
    """Probabilities of a loaded checkpoint for every loadable clip of ``clips`` (each speaker
    normalised with their own clips' statistics when the model uses speaker normalisation)."""
    clips, waves, failures = load_table(clips, loaded.audio, progress=progress)
    y_true = clips["emotion"].map(emotion_labels.label_index(loaded.labels)).to_numpy()
    inputs = loaded.normalizer.inputs(waves, clips["path"].tolist(), clips["actor"].tolist())
    dataset = ClipDataset(clips, waves, y_true, loaded.audio, train=False, inputs=inputs)
    out = predict_dataset(loaded.model.to(device), dataset, batch_size, device, progress=progress)
    order = np.argsort(out["index"])
    return Predictions(clips, out["probs"][order], y_true, list(loaded.labels), failures)


def _check_subset(loaded: ckpt_io.Checkpoint, model_path, emotion_subset: str | None) -> None:
    if emotion_subset is None:
        return
    asked = emotion_labels.subset_labels(emotion_subset)
    if asked != loaded.labels:
        raise CheckpointError(f"{model_path} predicts {len(loaded.labels)} classes ({', '.join(loaded.labels)}) but "
                              f"--emotion_subset {emotion_subset} asks for {', '.join(asked)}; leave "
                              f"--emotion_subset out or use a model trained on {emotion_subset}")


def _test_clips(loaded: ckpt_io.Checkpoint, root, actors: tuple[int, ...] | None) -> tuple[pd.DataFrame, list]:
    """The clips of the model's classes spoken by the asked (or the checkpoint's test) actors."""
    clips = emotion_labels.select(ravdess.scan(root).clips, loaded.labels)
    wanted = tuple(actors) if actors else tuple(loaded.split["test"])
    splits.require_actors(wanted, ravdess.actors_of(clips), "the requested actors" if actors else
                          "the test actors of the checkpoint's split", f"Searched {root}; pass --actors or another "
                          f"--dataset_root.")
    return clips[clips["actor"].isin(wanted)].reset_index(drop=True), sorted(wanted)


def default_folder(model_path: str | Path, actors: tuple[int, ...] | None = None) -> Path:
    """Where an evaluation goes without ``--output_dir``: ``evaluation/`` beside the checkpoint for its
    own test actors, ``evaluation-actors-19-20/`` for ``--actors 19,20``."""
    name = "evaluation" if not actors else "evaluation-actors-" + "-".join(f"{a:02d}" for a in actors)
    return Path(model_path).parent / name


def check_free(folder: Path, overwrite: bool) -> None:
    """Refuse to replace an earlier evaluation unless asked."""
    if not overwrite and any((folder / name).exists() for name in ("metrics.json", "report.md", "summary.json")):
        raise ConfigError(f"{folder} already holds an evaluation; replace it with --overwrite, or write this one "
                          f"elsewhere with --output_dir")


def evaluate_checkpoint(model_path: str | Path, dataset_root: str | Path | None = None,
                        actors: tuple[int, ...] | None = None, emotion_subset: str | None = None,
                        output_dir: str | Path | None = None, batch_size: int = BATCH_SIZE, device: str = "auto",
                        progress: bool = True, overwrite: bool = False) -> Evaluation:
    """Evaluate one checkpoint and write metrics, predictions, figures and report into ``output_dir``
    (an earlier evaluation there is replaced only with ``overwrite``)."""
    out = Path(output_dir) if output_dir else default_folder(model_path, actors)
    check_free(out, overwrite)
    device = resolve_device(device)
    loaded = ckpt_io.load(model_path, device)
    _check_subset(loaded, model_path, emotion_subset)
    root = dataset_root or loaded.train_config.get("dataset_root") or synth.default_corpus(progress=progress)
    clips, wanted = _test_clips(loaded, root, actors)
    leaked = sorted(set(wanted) & (set(loaded.split.get("train", ())) | set(loaded.split.get("val", ()))))
    if leaked:
        log.warning("actors %s were used for training or model selection: their scores are not "
                    "speaker-independent", ", ".join(f"{a:02d}" for a in leaked))
    pred = predict_checkpoint(loaded, clips, batch_size, device, progress)
    metrics = write_evaluation(pred, out, model_path=str(model_path), dataset_root=str(root),
                               actors=wanted, leaked_actors=leaked)
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
    """``foldN/best_model.pt`` of a K-fold run folder, in fold order."""
    return [folder / "best_model.pt" for folder in splits.fold_folders(run_dir) if (folder / "best_model.pt").exists()]


def evaluate_folds(run_dir: str | Path, dataset_root: str | Path | None = None, output_dir: str | Path | None = None,
                   batch_size: int = BATCH_SIZE, device: str = "auto", progress: bool = True,
                   overwrite: bool = False) -> dict:
    """Evaluate every fold of a K-fold run on its own test actors: a summary table (mean ± std over
    folds) and a full report of the predictions pooled over folds (every actor tested exactly once)."""
    run_dir = Path(run_dir)
    folds = fold_checkpoints(run_dir)
    if not folds:
        raise CheckpointError(f"{run_dir} has no fold*/best_model.pt: is it a `train --folds K` run folder?")
    out = Path(output_dir) if output_dir else run_dir / "evaluation"
    for folder in [out, *(default_folder(path) for path in folds)]:
        check_free(folder, overwrite)  # all of them before any work
    rows, parts = [], []
    for path in folds:
        result = evaluate_checkpoint(path, dataset_root, batch_size=batch_size, device=device, progress=progress,
                                     overwrite=overwrite)
        rows.append({"split": path.parent.name, "test_actors": result.metrics["actors"],
                     "clips": result.metrics["n_clips"], **{k: result.metrics[k] for k in FOLD_METRICS}})
        parts.append(result.predictions)
    pooled = write_evaluation(pool_predictions(parts), out / "pooled", title=f"Pooled over {len(folds)} folds",
                              model_path=str(run_dir / "fold*" / "best_model.pt"),
                              dataset_root=result.metrics["dataset_root"],
                              actors=sorted({int(a) for p in parts for a in p.clips["actor"]}))
    summary = fold_summary(rows, FOLD_METRICS)
    summary["pooled"] = {k: pooled[k] for k in ("labels", "accuracy", "uar", "macro_f1", "per_class",
                                                "confusion_matrix")}
    write_fold_summary(summary, out)
    (out / "summary.md").write_text(render_fold_summary(summary, run_dir, FOLD_METRICS))
    return summary
