"""Evaluation reports: metrics, figures and an error analysis a researcher can read on its own.

``python -m ser_lib evaluate --model_path RUN/best_model.pt`` evaluates a checkpoint on the test
speakers of its own split (recorded in the checkpoint), or on ``--speakers``; notebook 05 walks through
the result. Several checkpoints of the same classes are evaluated as an ensemble (the mean of their
probabilities). It writes into ``--output_dir`` (default ``RUN/evaluation``):

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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..data import corpora, splits
from ..data import labels as emotion_labels
from ..data.corpora import Dataset
from ..data.dataset import ClipDataset, load_table
from ..devices import resolve_device
from ..errors import CheckpointError, ConfigError, DatasetError
from ..inference.batch import predict_dataset
from ..model import checkpoint as ckpt_io
from ..model.enrolment import ALL_CLIPS, COLD_START, Enrolment
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
    """What :func:`evaluate_checkpoint` produced: the metrics, the per-clip predictions (of the headline
    protocol, and of each protocol that was run, by :attr:`Enrolment.key`: ``all``, ``none``, ``10``,
    ``3:neutral``) and the folder."""

    metrics: dict
    predictions: Predictions
    folder: Path
    by_protocol: dict[str, Predictions] = field(default_factory=dict)


def predict_checkpoint(loaded: ckpt_io.Checkpoint, clips: pd.DataFrame, batch_size: int = BATCH_SIZE,
                       device: str | torch.device = "cpu", progress: bool = True,
                       adapt: Sequence[Enrolment] = (ALL_CLIPS,), loaded_audio: tuple | None = None
                       ) -> dict[str, Predictions]:
    """Probabilities of a loaded checkpoint for every loadable clip of ``clips``, scored over the classes
    the model and the clips share, for each speaker-statistics protocol in ``adapt`` (by its key;
    :mod:`~ser_lib.model.enrolment`). Clips of an emotion the model does not know are left out.
    ``loaded_audio`` is what :func:`~ser_lib.data.dataset.load_table` gave for these clips with the
    checkpoint's audio settings, when another model of an ensemble has read them already."""
    clips, waves, failures = loaded_audio or load_table(clips, loaded.audio, progress=progress)
    shared = [label for label in loaded.labels if label in set(clips["emotion"])]
    columns = [loaded.labels.index(label) for label in shared]
    y_true = clips["emotion"].map(emotion_labels.label_index(shared)).to_numpy()
    results = {}
    for protocol in adapt:
        inputs = loaded.normalizer.inputs(waves, clips["path"].tolist(), clips["speaker"].tolist(),
                                          adapt=not protocol.cold, enrolment=protocol.draw(clips),
                                          corpora=clips["corpus"].tolist() if "corpus" in clips else None)
        dataset = ClipDataset(clips, waves, y_true, loaded.audio, train=False, inputs=inputs)
        out = predict_dataset(loaded.model.to(device), dataset, batch_size, device, progress=progress)
        probs = out["probs"][np.argsort(out["index"])][:, columns]
        results[protocol.key] = Predictions(clips, probs / probs.sum(1, keepdims=True), y_true, shared, failures)
    return results


def predict_ensemble(members: Sequence[ckpt_io.Checkpoint], clips: pd.DataFrame, batch_size: int = BATCH_SIZE,
                     device: str | torch.device = "cpu", progress: bool = True,
                     adapt: Sequence[Enrolment] = (ALL_CLIPS,)) -> dict[str, Predictions]:
    """:func:`predict_checkpoint` of each model, and for each protocol the mean of their probabilities
    (models of the same classes; the clips are read once per audio setting)."""
    audio: list[tuple] = []  # (settings, what load_table gave)
    for loaded in members:
        if not any(settings == loaded.audio for settings, _ in audio):
            read = load_table(clips, loaded.audio, progress=progress)
            if audio and read[0]["path"].tolist() != audio[0][1][0]["path"].tolist():
                raise DatasetError("the models of the ensemble could not read the same clips (their audio settings "
                                   "differ): evaluate them one by one")
            audio.append((loaded.audio, read))
    runs = [predict_checkpoint(loaded, clips, batch_size, device, progress, adapt,
                               loaded_audio=next(got for settings, got in audio if settings == loaded.audio))
            for loaded in members]
    first = runs[0]
    return {key: replace(pred, probs=np.mean([run[key].probs for run in runs], axis=0)) for key, pred in first.items()}


