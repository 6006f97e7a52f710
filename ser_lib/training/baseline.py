"""The classic SER baseline: clip-level descriptors + a linear classifier, and what splits do to it.

Notebooks 01 and 02 use it to show two lessons with numbers: a random clip-level split lets the
model recognise voices it has heard and inflates accuracy, and speaker effects dominate acoustic
features until each speaker's features are normalised. The features are the project's clip
statistics (``feature_set="statistics"``), the field's standard set, openSMILE's 88 eGeMAPS
functionals (``feature_set="egemaps"``), or what a voice encoder pretrained on thousands of speakers
hears (``feature_set="voice"``: its layers' statistics over the trimmed clip, :mod:`ser_lib.data.voice`);
the classifier a logistic regression or a linear SVM. :func:`cross_validate` scores speaker-wise folds
of one table, :func:`transfer` one set of speakers (another corpus) from another.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import paths
from ..data import audio, egemaps, features, splits, voice
from ..data.cache import FeatureCache
from ..data.labels import EMOTIONS
from ..model.normalizer import normalize_by_speaker
from ..workers import process_pool

FEATURES = ("statistics", "egemaps", "voice")
CLASSIFIERS = ("logistic", "svm")
#: Regularisation strengths tried inside the training speakers when ``C`` is not given.
C_GRID = (0.001, 0.01, 0.1, 1.0)


def _clip_features(path: str) -> dict[str, float]:
    return features.clip_statistics(audio.load(path))


def _clip_egemaps(path: str) -> dict[str, float]:
    return dict(zip(egemaps.names(), egemaps.functionals(audio.load(path, sr=None), audio.file_rate(path)).tolist()))


def _clip_voice(path: str) -> dict[str, float]:
    return dict(zip(voice.names(), voice.statistics(audio.trim_silence(audio.load(path)), audio.SAMPLE_RATE).tolist()))


def _store(feature_set: str) -> tuple[FeatureCache, str, dict]:
    """Where a feature set's values are cached, under which name and parameters."""
    if feature_set == "egemaps":
        return FeatureCache(paths.cache_dir() / "egemaps"), "egemaps", {"set": egemaps.version()}
    if feature_set == "voice":
        return FeatureCache(paths.cache_dir() / "voice"), "voice", {"weights": voice.version(),
                                                                    "trim_floor_db": audio.TRIM_FLOOR_DB}
    return FeatureCache(paths.cache_dir() / "clip-statistics"), "clip_statistics", \
        {"version": features.DESCRIPTOR_VERSION}


def feature_table(clips: pd.DataFrame, cache: bool = True, workers: int | None = None,
                  feature_set: str = "statistics") -> pd.DataFrame:
    """Clip-level features of every clip (rows aligned with ``clips``): the project's
    :func:`~ser_lib.data.features.clip_statistics`, or (``feature_set="egemaps"``) the 88 eGeMAPS
    functionals of the whole recording at its own sample rate, or (``"voice"``) the voice encoder's
    statistics of the recording trimmed of its leading and trailing silence.

    Results are cached on disk by file content (``FeatureCache``), so a second call is fast.
    """
    if feature_set not in FEATURES:
        raise ValueError(f"unknown feature set {feature_set!r}; use one of {', '.join(FEATURES)}")
    function = {"statistics": _clip_features, "egemaps": _clip_egemaps, "voice": _clip_voice}[feature_set]
    files = clips["path"].tolist()
    if cache:
        store, name, params = _store(feature_set)
        rows = store.get_many(files, name, params, function, files, workers)
    else:
        if feature_set == "voice":
            voice.weights_path()  # found (or downloaded) once, here, before the workers look
        with process_pool(workers) as pool:
            rows = list(pool.map(function, files, chunksize=8))
    return pd.DataFrame(rows, index=clips.index)


def speaker_normalize(table: pd.DataFrame, speakers: pd.Series) -> pd.DataFrame:
    """Z-normalise every feature within each speaker (uses only that speaker's own, unlabelled clips)."""
    values = normalize_by_speaker(table.to_numpy(dtype=np.float64), np.asarray(speakers))
    return pd.DataFrame(values, index=table.index, columns=table.columns)


