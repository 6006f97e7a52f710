"""The K-fold summary: one schema for ``summary.json``, whether training or evaluation writes it.

``{"folds": K, "uar": {"mean", "std"}, "accuracy": {...}, ..., "per_fold": [row, ...]}`` where each
row has the fold's ``split`` name, its ``test_speakers`` and its metrics (training adds ``best_epoch``
and ``val_uar``; evaluation adds ``clips``, ``roc_auc_macro`` and ``ece``, and a ``pooled`` report).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

METRICS: tuple[str, ...] = ("uar", "accuracy", "macro_f1")


def fold_summary(rows: list[dict], metrics: Sequence[str] = METRICS) -> dict:
    """Mean and (population) standard deviation over folds of each metric, with the rows."""
    table = pd.DataFrame(rows)
    summary: dict = {"folds": len(rows)}
    for metric in metrics:
        if metric in table:
            summary[metric] = {"mean": float(table[metric].mean()), "std": float(table[metric].std(ddof=0))}
    summary["per_fold"] = rows
    return summary


def write_fold_summary(summary: dict, folder: Path) -> None:
    """``summary.json`` and ``summary.csv`` (one row per fold) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    pd.DataFrame(summary["per_fold"]).to_csv(folder / "summary.csv", index=False)


def format_fold_summary(summary: dict, metrics: Sequence[str] = METRICS) -> str:
    """``5 folds: uar 0.620 ± 0.047, accuracy ...`` for the terminal."""
    return f"{summary['folds']} folds: " + ", ".join(
        f"{m} {summary[m]['mean']:.3f} ± {summary[m]['std']:.3f}" for m in metrics if m in summary)