def checkpoint_paths(given: Sequence[str | Path]) -> list[Path]:
    """The checkpoint files of one model or an ensemble (a run folder stands for its ``best_model.pt``),
    refused when empty, when a K-fold folder is among several, or when one checkpoint is given twice."""
    if not given:
        raise ConfigError("no checkpoint to evaluate: give a best_model.pt (or several, for an ensemble)")
    if len(given) > 1:
        for path in map(Path, given):
            if path.is_dir() and fold_checkpoints(path):
                raise ConfigError(f"{path} is a K-fold run folder: an ensemble is of checkpoints (best_model.pt or "
                                  f"run folders); evaluate a K-fold folder on its own")
    return ckpt_io.model_files(list(given))


def load_ensemble(model_paths: Sequence[str | Path], device) -> list[ckpt_io.Checkpoint]:
    """The checkpoints of an ensemble, refused unless they predict the same classes in the same order and
    all use speaker normalisation or none does."""
    members = [ckpt_io.load(path, device) for path in model_paths]
    ckpt_io.check_ensemble(members, list(model_paths))
    return members


def _check_subset(loaded: ckpt_io.Checkpoint, model_path, emotion_subset: str | None) -> None:
    if emotion_subset is None:
        return
    asked = emotion_labels.subset_labels(emotion_subset)
    if asked != loaded.labels:
        raise CheckpointError(f"{model_path} predicts {len(loaded.labels)} classes ({', '.join(loaded.labels)}) but "
                              f"--emotion_subset {emotion_subset} asks for {', '.join(asked)}; leave "
                              f"--emotion_subset out or use a model trained on {emotion_subset}")


def training_datasets(loaded: ckpt_io.Checkpoint) -> list[Dataset]:
    """The datasets a checkpoint was trained on (as its training options name them)."""
    config = loaded.train_config
    return corpora.datasets_of(config.get("dataset"), config.get("dataset_root")) or [Dataset("synthetic")]


def _evaluation_clips(loaded: ckpt_io.Checkpoint, datasets: list[Dataset], speakers: Sequence[str] | None,
                      progress: bool) -> tuple[pd.DataFrame, list[str], dict]:
    """The clips to evaluate on, their speakers, and what was left out: with ``speakers`` those; on
    the training corpora, the checkpoint's test speakers; on another corpus, every speaker."""
    result = corpora.scan(datasets, progress=progress)
    clips = result.clips
    on_training_data = {d.corpus for d in datasets} <= {d.corpus for d in training_datasets(loaded)}
    present = corpora.speakers_of(clips)
    if speakers:
        wanted = splits.resolve(speakers, present, "the requested speakers", "Pass --speakers or another --dataset.")
    elif on_training_data:
        wanted = splits.resolve(loaded.split.get("test", ()), present, "the test speakers of the checkpoint's split",
                                f"Searched {', '.join(map(str, datasets))}; pass --speakers or another --dataset.")
    else:
        wanted = tuple(present)
    clips = clips[clips["speaker"].isin(wanted)]
    unknown = clips[~clips["emotion"].isin(loaded.labels)]["emotion"].value_counts().to_dict()
    clips = clips[clips["emotion"].isin(loaded.labels)].reset_index(drop=True)
    shared = [label for label in loaded.labels if label in set(clips["emotion"])]
    if len(shared) < 2:
        raise DatasetError(f"the model's classes ({', '.join(loaded.labels)}) and the emotions of "
                           f"{', '.join(map(str, datasets))} share {len(shared)} class(es) "
                           f"({', '.join(shared) or 'none'}): nothing to score")
    left_out = {"model_classes_without_clips": [label for label in loaded.labels if label not in shared],
                "clips_of_other_emotions": {str(k): int(v) for k, v in unknown.items()}}
    return clips, list(wanted), left_out


