"""The run folder: checkpoints, history, manifest, what ``--resume`` reads back, and its safety.

A run folder holds ``best_model.pt`` (the epoch with the best validation UAR; weights, config,
labels, split, normaliser and metrics), ``last.pt`` (everything needed to resume: optimiser,
schedule, scaler, epoch, history; its weights are the saved ones, as in ``best_model.pt``, and with
``--average_epochs`` the other weights beside them: the raw ones training goes on from, or the average
while it is not saved yet; frozen weights only once),
``history.csv`` (one row per epoch) and ``manifest.json`` (status, config, split, data, versions,
git commit, seed, metrics, wall time over all sessions).
Every file is written atomically (a temporary file renamed into place), so an interruption never
leaves half a file. The manifest is written when a run starts (``status: running``) and after every
epoch, and says ``finished``, ``failed`` or ``interrupted`` at the end.

Nothing is replaced by accident: a folder that already holds a run is refused unless ``--resume``
(which must use the same options, but for :data:`~ser_lib.training.config.RESUMABLE` ones) or
``--overwrite`` (which deletes only the files a run writes); a lock keeps two processes out of one
folder.
"""
from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd
import torch

from .. import paths
from ..data.corpora import Dataset
from ..data.splits import fold_folders
from ..errors import ConfigError, TrainingError
from ..model import checkpoint
from .config import RESUMABLE, TrainConfig

#: The files a training run writes (in the run folder, and in each fold*/ folder of a K-fold run).
RUN_FILES = ("best_model.pt", "last.pt", "history.csv", "manifest.json", "summary.json", "summary.csv")
LOCK_FILE = ".lock"


@dataclass
class Progress:
    """The epochs so far: the history rows, the best validation UAR and its epoch (without validation
    actors there is no UAR to choose by: the last epoch is kept and ``best_uar`` stays None). With
    ``window`` > 1 an epoch is judged by the mean validation UAR of the last ``window`` epochs up to it,
    so that one lucky epoch on a small validation set is not chosen over a good stretch."""

    history: list[dict] = field(default_factory=list)
    best_uar: float | None = None
    best_epoch: int = -1
    window: int = 1

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
        score = row.get("val_uar")
        if score is not None and self.window > 1:
            recent = [r["val_uar"] for r in self.history[-self.window:] if r.get("val_uar") is not None]
            score = sum(recent) / len(recent)
        if score is None or self.best_uar is None or score > self.best_uar:
            self.best_uar, self.best_epoch = (None if score is None else float(score)), int(row["epoch"])
            return True
        return False

    def to_dict(self) -> dict:
        return {"epoch": self.next_epoch - 1, "history": self.history,
                "best": {"uar": self.best_uar, "epoch": self.best_epoch}}

    @classmethod
    def from_dict(cls, data: dict, window: int = 1) -> "Progress":
        uar = data["best"]["uar"]
        validated = any("val_uar" in row for row in data["history"])
        return cls(list(data["history"]), float(uar) if validated and uar is not None else None,
                   int(data["best"]["epoch"]), window)


