"""The baseline ladder: what each idea of the model buys, one rung at a time, on the same folds.

Rungs, each adding one idea to the one before (notebook 08):

* chance - a classifier that ignores the audio (UAR 1 / classes);
* the project's clip descriptors + logistic regression; openSMILE's eGeMAPS + a linear SVM
  (the field's classical baselines, :mod:`ser_lib.training.baseline`);
* the log-mel CNN with the mean of its frames (no context transformer);
* + the context transformer and multi-head attention pooling;
* + the clip descriptors beside the pooled vector;
* + per-speaker normalisation of the inputs (each test speaker's own unlabelled clips);
* + a pretrained voice encoder's statistics beside the descriptors (``descriptor_set`` ser+voice): the
  default model.

Every rung is scored on the same speaker-wise folds (``train --folds``: consecutive speakers), so
the difference between two rungs can be taken fold by fold (a paired difference) and given a
confidence interval: with 5 folds, an interval that spans zero means the step is not shown to help.
Nothing here is tuned on a fold's test speakers: the classifiers choose their regularisation and the
models their epoch on the training speakers only. The model rungs are kept in
``out/<rung>/<subset>-<k>folds`` (the layout of ``benchmarks/accuracy.py``, which shares them) and an
interrupted ladder resumes where it stopped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import corpora, labels
from ..reports.metrics import paired_interval
from . import baseline
from .config import TrainConfig
from .run import train


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: ``kind`` chance, classical (``options``: feature set, classifier) or
    model (``options``: :class:`TrainConfig` options)."""

    name: str
    label: str
    kind: str
    options: dict = field(default_factory=dict)


RUNGS: tuple[Rung, ...] = (
    Rung("chance", "chance", "chance"),
    Rung("descriptors_lr", "clip descriptors + logistic regression", "classical",
         {"feature_set": "statistics", "classifier": "logistic"}),
    Rung("egemaps_svm", "eGeMAPS + linear SVM", "classical", {"feature_set": "egemaps", "classifier": "svm"}),
    Rung("cnn", "log-mel CNN, mean of its frames", "model",
         {"speaker_norm": False, "descriptors": False, "context_layers": 0, "pooling": "mean"}),
    Rung("baseline", "+ context transformer, attention pooling", "model",
         {"speaker_norm": False, "descriptors": False}),
    Rung("plain", "+ clip descriptors", "model", {"speaker_norm": False, "descriptors": True, "descriptor_set": "ser"}),
    Rung("ser_descriptors", "+ per-speaker normalisation", "model",
         {"speaker_norm": True, "descriptors": True, "descriptor_set": "ser"}),
    Rung("default", "+ a pretrained voice encoder's statistics", "model",
         {"speaker_norm": True, "descriptors": True, "descriptor_set": "ser+voice"}),
)


def rung(name: str) -> Rung:
    """A rung of :data:`RUNGS` by name."""
    for step in RUNGS:
        if step.name == name:
            return step
    raise KeyError(f"no rung {name!r}; rungs: {', '.join(r.name for r in RUNGS)}")


def _data_options(dataset: str) -> dict:
    """TrainConfig's data options for ``NAME=PATH``: a RAVDESS folder as ``dataset_root``, the form
    ``benchmarks/accuracy.py`` uses, so a ladder resumes (or reuses) that benchmark's runs."""
    parsed = corpora.Dataset.parse(dataset)
    return {"dataset_root": parsed.root} if parsed.corpus == "ravdess" else {"dataset": (str(parsed),)}


def model_rung_dir(out: str | Path, name: str, subset: str, folds: int) -> Path:
    """Where a model rung's folds are kept."""
    return Path(out) / name / f"{subset}-{folds}folds"


def train_rung(step: Rung, dataset: str, out: str | Path, subset: str = "all", folds: int = 5, epochs: int = 30,
               device: str = "auto", **overrides) -> dict:
    """Cross-validate a model rung (finished folds are reused); ``train``'s summary of the folds.
    ``overrides`` (other TrainConfig options) never change the rung's own options."""
    options = dict(_data_options(dataset), output_dir=str(model_rung_dir(out, step.name, subset, folds)),
                   emotion_subset=subset, folds=folds, epochs=epochs, device=device, resume=True, progress=False)
    options.update(overrides)
    options.update(step.options)  # a quick run's smaller model keeps what the rung is about
    return train(TrainConfig(**options))


def run(dataset: str, out: str | Path, subset: str = "all", folds: int = 5, epochs: int = 30,
        rungs: tuple[str, ...] | None = None, device: str = "auto", progress: bool = True,
        **overrides) -> pd.DataFrame:
    """Score every rung (``rungs``: names, default all) on the same speaker-wise folds of ``dataset``
    (``NAME=PATH``). Returns the test UAR of each rung (rows, in ladder order) on each fold (columns
    ``fold1`` ...). ``overrides`` are TrainConfig options for every model rung (e.g. a shorter
    ``max_seconds`` for a quick run)."""
    from tqdm.auto import tqdm

    steps = [rung(name) for name in rungs] if rungs else list(RUNGS)
    keep = labels.subset_labels(subset)
    parsed = corpora.Dataset.parse(dataset)
    clips = corpora.index(parsed.folder(progress=progress), parsed.corpus)
    clips = clips[clips["emotion"].isin(keep)].reset_index(drop=True)
    scores, speakers = {}, {}
    for step in tqdm(steps, desc="ladder", unit="rung", disable=not progress):
        if step.kind == "chance":
            scores[step.label] = [1 / clips["emotion"].nunique()] * folds  # the classes this corpus has
        elif step.kind == "classical":
            table = baseline.feature_table(clips, feature_set=step.options["feature_set"])
            result = baseline.cross_validate(table, clips, split="speaker", folds=folds, C=None,
                                             classifier=step.options["classifier"])
            scores[step.label] = result["per_fold_uar"]
            speakers[step.label] = [tuple(g) for g in result["test_speakers"]]
        else:
            summary = train_rung(step, dataset, out, subset, folds, epochs, device, **overrides)
            scores[step.label] = [f["uar"] for f in summary["per_fold"]]
            speakers[step.label] = [tuple(f["test_speakers"]) for f in summary["per_fold"]]
    if len(set(map(tuple, speakers.values()))) > 1:
        raise RuntimeError(f"the rungs were scored on different folds: {speakers}")
    return pd.DataFrame(scores, index=[f"fold{i + 1}" for i in range(folds)]).T


def steps(uar: pd.DataFrame) -> pd.DataFrame:
    """Each rung against the rung before it: the mean UAR, the per-fold paired difference, its mean
    and 95% confidence interval (Student's t over folds)."""
    rows = []
    for i, (name, values) in enumerate(uar.iterrows()):
        row = {"rung": name, "UAR": values.mean(), "± std": values.std(ddof=0)}
        if i:
            diff = values.to_numpy() - uar.iloc[i - 1].to_numpy()
            low, high = paired_interval(diff)
            row.update({"gain": diff.mean(), "95% CI low": low, "95% CI high": high,
                        "folds better": int(np.sum(diff > 0))})
        rows.append(row)
    return pd.DataFrame(rows).set_index("rung")
