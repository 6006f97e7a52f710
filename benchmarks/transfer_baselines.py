"""Cross-corpus accuracy of the classical baselines: clip features + logistic regression, RAVDESS and CREMA-D.

The linear counterpart of ``benchmarks/cross_corpus.py``, for each feature set of
``ser_lib.training.baseline`` (``--features``: the project's clip statistics, eGeMAPS, and the
statistics of a voice encoder pretrained on thousands of speakers):

* trained on every RAVDESS actor given, tested on every CREMA-D speaker given, and the other way round,
  for the classes both corpora share (``shared``) and four (``basic4``);
* RAVDESS by speaker-wise folds (8 classes, the folds of ``train --folds 5``), trained on the other
  RAVDESS actors alone and with every CREMA-D clip added: does a second corpus help RAVDESS?

Each is scored at a cold start (the training speakers' scaling) and adapted (each speaker's features
z-normalised over its own clips); C is chosen inside the training speakers. Prints UAR per row.

    python benchmarks/transfer_baselines.py --ravdess ../shared/data/ravdess16k --cremad ../shared/data/cremad16k
        [--features statistics,egemaps,voice] [--subsets shared,basic4] [--folds 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from ser_lib.data import corpora, labels, splits
from ser_lib.data.audio import AudioSettings
from ser_lib.data.dataset import load_table
from ser_lib.training import baseline

PROTOCOLS = ("cold_start", "adapted")


def _one_way(tables: dict, clips: dict, source: str, target: str, subset: str) -> dict:
    keep = labels.for_data(subset, pd.concat([clips[source], clips[target]]))
    train, test = (clips[name]["emotion"].isin(keep).to_numpy() for name in (source, target))
    return baseline.transfer(tables[source][train], clips[source][train], tables[target][test], clips[target][test])


def _folds(tables: dict, clips: dict, folds: int) -> dict[str, dict[str, list[float]]]:
    """RAVDESS folds, trained on the other actors alone (``ravdess``) and with CREMA-D (``ravdess + cremad``)."""
    ravdess, cremad = clips["ravdess"], clips["cremad"]
    scores: dict[str, dict[str, list[float]]] = {name: {p: [] for p in PROTOCOLS}
                                                 for name in ("ravdess", "ravdess + cremad")}
    for group in splits.kfold_groups(ravdess["speaker"].unique(), folds):
        test = ravdess["speaker"].isin(group).to_numpy()
        train_sets = {"ravdess": (tables["ravdess"][~test], ravdess[~test]),
                      "ravdess + cremad": (pd.concat([tables["ravdess"][~test], tables["cremad"]]),
                                           pd.concat([ravdess[~test], cremad]))}
        for name, (x, y) in train_sets.items():
            result = baseline.transfer(x, y, tables["ravdess"][test], ravdess[test])
            for protocol in PROTOCOLS:
                scores[name][protocol].append(result[protocol]["uar"])
    return scores


def _cell(values: list[float]) -> str:
    return f"{values[0]:13.3f}" if len(values) == 1 else f"{np.mean(values):6.3f} ± {np.std(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ravdess", required=True, help="a RAVDESS folder (Actor_NN/...)")
    parser.add_argument("--cremad", required=True, help="a CREMA-D folder (AudioWAV/ and VideoDemographics.csv)")
    parser.add_argument("--features", default=",".join(baseline.FEATURES))
    parser.add_argument("--subsets", default="shared,basic4")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    clips = {name: load_table(corpora.index(root, name), AudioSettings(), progress=False)[0]  # loadable clips
             for name, root in (("ravdess", args.ravdess), ("cremad", args.cremad))}
    rows = []
    for feature_set in args.features.split(","):
        start = time.time()
        tables = {name: baseline.feature_table(table, feature_set=feature_set) for name, table in clips.items()}
        for source, target in (("ravdess", "cremad"), ("cremad", "ravdess")):
            for subset in args.subsets.split(","):
                result = _one_way(tables, clips, source, target, subset)
                rows.append((feature_set, source, target, subset, {p: [result[p]["uar"]] for p in PROTOCOLS}))
        for name, scores in _folds(tables, clips, args.folds).items():
            rows.append((feature_set, name, f"ravdess, {args.folds} folds", "all", scores))
        print(f"finished {feature_set} in {(time.time() - start) / 60:.1f} min", flush=True)
    print("\nlogistic regression (C chosen inside the training speakers); UAR over the classes named")
    print(f"{'features':<11} {'trained on':<17} {'tested on':<17} {'classes':<8} {'cold start':>13} {'adapted':>13}")
    for feature_set, source, target, subset, scores in rows:
        print(f"{feature_set:<11} {source:<17} {target:<17} {subset:<8} {_cell(scores['cold_start'])} "
              f"{_cell(scores['adapted'])}")


if __name__ == "__main__":
    main()