class RunFolder:
    """The files of one run (one split or one fold), and its manifest over all sessions."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.best = self.path / "best_model.pt"
        self.last = self.path / "last.pt"
        self.history = self.path / "history.csv"
        self.manifest = self.path / "manifest.json"
        self._record: dict = {}
        self._sessions: list[dict] = []
        self._started = time.time()

    def read_manifest(self) -> dict | None:
        return json.loads(self.manifest.read_text()) if self.manifest.exists() else None

    def saved_config(self) -> dict | None:
        """The options the run in this folder was started with (manifest, else ``last.pt``)."""
        manifest = self.read_manifest()
        if manifest and "config" in manifest:
            return manifest["config"]
        if self.last.exists():
            return checkpoint.read(self.last).get("train_config")
        return None

    def finished_result(self) -> dict | None:
        """The result of a finished run, as training returned it (for ``--resume``); None otherwise."""
        manifest = self.read_manifest()
        if not manifest or manifest.get("status") != "finished":
            return None
        val_uar = manifest.get("val_uar")
        if val_uar is None and self.history.exists():  # folders written before val_uar was recorded
            history = pd.read_csv(self.history)
            window = int(manifest.get("config", {}).get("select_window", 1))  # as Progress judged the epochs
            best = history[history["epoch"].between(manifest["best_epoch"] - window, manifest["best_epoch"] - 1)]
            if "val_uar" in history and len(best):
                recent = [float(v) for v in best["val_uar"]]
                val_uar = sum(recent) / len(recent)
        return {"split": manifest["split"]["name"], "test_speakers": manifest["split"]["test"],
                "best_epoch": manifest["best_epoch"], "val_uar": val_uar, **manifest["test_metrics"]}

    # -- the manifest over sessions ----------------------------------------------------------------
    def begin(self, record: dict, changes: dict | None = None) -> None:
        """Write ``status: running`` with ``record``; a resumed run keeps its earlier sessions' time."""
        earlier = self.read_manifest() or {}
        self._sessions = list(earlier.get("sessions") or ([{"seconds": earlier["wall_seconds"]}]
                                                          if earlier.get("wall_seconds") else []))
        record = {**{k: earlier[k] for k in ("epochs_run", "best_epoch", "val_uar") if k in earlier}, **record}
        session = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": 0.0, "pid": os.getpid()}
        if changes:
            session["changed"] = {name: {"was": old, "now": new} for name, (old, new) in changes.items()}
        self._sessions.append(session)
        self._record, self._started = {**record, "status": "running"}, time.time()
        self.update()

    def update(self, **fields) -> None:
        """Rewrite the manifest (atomically) with ``fields`` added and this session's time so far."""
        self._record.update(fields)
        self._sessions[-1]["seconds"] = round(time.time() - self._started, 1)
        wall = round(sum(s["seconds"] for s in self._sessions), 1)
        _write_atomically(self.manifest, json.dumps({**self._record, "wall_seconds": wall,
                                                     "sessions": self._sessions}, indent=2, default=str))

    def stop(self, error: BaseException) -> None:
        """Record why the run stopped (its checkpoints stay for ``--resume``)."""
        if self._record:
            interrupted = isinstance(error, KeyboardInterrupt)
            self.update(status="interrupted" if interrupted else "failed",
                        error=None if interrupted else f"{type(error).__name__}: {error}")

    # -- checkpoints and history -------------------------------------------------------------------
    def save_epoch(self, model_payload: dict, progress: Progress, trainer_state: dict, improved: bool,
                   val_metrics: dict) -> None:
        """After an epoch: ``best_model.pt`` when it improved, ``history.csv``, ``last.pt``, the manifest."""
        epoch = progress.history[-1]["epoch"]
        if improved:
            checkpoint.save({**model_payload, "metrics": {"epoch": epoch, **val_metrics}}, self.best)
        self.write_history(progress.history)
        checkpoint.save({**model_payload, "metrics": {"epoch": epoch}, **trainer_state, **progress.to_dict()},
                        self.last)
        self.update(epochs_run=len(progress.history), best_epoch=progress.best_epoch + 1, val_uar=progress.best_uar)

    def write_history(self, history: list[dict]) -> None:
        keys = list(dict.fromkeys(k for row in history for k in row))
        tmp = self.history.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)
        tmp.replace(self.history)


# ----------------------------------------------------------------------------------------------
# The output folder as a whole: refuse, resume or replace; one process at a time
# ----------------------------------------------------------------------------------------------
def run_folders(out: Path) -> list[RunFolder]:
    """The run folder itself and, for a K-fold run, its fold folders."""
    return [RunFolder(out)] + [RunFolder(p) for p in fold_folders(out)]


def run_files(out: Path) -> list[str]:
    """The files an earlier run left in ``out`` (relative names)."""
    return [str(p.relative_to(out)) for folder in run_folders(out) for name in RUN_FILES
            if (p := folder.path / name).exists()]


def check_output_dir(config: TrainConfig) -> dict:
    """Refuse an output folder that would lose or mix runs; for ``--resume``, the option changes allowed.

    Nothing is written here. A folder with files of an earlier run needs ``--resume`` (same options
    but for :data:`RESUMABLE` ones) or ``--overwrite``; other files in it are never touched.
    """
    out = Path(config.output_dir).expanduser()
    _check_writable(out)
    found = run_files(out) if out.is_dir() else []
    trained = [name for name in found if Path(name).name in ("last.pt", "best_model.pt")]
    if not trained or config.overwrite:  # a run that never finished an epoch holds nothing to lose
        return {}
    if not config.resume:
        raise ConfigError(f"{out} already holds a run ({', '.join(found[:4])}{', ...' if len(found) > 4 else ''}). "
                          f"Continue it with --resume, replace it with --overwrite, or choose another --output_dir.")
    allowed: dict = {}
    for folder in run_folders(out):
        saved = folder.saved_config()
        if saved is None:
            continue
        changes = config.changes_from(_comparable(saved))
        refused = {k: v for k, v in changes.items() if not _harmless(config, k)}
        if refused:
            listing = "; ".join(_change_lines(refused))
            raise ConfigError(f"--resume with other options than the run in {folder.path} was started with "
                              f"({listing}). Resume with its options, or start a new run with --overwrite or "
                              f"another --output_dir. Options a resume may change: {', '.join('--' + name for name in RESUMABLE)}.")
        allowed.update(changes)
    return allowed


