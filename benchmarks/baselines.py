"""Classical baselines on real recordings: clip features + a linear classifier, speaker-wise folds.

Features: the project's clip statistics (``ser_lib.data.features.clip_statistics``: MFCC, pitch,
energy, timing, spectral shape) and eGeMAPS (openSMILE's 88 functionals, the field's standard set),
each as they are (``plain``: nothing of the test speaker is used but the clip) and z-normalised
within each speaker over the speaker's own unlabelled clips (``per speaker``). Classifiers: logistic
regression and a linear SVM, with C chosen inside each fold's training speakers (speaker-wise inner
folds; never on the test speakers). The outer folds are those of ``train --folds 5`` (consecutive
actors), so the per-fold figures pair with ``benchmarks/accuracy.py``'s; with ``--model_runs`` (its
``--out``) the trained models' rows are printed beside them (the default model adapted with all
of a speaker's clips, and at a cold start).

    python benchmarks/baselines.py --dataset_root ../shared/data/ravdess16k [--subset all] [--folds 5]
        [--model_runs runs/accuracy]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ser_lib.data import corpora, labels
from ser_lib.reports.metrics import paired_interval
from ser_lib.training import baseline

#: The hand-made feature sets (the voice encoder's are compared in ``benchmarks/transfer_baselines.py``).
FEATURES = ("statistics", "egemaps")
ROWS = [(f, n, c) for f in FEATURES for n in ("plain", "per speaker") for c in baseline.CLASSIFIERS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_root", required=True)
    parser.add_argument("--subset", default="all")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--model_runs", type=Path, help="benchmarks/accuracy.py's --out, for the model rows")
    args = parser.parse_args()
    clips = corpora.index(args.dataset_root, "ravdess")
    keep = labels.subset_labels(args.subset)
    clips = clips[clips["emotion"].isin(keep)].reset_index(drop=True)
    tables = {f: baseline.feature_table(clips, feature_set=f) for f in FEATURES}
    results = {}
    for feature_set, norm, classifier in ROWS:
        table = tables[feature_set]
        if norm == "per speaker":
            table = baseline.speaker_normalize(table, clips["speaker"])
        results[feature_set, norm, classifier] = baseline.cross_validate(
            table, clips, split="speaker", folds=args.folds, C=None, classifier=classifier)
    n = clips["speaker"].nunique()
    print(f"{len(clips)} clips, {n} speakers, {len(keep)} classes ({args.subset}), {args.folds} speaker-wise folds")
    print(f"{'features':<11} {'normalised':<12} {'classifier':<9} {'UAR':>13}  {'per fold':<34}  C chosen per fold")
    for (feature_set, norm, classifier), r in results.items():
        uar = np.asarray(r["per_fold_uar"])
        print(f"{feature_set:<11} {norm:<12} {classifier:<9} {uar.mean():.3f} ± {uar.std():.3f}  "
              f"{', '.join(f'{u:.3f}' for u in uar):<34}  {', '.join(f'{c:g}' for c in r['chosen_C'])}")
    if args.model_runs:
        summary = args.model_runs / "default" / f"{args.subset}-{args.folds}folds" / "benchmark.json"
        if summary.exists():
            protocols = json.loads(summary.read_text())["protocols"]
            for name, key in (("all clips", "all"), ("cold start", "none")):
                uar = np.asarray(protocols[key])
                print(f"{'model':<11} {name:<12} {'default':<9} {uar.mean():.3f} ± {uar.std():.3f}  "
                      f"{', '.join(f'{u:.3f}' for u in uar):<34}")
        else:
            print(f"(no default-model folds at {summary}: run benchmarks/accuracy.py --config default first)")
    print("\npaired differences over folds, eGeMAPS minus clip statistics (mean, 95% CI)")
    for norm in ("plain", "per speaker"):
        for classifier in baseline.CLASSIFIERS:
            diff = (np.asarray(results["egemaps", norm, classifier]["per_fold_uar"])
                    - np.asarray(results["statistics", norm, classifier]["per_fold_uar"]))
            low, high = paired_interval(diff)
            print(f"  {norm:<12} {classifier:<9} {diff.mean():+.3f} [{low:+.3f}, {high:+.3f}]")


if __name__ == "__main__":
    main()
