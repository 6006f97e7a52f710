"""Speaker-independent accuracy on real recordings: actor-wise cross-validation of a configuration.

Runs ``train --folds`` for each emotion subset (``all`` = 8 classes, ``basic6``, ``basic4``) over
whatever actors the dataset holds: 5 folds of consecutive actors (actors 01-20: 4 test actors per
fold), and, when all 24 actors are present, also the 6 folds of the EmoBox benchmark. Inside each
fold the validation actors come from the training actors: they pick the epoch (early stopping);
a fold's test actors are never used for any choice. Prints a table of UAR, accuracy and macro-F1
(mean ± std over folds), the validation UAR, the wall time per fold (median over folds) and the device;
for a model with per-speaker normalisation also its UAR under each enrolment protocol (how much
unlabelled audio of the test speaker its statistics come from: none at a cold start, 1, 3 or 10
random clips, the speaker's neutral clips only, all their clips; ``ser_lib.model.enrolment``), with
the paired per-fold difference to the plain model of the same clip descriptors when its folds are in
``--out`` (``--config default,plain_voice`` or ``ser_descriptors,plain`` runs both).

Configurations (``--config``):

* ``default``  - the library defaults for the spectrogram model: per-speaker normalisation of the
  inputs from each speaker's own unlabelled audio, clip descriptors (the project's and a pretrained voice
  encoder's statistics, ``descriptor_set`` ser+voice) beside the log-mel CNN, and cold-start training (a
  quarter of the training clips normalised with the training data's statistics);
* ``ser_descriptors`` - the default of the releases before: the project's descriptors alone (``descriptor_set``
  ser). Every configuration below keeps them, as they were measured: "the default" there means this one;
* ``no_cold_start`` - the default without cold-start training;
* ``no_gender`` - the default without the auxiliary gender head (``gender_weight`` 0);
* ``no_smoothed_selection`` - the default, with each epoch judged by its own validation UAR instead
  of the mean of the last 3 epochs (``select_window`` 1);
* ``enrolment_training`` - that, and a quarter of the training clips normalised with statistics of
  a few other clips of their speaker (``enrolment_rate`` 0.25);
* ``egemaps``, ``ser_egemaps`` - the default with openSMILE's 88 eGeMAPS functionals as the clip
  descriptors, instead of or beside the project's own (``descriptor_set``);
* ``plain``    - ``ser_descriptors`` without per-speaker normalisation: nothing about the test speakers is
  used but the clip being classified;
* ``plain_voice`` - the default (``ser+voice``) without per-speaker normalisation;
* ``baseline`` - the log-mel CNN alone (no descriptors, no per-speaker normalisation);
* ``cnn``      - that without the context transformer, with the mean of the frames instead of
  attention pooling (the first model rung of the baseline ladder, ``ser_lib.training.ladder``).
* ``mild_augment`` - the default with the milder waveform augmentation of earlier releases (the
  cross-corpus benchmark's configuration of that name).
* ``weight_average`` - validating and keeping the moving average of the weights over about three epochs
  (``average_epochs`` 3, the default since it was measured; the cross-corpus benchmark's configuration);
* ``no_average`` - the default with the last step's weights instead (``average_epochs`` 0), as every
  configuration above was measured before the average became the default.
* ``mixup`` - the default with ``--mixup 1.0`` (clip vectors and their labels mixed in pairs; the
  cross-corpus benchmark's configuration).

Runs are kept in ``--out`` and an interrupted benchmark resumes where it stopped.

    python benchmarks/accuracy.py --dataset_root ../shared/data/ravdess16k [--config default,plain]
        [--subsets all,basic6,basic4] [--epochs 30] [--out runs/accuracy]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cross_corpus
import numpy as np
import torch

from ser_lib.data import corpora, labels
from ser_lib.model.enrolment import ALL_CLIPS, COLD_START, Enrolment
from ser_lib.reports.evaluation import evaluate_checkpoint, fold_checkpoints
from ser_lib.training import ladder

#: The default model of the releases before the voice encoder: per-speaker normalisation, the project's descriptors.
SER = ladder.rung("ser_descriptors").options
CONFIGS: dict[str, dict] = {
    "default": ladder.rung("default").options,
    "ser_descriptors": SER,
    "no_cold_start": {**SER, "cold_start_rate": 0.0},
    "no_gender": {**SER, "gender_weight": 0.0},
    "no_smoothed_selection": {**SER, "select_window": 1},
    "enrolment_training": {**SER, "enrolment_rate": 0.25, "select_window": 1},
    "egemaps": {**SER, "descriptor_set": "egemaps"},
    "ser_egemaps": {**SER, "descriptor_set": "ser+egemaps"},
    "plain": ladder.rung("plain").options,
    "plain_voice": {**ladder.rung("plain").options, "descriptor_set": "ser+voice"},
    "baseline": ladder.rung("baseline").options,
    "cnn": ladder.rung("cnn").options,
    "mild_augment": {**SER, **cross_corpus.CONFIGS["mild_augment"]},
    "weight_average": {**SER, **cross_corpus.CONFIGS["weight_average"]},
    "no_average": {**SER, **cross_corpus.RAW},
    "mixup": {**SER, **cross_corpus.CONFIGS["mixup"]},
}

#: The enrolment protocols a speaker-normalised model is scored under, in the order printed.
ENROLMENTS = (COLD_START, Enrolment(1), Enrolment(3), Enrolment(10), Enrolment(None, ("neutral",)), ALL_CLIPS)


def run(dataset_root: str, config: str, subset: str, folds: int, epochs: int, out: Path, device: str) -> dict:
    """Cross-validate one configuration on one subset (finished folds are reused)."""
    run_dir = ladder.model_rung_dir(out, config, subset, folds)
    start = time.time()
    summary = ladder.train_rung(ladder.Rung(config, config, "model", CONFIGS[config]), f"ravdess={dataset_root}",
                                out, subset, folds, epochs, device)
    summary["wall_minutes"] = (time.time() - start) / 60
    fold_seconds = [json.loads(m.read_text())["wall_seconds"] for m in sorted(run_dir.glob("fold*/manifest.json"))]
    summary["fold_minutes"] = float(np.median(fold_seconds)) / 60  # the median resists a fold that was paused
    summary["val_uar"] = sum(f["val_uar"] for f in summary["per_fold"]) / len(summary["per_fold"])
    if CONFIGS[config]["speaker_norm"]:
        summary["protocols"] = protocol_uars(run_dir, dataset_root, device)
    (run_dir / "benchmark.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary


def protocol_uars(run_dir: Path, dataset_root: str, device: str) -> dict[str, list[float]]:
    """Each fold's test UAR under every protocol of :data:`ENROLMENTS` (evaluations kept in
    ``foldN/enrolment``, headline: all clips)."""
    uars: dict[str, list[float]] = {p.name: [] for p in ENROLMENTS}
    for model in fold_checkpoints(run_dir):
        out = model.parent / "enrolment"
        metrics = out / "metrics.json"
        if not metrics.exists() or set(uars) - set(json.loads(metrics.read_text())["protocols"]):
            evaluate_checkpoint(model, [f"ravdess={dataset_root}"], output_dir=out, device=device, progress=False,
                                compare=ENROLMENTS, overwrite=True)
        protocols = json.loads(metrics.read_text())["protocols"]
        for name in uars:
            uars[name].append(protocols[name]["uar"])
    return uars


def plain_of(config: str) -> str | None:
    """The configuration without per-speaker normalisation that has ``config``'s clip descriptors, if any."""
    descriptors = CONFIGS[config].get("descriptor_set")
    return next((name for name in ("plain", "plain_voice") if CONFIGS[name]["descriptor_set"] == descriptors), None)