def _classifier(kind: str, C: float | None, speakers: np.ndarray):
    """A standardising pipeline with a logistic regression or a linear SVM; ``C=None`` picks C from
    :data:`C_GRID` by UAR in speaker-wise folds of the training speakers (``speakers``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if kind not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {kind!r}; use one of {', '.join(CLASSIFIERS)}")
    strength = 1.0 if C is None else C
    model = LogisticRegression(max_iter=2000, C=strength) if kind == "logistic" else \
        LinearSVC(C=strength, max_iter=20000)
    pipeline = Pipeline([("scale", StandardScaler()), ("model", model)])
    if C is not None:
        return pipeline, {}
    if len(set(speakers)) < 2:
        raise ValueError("choosing C needs at least 2 training speakers; give C")
    inner = GroupKFold(n_splits=min(4, len(set(speakers))))
    return GridSearchCV(pipeline, {"model__C": list(C_GRID)}, cv=inner, scoring="balanced_accuracy"), \
        {"groups": speakers}


def cross_validate(table: pd.DataFrame, clips: pd.DataFrame, split: str = "speaker", folds: int | None = 5,
                   seed: int = 0, C: float | None = 0.5, classifier: str = "logistic") -> dict:
    """Accuracy and UAR of a linear classifier over ``folds`` folds (means, per fold, pooled confusion,
    and each fold's test speakers for ``split="speaker"``).

    ``split="speaker"`` holds out whole speakers (speaker-independent; ``folds=None`` with the 24
    RAVDESS actors gives the EmoBox folds); ``split="random"`` shuffles clips into folds regardless of
    who speaks, the mistake that inflates published RAVDESS numbers. ``classifier``: ``logistic``
    regression or a linear ``svm``; ``C=None`` chooses the regularisation inside each fold's
    training speakers (never on its test speakers), reported per fold as ``chosen_C``.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

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
    accs, uars, chosen = [], [], []
    pooled = np.zeros((len(labels), len(labels)), dtype=int)
    speaker_of = clips["speaker"].to_numpy()
    for test in test_masks:
        model, fit_options = _classifier(classifier, C, speaker_of[~test])
        model.fit(x[~test], y[~test], **fit_options)
        chosen.append(float(model.best_params_["model__C"]) if C is None else C)
        pred = model.predict(x[test])
        accs.append(accuracy_score(y[test], pred))
        uars.append(recall_score(y[test], pred, average="macro"))
        pooled += confusion_matrix(y[test], pred, labels=labels)
    return {"accuracy": float(np.mean(accs)), "uar": float(np.mean(uars)), "uar_std": float(np.std(uars)),
            "per_fold_uar": [float(u) for u in uars], "confusion": pooled, "labels": labels, "chosen_C": chosen,
            "test_speakers": [list(g) for g in groups] if groups is not None else None}


def transfer(train_table: pd.DataFrame, train_clips: pd.DataFrame, test_table: pd.DataFrame,
             test_clips: pd.DataFrame, C: float | None = None, classifier: str = "logistic") -> dict:
    """A linear classifier trained on one set of speakers (one corpus) and scored on another, twice:
    ``cold_start`` (features scaled by the training speakers' statistics: nothing of a test speaker but
    the clip) and ``adapted`` (every speaker's features z-normalised over its own clips, training and test
    alike). Each gives UAR, accuracy and the recall per class, over the test classes the training data has;
    ``C=None`` chooses it inside the training speakers."""
    from sklearn.metrics import accuracy_score, recall_score

    known = set(train_clips["emotion"])
    keep = test_clips["emotion"].isin(known).to_numpy()
    if not keep.any():
        raise ValueError("the test clips share no emotion with the training clips")
    y_train, y_test = train_clips["emotion"].to_numpy(), test_clips["emotion"].to_numpy()[keep]
    labels = [e for e in EMOTIONS if e in set(y_test)]
    tables = {"cold_start": (train_table, test_table),
              "adapted": (speaker_normalize(train_table, train_clips["speaker"]),
                          speaker_normalize(test_table, test_clips["speaker"]))}
    result = {}
    for protocol, (train_x, test_x) in tables.items():
        model, fit_options = _classifier(classifier, C, train_clips["speaker"].to_numpy())
        model.fit(train_x.to_numpy(), y_train, **fit_options)
        pred = model.predict(test_x.to_numpy()[keep])
        recall = recall_score(y_test, pred, labels=labels, average=None)
        result[protocol] = {"uar": float(recall.mean()), "accuracy": float(accuracy_score(y_test, pred)),
                            "recall": dict(zip(labels, map(float, recall))),
                            "C": float(model.best_params_["model__C"]) if C is None else C}
    return result
