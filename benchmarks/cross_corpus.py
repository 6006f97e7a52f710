"""Cross-corpus accuracy: does a model trained on one corpus recognise emotion in another's voices?

Three experiments on RAVDESS and CREMA-D (``--experiments``):

* ``ravdess-cremad`` - trained on every RAVDESS actor given (two of them validate: they pick the epoch),
  tested on every CREMA-D speaker given;
* ``cremad-ravdess`` - the other way round;
* ``both``           - trained on both corpora, tested on each by speaker-wise folds (``--folds``, within
  each corpus), so every speaker of both is tested once by a model that never heard them.

Each for the classes both corpora share (``shared``: neutral, happy, sad, angry, fearful, disgust) and
for four (``basic4``: neutral, happy, sad, angry). Every model is scored twice: cold start (the
training data's statistics, nothing of the test speaker) and adapted (each test speaker's own
unlabelled clips). Prints UAR per experiment, subset and protocol (mean ± std over folds for
``both``), and the wall time per model. Runs are kept in ``--out``; an interrupted benchmark resumes.

    python benchmarks/cross_corpus.py --ravdess ../shared/data/ravdess16k --cremad ../shared/data/cremad16k
        [--experiments ravdess-cremad,cremad-ravdess,both] [--subsets shared,basic4] [--folds 5]
        [--epochs 30] [--config default] [--seed 0 | --ensemble 5] [--out runs/cross_corpus]

``--config`` picks the training options: ``default`` (the project's descriptors and a pretrained voice encoder's
layer statistics beside them, ``--descriptor_set ser+voice``); ``ser_descriptors`` (the default of the releases
before: the project's descriptors alone; every configuration below keeps them, up to ``mixup``, as they were
measured, so "the default" there means this one); ``balanced`` (as many clips from each corpus);
``corpus_stats`` (balanced, and a new voice of a training corpus starts from that corpus's statistics,
not the pooled ones of both: the default since it was measured; the configurations below it, up to
``no_average``, keep the pooled ones, as they were measured);
``no_descriptors`` (the log-mel branch alone); ``noisy_cold_start`` (half the training clips at a cold
start, every one of those described from a noisy copy); ``denoised_descriptors`` (descriptors of version 3:
taken after subtracting each clip's noise floor); ``mild_augment`` (the waveform augmentation of releases
before the strong default: each perturbation with probability 0.5, noise 10-40 dB SNR, speeds 0.9-1.1);
``weight_average`` (the moving average of the weights over about three epochs is validated and kept; the
default since it was measured); ``no_average`` (the last step's weights, the default before; the four
configurations above it keep them too, as they were measured); ``tilt`` (the default with a random
spectral tilt of up to 3 dB per octave on the training clips and the noisy cold-start copies: another
microphone's colour; compare it with ``ser_descriptors``); ``regularised`` (the default with dropout 0.35 and weight
decay 0.05); ``mixup`` (the default with ``--mixup 1.0``: clip vectors and labels mixed in pairs);
``ser_egemaps`` (openSMILE's eGeMAPS beside the project's descriptors); ``ser_voice_mixup`` (the default with
``--mixup 1.0``); ``ser_voice_balanced`` (the default with as many clips from each corpus, for ``both``, as
``corpus_stats``).

Single runs vary with the seed by a few hundredths of UAR; ``--seed`` repeats a benchmark (runs of another
seed are kept beside the others, in ``seed-N``). ``--ensemble N`` trains (or reuses) the models of seeds
0 to N-1 of each one-corpus experiment and scores each of them and the mean of their probabilities
(its minutes are those of all N models).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ser_lib.data.augment import WaveAugment
from ser_lib.model import checkpoint
from ser_lib.model.enrolment import ALL_CLIPS, COLD_START
from ser_lib.reports.evaluation import evaluate_checkpoint, fold_checkpoints
from ser_lib.reports.metrics import compute_metrics
from ser_lib.training import TrainConfig, train

EXPERIMENTS = ("ravdess-cremad", "cremad-ravdess", "both")
#: The waveform augmentation of the releases before the strong default (configurations measured then keep it).
MILD = {"augment_settings": WaveAugment(p=0.5, snr_db=(10.0, 40.0), speeds=(0.9, 1.0, 1.1))}
#: The last step's weights, not their moving average (configurations measured before it was the default keep them).
RAW = {"average_epochs": 0.0}
#: The pooled training statistics for every voice's cold start (configurations measured before each corpus's own).
POOLED = {"corpus_stats": False}
#: The project's descriptors alone (configurations measured before the voice encoder's statistics joined them).
SER = {"descriptor_set": "ser"}
CONFIGS: dict[str, dict] = {
    "default": {},
    "ser_descriptors": SER,
    "corpus_stats": {"corpus_balance": True, **SER},
    "balanced": {"corpus_balance": True, **POOLED, **SER},
    "no_descriptors": {"descriptors": False, **MILD, **RAW, **POOLED},
    "noisy_cold_start": {"cold_start_rate": 0.5, "cold_start_noise": 1.0, **MILD, **RAW, **POOLED, **SER},
    "denoised_descriptors": {"descriptor_version": 3, **MILD, **RAW, **POOLED, **SER},
    "mild_augment": {**MILD, **RAW, **POOLED, **SER},
    "weight_average": {"average_epochs": 3.0, **POOLED, **SER},
    "no_average": {**RAW, **POOLED, **SER},
    "tilt": {"augment_settings": WaveAugment(tilt_db=3.0), **SER},
    "regularised": {"dropout": 0.35, "weight_decay": 0.05, **SER},
    "mixup": {"mixup": 1.0, **SER},
    "ser_egemaps": {"descriptor_set": "ser+egemaps"},
    "ser_voice_mixup": {"descriptor_set": "ser+voice", "mixup": 1.0},
    "ser_voice_balanced": {"descriptor_set": "ser+voice", "corpus_balance": True},
}
PROTOCOLS = ("cold_start", "adapted")


def _scores(model: Path, datasets: tuple[str, ...], speakers: list[str] | None, out: Path) -> dict[str, float]:
    """Cold-start and adapted UAR of ``model`` on ``speakers`` (all of ``datasets`` when None)."""
    metrics_file = out / "metrics.json"
    if not metrics_file.exists():
        evaluate_checkpoint(model, list(datasets), speakers=speakers, output_dir=out, progress=False, overwrite=True)
    protocols = json.loads(metrics_file.read_text())["protocols"]
    return {p: protocols[p]["uar"] for p in PROTOCOLS if p in protocols}


def _minutes(run_dir: Path) -> float:
    seconds = [json.loads(m.read_text())["wall_seconds"] for m in sorted(run_dir.glob("**/manifest.json"))]
    return float(np.median(seconds)) / 60 if seconds else float("nan")


def _train_transfer(source: str, target: str, data: dict[str, str], subset: str, common: dict, out: Path) -> Path:
    """Train (or reuse) the model of ``source`` whose test set is every speaker of ``target``; its folder."""
    run_dir = out / f"{source}-{target}" / subset
    datasets = tuple(f"{name}={data[name]}" for name in (source, target))
    train(TrainConfig(dataset=datasets, test_corpus=target, output_dir=str(run_dir), emotion_subset=subset,
                      **common))
    return run_dir


def transfer(source: str, target: str, data: dict[str, str], subset: str, common: dict, out: Path) -> dict:
    """Train on ``source`` (its speakers validate too), test on every speaker of ``target``."""
    run_dir = _train_transfer(source, target, data, subset, common, out)
    scores = _scores(run_dir / "best_model.pt", (f"{target}={data[target]}",), None, run_dir / "cross_evaluation")
    return {target: {p: [v] for p, v in scores.items()}, "minutes": _minutes(run_dir)}


def _seed_dir(out: Path, config: str, seed: int) -> Path:
    return out / config / (f"seed-{seed}" if seed else "")


def ensemble(source: str, target: str, data: dict[str, str], subset: str, common: dict, out: Path, config: str,
             seeds: int) -> list[tuple[str, dict]]:
    """Train (or reuse) the models of seeds 0..``seeds``-1 on ``source``; the cold-start and adapted UAR on
    every speaker of ``target`` of each model and of the mean of their probabilities."""
    probs: dict[str, list[np.ndarray]] = {p: [] for p in PROTOCOLS}
    rows = []
    for seed in range(seeds):
        run_dir = _train_transfer(source, target, data, subset, {**common, "seed": seed}, _seed_dir(out, config, seed))
        result = evaluate_checkpoint(run_dir / "best_model.pt", [f"{target}={data[target]}"], progress=False,
                                     output_dir=run_dir / "cross_evaluation", overwrite=True)
        for protocol, enrolment in zip(PROTOCOLS, (COLD_START, ALL_CLIPS)):
            probs[protocol].append(result.by_protocol[enrolment.key].probs)
        y, labels = result.by_protocol[COLD_START.key].y_true, result.by_protocol[COLD_START.key].labels
        scores = {p: [result.metrics["protocols"][p]["uar"]] for p in PROTOCOLS}
        rows.append((f"seed {seed}", {target: scores, "minutes": _minutes(run_dir)}))
    mean = {p: [compute_metrics(y, np.mean(v, 0), labels)["uar"]] for p, v in probs.items()}
    rows.append((f"mean of {seeds}", {target: mean, "minutes": sum(r["minutes"] for _, r in rows)}))
    return rows


def both(data: dict[str, str], subset: str, folds: int, common: dict, out: Path) -> dict:
    """Train on both corpora by speaker-wise folds; score each fold's test speakers corpus by corpus."""
    run_dir = out / "both" / f"{subset}-{folds}folds"
    datasets = tuple(f"{name}={path}" for name, path in data.items())
    train(TrainConfig(dataset=datasets, folds=folds, output_dir=str(run_dir), emotion_subset=subset, **common))
    result: dict = {name: {p: [] for p in PROTOCOLS} for name in data}
    for model in fold_checkpoints(run_dir):
        tested = checkpoint.load(model, "cpu").split["test"]
        for name in data:
            speakers = [s for s in tested if s.startswith(f"{name}:")]
            scores = _scores(model, datasets, speakers, model.parent / f"evaluation-{name}")
            for protocol, value in scores.items():
                result[name][protocol].append(value)
    result["minutes"] = _minutes(run_dir)
    return result