def default_folder(model_path: str | Path, speakers: Sequence[str] | None = None, corpus: str | None = None,
                   models: int = 1) -> Path:
    """Where an evaluation goes without ``--output_dir``: ``evaluation/`` beside the checkpoint for its
    own test speakers, ``evaluation-cremad/`` on another corpus, ``evaluation-speakers-19-20/`` for
    ``--speakers 19,20``; an ensemble of ``models`` checkpoints adds ``-ensemble-N`` (beside the first)."""
    name = "evaluation" + (f"-{corpus}" if corpus else "")
    if speakers:
        ids = [s.split(":")[-1] for s in speakers]
        name += "-speakers-" + ("-".join(ids) if len(ids) <= 6 else f"{ids[0]}-to-{ids[-1]}-{len(ids)}")
    if models > 1:
        name += f"-ensemble-{models}"
    return Path(model_path).parent / name


def check_free(folder: Path, overwrite: bool) -> None:
    """Refuse to replace an earlier evaluation unless asked."""
    if not overwrite and any((folder / name).exists() for name in ("metrics.json", "report.md", "summary.json")):
        raise ConfigError(f"{folder} already holds an evaluation ({folder / 'metrics.json'} says of which model); "
                          f"write this one elsewhere with --output_dir, or replace it with --overwrite")


def evaluate_checkpoint(model_path: str | Path | Sequence[str | Path], datasets: Sequence[Dataset | str] | None = None,
                        speakers: Sequence[str] | None = None, emotion_subset: str | None = None,
                        output_dir: str | Path | None = None, batch_size: int = BATCH_SIZE, device: str = "auto",
                        adapt: str | int = "all", adapt_emotions: str | Sequence[str] | None = None,
                        adapt_seed: int = 0, compare: Sequence[Enrolment] = (COLD_START, ALL_CLIPS),
                        progress: bool = True, overwrite: bool = False) -> Evaluation:
    """Evaluate one checkpoint, or an ensemble (a list of them: the mean of their probabilities, e.g. one
    recipe trained with several seeds; a run folder stands for its ``best_model.pt``), and write
    metrics, predictions, figures and report into ``output_dir`` (an earlier evaluation there is
    replaced only with ``overwrite``). Each model of an ensemble uses its own normalisation statistics;
    the test speakers, the default datasets and the report's descriptions follow the first.

    ``datasets`` (``NAME=PATH``) default to the ones the model was trained on (an ensemble's first
    model: its split gives the test speakers); on another corpus the model is scored over the classes
    both share. For a model with speaker normalisation the headline uses ``adapt`` (``all``: each
    speaker's own statistics from all their clips; ``none``: cold start; ``K``: K random clips of the
    speaker, drawn with ``adapt_seed``) from ``adapt_emotions`` only when given
    (:mod:`~ser_lib.model.enrolment`), and the report gives the ``compare`` protocols beside it (by
    default the cold start and ``all``).
    """
    paths = checkpoint_paths([model_path] if isinstance(model_path, (str, Path)) else model_path)
    datasets = [d if isinstance(d, Dataset) else Dataset.parse(d) for d in datasets] if datasets else None
    device = resolve_device(device)
    members = load_ensemble(paths, device)
    loaded = members[0]
    datasets = datasets or training_datasets(loaded)
    _check_subset(loaded, paths[0], emotion_subset)
    headline = Enrolment.parse(adapt, adapt_emotions, adapt_seed)
    clips, wanted, left_out = _evaluation_clips(loaded, datasets, speakers, progress)
    foreign = [d.corpus for d in datasets if d.corpus not in {t.corpus for t in training_datasets(loaded)}]
    out = Path(output_dir) if output_dir else default_folder(paths[0], wanted if speakers else None,
                                                             "-".join(foreign) or None, len(paths))
    check_free(out, overwrite)
    leaked = sorted(set(wanted) & {s for m in members for part in ("train", "val") for s in m.split.get(part, ())},
                    key=corpora.natural_key)
    if leaked:
        log.warning("speakers %s were used for training or model selection: their scores are not "
                    "speaker-independent", ", ".join(leaked))
    protocols = _protocols(loaded, headline, compare)
    predictions = predict_ensemble(members, clips, batch_size, device, progress, protocols)
    own = sorted(set(loaded.normalizer.corpus_stats) & set(clips["corpus"])) if loaded.normalizer.speaker_norm else []
    pred = predictions[protocols[0].key]
    several = len(paths) > 1
    title = "Evaluation report" + (f": ensemble of {len(paths)} models (mean probabilities)" if several else "")
    metrics = write_evaluation(pred, out, title, model_path=[str(p) for p in paths] if several else str(paths[0]),
                               datasets=[str(d) for d in datasets], speakers=wanted, leaked_speakers=leaked,
                               adapt=protocols[0].key, left_out=left_out,
                               protocols=_protocol_scores(protocols, predictions, own))
    return Evaluation(metrics, pred, out, predictions)


