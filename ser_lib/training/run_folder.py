"""The run folder: checkpoints, history, manifest, and what ``--resume`` reads back.

A run folder holds ``best_model.pt`` (the epoch with the best validation UAR; weights, config,
labels, split, normaliser and metrics), ``last.pt`` (everything needed to resume: optimiser,
schedule, scaler, epoch, history), ``history.csv`` (one row per epoch) and ``manifest.json``
(config, split, data, versions, git commit, seed, metrics, wall time). Every file is written
atomically (a temporary file renamed into place), so an interruption never leaves half a file.
"""
from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import paths
from ..model import checkpoint


@dataclass
class Progress:
    """The epochs so far: the history rows, the best validation UAR and its epoch."""

    history: list[dict] = field(default_factory=list)
    best_uar: float = -1.0
    best_epoch: int = -1

    @property
    def next_epoch(self) -> int:
        return len(self.history)

    @property
    def stale(self) -> int:
        """Epochs since the best one."""
        return sum(1 for row in self.history if row["epoch"] > self.best_epoch)

    def record(self, row: dict) -> bool:
        """Add an epoch's row; whether it is the best so far (without validation actors: the last)."""
        self.history.append(row)
        score = row.get("val_uar", float(row["epoch"]))
        if score > self.best_uar:
            self.best_uar, self.best_epoch = float(score), int(row["epoch"])
            return True
        return False

    def to_dict(self) -> dict:
        return {"epoch": self.next_epoch - 1, "history": self.history,
                "best": {"uar": self.best_uar, "epoch": self.best_epoch}}

    @classmethod
    def from_dict(cls, data: dict) -> "Progress":
        return cls(list(data["history"]), float(data["best"]["uar"]), int(data["best"]["epoch"]))


class RunFolder:
    """The files of one run (one split or one fold)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.best = self.path / "best_model.pt"
        self.last = self.path / "last.pt"
        self.history = self.path / "history.csv"
        self.manifest = self.path / "manifest.json"

    def read_manifest(self) -> dict | None:
        return json.loads(self.manifest.read_text()) if self.manifest.exists() else None

    def write_manifest(self, manifest: dict) -> None:
        _write_atomically(self.manifest, json.dumps(manifest, indent=2, default=str))

    def finished_result(self) -> dict | None:
        """The result of a finished run, as training returned it (for ``--resume``); None otherwise."""
        manifest = self.read_manifest()
        if not manifest or manifest.get("status") != "finished":
            return None
        val_uar = manifest.get("val_uar")
        if val_uar is None and self.history.exists():  # folders written before val_uar was recorded
            history = pd.read_csv(self.history)
            best = history[history["epoch"] == manifest["best_epoch"] - 1]
            if "val_uar" in history and len(best):
                val_uar = float(best["val_uar"].iloc[0])
        return {"split": manifest["split"]["name"], "test_actors": manifest["split"]["test"],
                "best_epoch": manifest["best_epoch"], "val_uar": val_uar, **manifest["test_metrics"]}

    def save_epoch(self, model_payload: dict, progress: Progress, trainer_state: dict, improved: bool,
                   val_metrics: dict) -> None:
        """After an epoch: ``best_model.pt`` when it improved, ``history.csv`` and ``last.pt``."""
        epoch = progress.history[-1]["epoch"]
        if improved:
            checkpoint.save({**model_payload, "metrics": {"epoch": epoch, **val_metrics}}, self.best)
        self.write_history(progress.history)
        checkpoint.save({**model_payload, "metrics": {"epoch": epoch}, **trainer_state, **progress.to_dict()},
                        self.last)

    def write_history(self, history: list[dict]) -> None:
        keys = list(dict.fromkeys(k for row in history for k in row))
        tmp = self.history.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)
        tmp.replace(self.history)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def versions() -> dict:
    """Versions of Python and the libraries that decide a run's numbers."""
    import numpy as np
    import torch
    import torchaudio
    import transformers

    from .. import __version__

    return {"python": platform.python_version(), "torch": torch.__version__, "torchaudio": torchaudio.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__, "ser_lib": __version__}


def git_commit() -> str | None:
    """The checkout's commit, when ser_lib runs from a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