def _cell(values: list[float]) -> str:
    if not values:
        return f"{'-':>13}"
    if len(values) == 1:
        return f"{values[0]:13.3f}"
    return f"{np.mean(values):6.3f} ± {np.std(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ravdess", required=True, help="a RAVDESS folder (Actor_NN/...)")
    parser.add_argument("--cremad", required=True, help="a CREMA-D folder (AudioWAV/ and VideoDemographics.csv)")
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS))
    parser.add_argument("--subsets", default="shared,basic4")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--config", default="default", choices=sorted(CONFIGS))
    parser.add_argument("--seed", type=int, default=0, help="training seed (0: the default runs)")
    parser.add_argument("--ensemble", type=int, default=0,
                        help="seeds 0..N-1 of each one-corpus experiment, and the mean of their probabilities")
    parser.add_argument("--out", default="runs/cross_corpus")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    experiments = args.experiments.split(",")
    unknown = sorted(set(experiments) - set(EXPERIMENTS))
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    data = {"ravdess": args.ravdess, "cremad": args.cremad}
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    common = dict(epochs=args.epochs, device=device, seed=args.seed, resume=True, progress=False,
                  **CONFIGS[args.config])
    if args.ensemble and "both" in experiments:
        parser.error("--ensemble is for the one-corpus experiments (ravdess-cremad, cremad-ravdess)")
    out = _seed_dir(Path(args.out), args.config, args.seed)
    rows = []
    for experiment in experiments:
        for subset in args.subsets.split(","):
            start = time.time()
            if experiment == "both":
                rows.append((experiment, subset, "", both(data, subset, args.folds, common, out)))
            elif args.ensemble:
                source, target = experiment.split("-")
                rows += [(experiment, subset, name, result) for name, result in
                         ensemble(source, target, data, subset, common, Path(args.out), args.config, args.ensemble)]
            else:
                source, target = experiment.split("-")
                rows.append((experiment, subset, "", transfer(source, target, data, subset, common, out)))
            print(f"finished {experiment} {subset} in {(time.time() - start) / 60:.1f} min", flush=True)
    seeds = f"seeds 0-{args.ensemble - 1}" if args.ensemble else f"seed {args.seed}"
    print(f"\nconfig {args.config!r}, {seeds}, {args.epochs} epochs max, device {where}; UAR over the classes named")
    print(f"{'trained on':<16} {'tested on':<9} {'classes':<8} {'model':<10} {'cold start':>13} {'adapted':>13} "
          f"{'min/model':>9}")
    for experiment, subset, model, result in rows:
        trained = "ravdess + cremad" if experiment == "both" else experiment.split("-")[0]
        for target in (name for name in data if name in result):
            cold, adapted = (result[target].get(p, []) for p in PROTOCOLS)
            print(f"{trained:<16} {target:<9} {subset:<8} {model:<10} {_cell(cold)} {_cell(adapted)} "
                  f"{result['minutes']:9.1f}")


if __name__ == "__main__":
    main()