def _protocols(loaded: ckpt_io.Checkpoint, headline: Enrolment, compare: Sequence[Enrolment]) -> list[Enrolment]:
    """The speaker-statistics protocols to run, the headline first (a model without speaker normalisation
    has one: its inputs do not depend on the speaker)."""
    if not loaded.normalizer.speaker_norm:
        if headline.key not in (COLD_START.key, ALL_CLIPS.key):
            log.warning("this model was trained without speaker normalisation: --adapt %s changes nothing",
                        headline.key)
        return [ALL_CLIPS if not headline.cold else headline]
    protocols = [headline]
    for other in compare:
        if other.key not in {p.key for p in protocols}:
            protocols.append(other)
    return protocols


def _protocol_scores(protocols: Sequence[Enrolment], predictions: dict[str, Predictions],
                     own_statistics: Sequence[str] = ()) -> dict:
    """UAR, accuracy and macro-F1 under each speaker-statistics protocol that was run, with its description
    (each says which corpora's clips start from their own corpus's training statistics)."""
    scores = {}
    for protocol in protocols:
        p = predictions[protocol.key]
        metrics = compute_metrics(p.y_true, p.probs, p.labels)
        scores[protocol.name] = {"description": protocol.describe(own_statistics),
                                 **{k: metrics[k] for k in ("uar", "accuracy", "macro_f1")}}
    return scores


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


def evaluate_folds(run_dir: str | Path, datasets: Sequence[Dataset | str] | None = None,
                   output_dir: str | Path | None = None, batch_size: int = BATCH_SIZE, device: str = "auto",
                   adapt: str | int = "all", adapt_emotions: str | Sequence[str] | None = None, adapt_seed: int = 0,
                   progress: bool = True, overwrite: bool = False) -> dict:
    """Evaluate every fold of a K-fold run on its own test speakers: a summary table (mean ± std over
    folds) and a full report of the predictions pooled over folds (every speaker tested exactly once)."""
    run_dir = Path(run_dir)
    folds = fold_checkpoints(run_dir)
    if not folds:
        raise CheckpointError(f"{run_dir} has no fold*/best_model.pt: is it a `train --folds K` run folder?")
    out = Path(output_dir) if output_dir else run_dir / "evaluation"
    for folder in [out, *(default_folder(path) for path in folds)]:
        check_free(folder, overwrite)  # all of them before any work
    rows, parts = [], []
    for path in folds:
        result = evaluate_checkpoint(path, datasets, batch_size=batch_size, device=device, adapt=adapt,
                                     adapt_emotions=adapt_emotions, adapt_seed=adapt_seed,
                                     progress=progress, overwrite=overwrite)
        rows.append({"split": path.parent.name, "test_speakers": result.metrics["speakers"],
                     "clips": result.metrics["n_clips"], **{k: result.metrics[k] for k in FOLD_METRICS}})
        parts.append(result.predictions)
    pooled = write_evaluation(pool_predictions(parts), out / "pooled", title=f"Pooled over {len(folds)} folds",
                              model_path=str(run_dir / "fold*" / "best_model.pt"),
                              datasets=result.metrics["datasets"], adapt=result.metrics["adapt"],
                              speakers=corpora.speakers_of(pd.concat([p.clips for p in parts])))
    summary = fold_summary(rows, FOLD_METRICS)
    summary["pooled"] = {k: pooled[k] for k in ("labels", "accuracy", "uar", "macro_f1", "per_class",
                                                "confusion_matrix")}
    write_fold_summary(summary, out)
    (out / "summary.md").write_text(render_fold_summary(summary, run_dir, FOLD_METRICS))
    return summary