def print_enrolment(folds: int, subset: str, config: str, summary: dict, plain: dict | None) -> None:
    """UAR under each enrolment protocol, mean ± std over folds, and the paired difference to the plain model
    of the same descriptors (``plain``: its summary, when its folds are there)."""
    reference = np.asarray([f["uar"] for f in plain["per_fold"]]) if plain else None
    missing = (f" (no {plain_of(config)} folds in --out: run --config {plain_of(config)} for the paired differences)"
               if plain_of(config) else f" (no plain model has {config}'s descriptors)")
    print(f"\n{config}, {folds} folds, {subset}: unlabelled clips of each test speaker behind its statistics"
          + ("" if plain else missing))
    print(f"{'enrolment':<44} {'UAR':>13}  {'per fold':<34}" + ("  minus plain per fold (mean)" if plain else ""))
    rows = [(p.describe(), np.asarray(summary["protocols"][p.name])) for p in ENROLMENTS]
    if plain:
        rows.append((f"{plain_of(config)} (no speaker statistics)", reference))
    for name, uar in rows:
        line = f"{name[:44]:<44} {uar.mean():.3f} ± {uar.std():.3f}  {', '.join(f'{u:.3f}' for u in uar):<34}"
        if plain:
            gain = uar - reference
            line += f"  {', '.join(f'{g:+.3f}' for g in gain)} ({gain.mean():+.3f})"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_root", required=True)
    parser.add_argument("--config", default="default",
                        help=f"one or more of {', '.join(CONFIGS)}, comma-separated (default: default)")
    parser.add_argument("--subsets", default="all,basic6,basic4")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="runs/accuracy")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    actors = [int(s.split(":")[1]) for s in corpora.speakers_of(corpora.index(args.dataset_root, "ravdess"))]
    protocols = [5] + ([6] if actors == list(range(1, 25)) else [])
    configs = args.config.split(",")
    if set(configs) - set(CONFIGS):
        parser.error(f"--config: unknown {', '.join(sorted(set(configs) - set(CONFIGS)))}; known: {', '.join(CONFIGS)}")
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    rows = []
    for config in configs:
        for folds in protocols:
            for subset in args.subsets.split(","):
                summary = run(args.dataset_root, config, subset, folds, args.epochs, Path(args.out), device)
                rows.append((config, folds, subset, summary))
                print(f"finished {config}, {subset}, {folds} folds: UAR {summary['uar']['mean']:.3f}", flush=True)
    print(f"\nspeaker-independent, {len(actors)} actors "
          f"({actors[0]:02d}-{actors[-1]:02d}), {args.epochs} epochs max, device {where}")
    print(f"{'config':<14} {'protocol':<18} {'classes':<11} {'UAR':>13} {'accuracy':>13} {'macro-F1':>13} "
          f"{'val UAR':>8} {'min/fold':>8}")
    for config, folds, subset, s in rows:
        protocol = "EmoBox 6 folds" if folds == 6 else f"{folds} folds x {len(actors) // folds} actors"
        classes = len(labels.subset_labels(subset))
        cells = "".join(f" {s[m]['mean']:.3f} ± {s[m]['std']:.3f}" for m in ("uar", "accuracy", "macro_f1"))
        print(f"{config:<14} {protocol:<18} {f'{subset} ({classes})':<11}{cells} {s['val_uar']:8.3f} "
              f"{s['fold_minutes']:8.1f}")
    for config, folds, subset, s in rows:
        if "protocols" in s:
            plain = Path(args.out) / str(plain_of(config)) / f"{subset}-{folds}folds" / "benchmark.json"
            print_enrolment(folds, subset, config, s, json.loads(plain.read_text()) if plain.exists() else None)


if __name__ == "__main__":
    main()
