"""The classic SER baseline: clip-level descriptors + a linear classifier, and what splits do to it.

Notebooks 01 and 02 use it to show two lessons with numbers: a random clip-level split lets the
model recognise voices it has heard and inflates accuracy, and speaker effects dominate acoustic
features until each speaker's features are normalised.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from .. import paths
from ..data import audio, features, splits
from ..data.cache import FeatureCache
from ..data.labels import EMOTIONS
from ..model.normalizer import normalize_by_speaker


def _clip_features(path: str) -> dict[str, float]:
    return features.clip_statistics(audio.load(path))


def feature_table(clips: pd.DataFrame, cache: bool = True, workers: int | None = None) -> pd.DataFrame:
    """:func:`~ser_lib.data.features.clip_statistics` of every clip (rows aligned with ``clips``).

    Results are cached on disk by file content (``FeatureCache``), so a second call is fast.
    """
    files = clips["path"].tolist()
    if cache:
        store = FeatureCache(paths.cache_dir() / "clip-statistics")
        params = {"version": features.DESCRIPTOR_VERSION}
        rows = store.get_many(files, "clip_statistics", params, _clip_features, files, workers)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(_clip_features, files, chunksize=8))
    return pd.DataFrame(rows, index=clips.index)


def speaker_normalize(table: pd.DataFrame, speakers: pd.Series) -> pd.DataFrame:
    """Z-normalise every feature within each speaker (uses only that speaker's own, unlabelled clips)."""
    values = normalize_by_speaker(table.to_numpy(dtype=np.float64), np.asarray(speakers))
    return pd.DataFrame(values, index=table.index, columns=table.columns)


def cross_validate(table: pd.DataFrame, clips: pd.DataFrame, split: str = "speaker", folds: int | None = 5,
                   seed: int = 0, C: float = 0.5) -> dict:
    """Accuracy and UAR of a logistic regression over ``folds`` folds (means, per fold, pooled confusion,
    and each fold's test speakers for ``split="speaker"``).

    ``split="speaker"`` holds out whole speakers (speaker-independent; ``folds=None`` with the 24
    RAVDESS actors gives the EmoBox folds); ``split="random"`` shuffles clips into folds regardless of
    who speaks, the mistake that inflates published RAVDESS numbers.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, confusion_matrix, recall_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = table.to_numpy()
    y = clips["emotion"].to_numpy()
    if split == "speaker":
        speakers = clips["speaker"].unique()
        groups = splits.kfold_groups(speakers, None if folds is None else min(folds, len(speakers)))
        test_masks = [clips["speaker"].isin(g).to_numpy() for g in groups]
    elif split == "random":
        groups = None
        order = np.random.default_rng(seed).permutation(len(clips))
        test_masks = [np.isin(np.arange(len(clips)), part) for part in np.array_split(order, folds or 5)]
    else:
        raise ValueError(f"split must be 'speaker' or 'random', got {split!r}")
    labels = [e for e in EMOTIONS if e in set(y)]
    accs, uars = [], []
    pooled = np.zeros((len(labels), len(labels)), dtype=int)
    for test in test_masks:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=C))
        model.fit(x[~test], y[~test])
        pred = model.predict(x[test])
        accs.append(accuracy_score(y[test], pred))
        uars.append(recall_score(y[test], pred, average="macro"))
        pooled += confusion_matrix(y[test], pred, labels=labels)
    return {"accuracy": float(np.mean(accs)), "uar": float(np.mean(uars)), "uar_std": float(np.std(uars)),
            "per_fold_uar": [float(u) for u in uars], "confusion": pooled, "labels": labels,
            "test_speakers": [list(g) for g in groups] if groups is not None else None}