def _harmless(config: TrainConfig, name: str) -> bool:
    """Whether a resume may change option ``name``: :data:`RESUMABLE`, ``--corpus_stats`` where it
    changes nothing (training on one corpus, the others held out by --test_corpus, or no speaker
    normalisation) and ``--descriptor_set`` without descriptors: a run of an earlier release resumes as is."""
    training_corpora = len(config.datasets()) - bool(config.test_corpus)
    inert = (name == "corpus_stats" and (training_corpora < 2 or not config.speaker_norm)) or \
        (name == "descriptor_set" and not config.descriptors)
    return name in RESUMABLE or inert


def _change_lines(changes: dict[str, tuple]) -> list[str]:
    """``--option: was X, now Y`` for each change; a group of options (``--augment_*``) field by field."""
    prefixes = {f.name: f.metadata.get("prefix", "") for f in fields(TrainConfig)}
    lines = []
    for name, (old, new) in changes.items():
        if isinstance(old, dict) and isinstance(new, dict):
            lines += [f"--{prefixes.get(name, '')}{key}: was {old.get(key)!r}, now {new.get(key)!r}"
                      for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
        else:
            lines.append(f"--{name}: was {old!r}, now {new!r}")
    return lines


def _comparable(saved: dict) -> dict:
    """A saved config with its dataset folders resolved, as :meth:`TrainConfig.resolved` resolves a new one."""
    root = saved.get("dataset_root")
    resolved = {"dataset_root": str(Path(root).expanduser().resolve()) if root else root}
    if "dataset" in saved:
        resolved["dataset"] = [str(Dataset.parse(text)) for text in saved["dataset"]]
    return {**saved, **resolved}


def _check_writable(out: Path) -> None:
    existing = next(p for p in [out, *out.parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        reason = "it is a file" if not existing.is_dir() else "permission denied"
        raise ConfigError(f"cannot write to the output folder {out} ({existing}: {reason}); "
                          f"choose another with --output_dir")


def clear_run(out: Path) -> list[str]:
    """Delete the files an earlier run wrote (``--overwrite``) and its evaluations; keep anything else."""
    removed = run_files(out)
    for folder in run_folders(out):
        for name in RUN_FILES:
            (folder.path / name).unlink(missing_ok=True)
        for evaluation in folder.path.glob("evaluation*"):  # reports about the replaced models
            if evaluation.is_dir():
                shutil.rmtree(evaluation, ignore_errors=True)
        if folder.path != out and not any(folder.path.iterdir()):
            folder.path.rmdir()
    return removed


class RunLock:
    """An exclusive lock on a run folder, so two processes never train into the same files.

    A lock on ``.lock`` (``flock``; ``msvcrt.locking`` on Windows): the operating system releases it when
    the process ends, however it ends (``kill -9`` included), so a stale lock never blocks a ``--resume``.
    """

    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        self._file = None

    def __enter__(self) -> "RunLock":
        self._file = open(self.path, "a+")
        try:
            _lock_exclusively(self._file)
        except OSError:
            self._file.seek(0)
            owner = self._file.read().strip() or "another process"
            self._file.close()
            raise TrainingError(f"{self.path.parent} is in use: training process {owner} is writing to it. "
                                f"Wait for it to finish (or stop it), or choose another --output_dir.") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()} on {platform.node()}")
        self._file.flush()
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()  # the file stays: deleting it could let two processes lock two different files


def _lock_exclusively(file) -> None:
    """An exclusive, non-blocking lock on an open file (``OSError`` when another process holds it)."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        file.seek(0)
        msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def versions() -> dict:
    """Versions of Python and the libraries that decide a run's numbers."""
    import numpy as np
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
