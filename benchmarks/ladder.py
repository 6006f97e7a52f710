"""The baseline ladder on real recordings: every rung on the same speaker-wise folds, each step paired.

Rungs (``ser_lib.training.ladder``, notebook 08): chance -> clip descriptors + logistic regression ->
eGeMAPS + linear SVM -> log-mel CNN with mean pooling -> + context transformer and attention pooling
-> + clip descriptors -> + per-speaker normalisation -> + a pretrained voice encoder's statistics (the
default model). Prints each rung's test UAR
per fold, mean ± std, and each step against the rung above: the mean paired difference, its 95%
confidence interval (Student's t over folds) and how many folds improved; writes the figure
``ladder.png`` into ``--out``. The model rungs are kept in ``--out`` in the layout of
``benchmarks/accuracy.py`` (``--config cnn,baseline,plain,ser_descriptors,default``), so either script reuses the
other's finished folds, and an interrupted ladder resumes.

    python benchmarks/ladder.py --dataset_root ../shared/data/ravdess16k [--folds 5] [--epochs 30]
        [--subset all] [--out runs/accuracy]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from ser_lib.reports import plots
from ser_lib.training import ladder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_root", required=True, help="a RAVDESS folder")
    parser.add_argument("--subset", default="all")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="runs/accuracy")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    uar = ladder.run(f"ravdess={args.dataset_root}", args.out, subset=args.subset, folds=args.folds,
                     epochs=args.epochs, device=args.device)
    table = ladder.steps(uar)
    where = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else \
        f"CPU ({torch.get_num_threads()} threads)"
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"\n{args.subset}, {args.folds} speaker-wise folds, {args.epochs} epochs max, {where}")
        print(uar.round(3).to_string())
        print()
        print(table.round(3).to_string())
    path = plots.save_fig(plots.ladder(uar, table), "ladder", Path(args.out))
    print(f"\nfigure: {path}")


if __name__ == "__main__":
    main()
