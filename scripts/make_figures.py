"""Regenerate ``figures/`` (the README's figures) from the data and from a cross-validated run.

1. Dataset figures: class balance, durations, and one clip per emotion (waveforms, log-mel
   spectrograms, pitch and energy contours) of the real recordings when ``--dataset_root`` exists,
   otherwise of the synthetic corpus.
2. Results: the default configuration (the spectrogram model with per-speaker normalisation and
   clip descriptors) cross-validated over 5 actor-wise folds, 8 classes. Finished folds of
   ``--run_dir`` are reused, so this shares its runs with ``benchmarks/accuracy.py``; missing folds
   are trained (about 6 minutes per fold on 2 CPU cores). Copied into ``figures/``: the pooled
   confusion matrix, ROC curves and per-class scores, and the learning curves of fold 1.
3. The live-demo widget in JupyterLab (``benchmarks/jupyterlab_screenshot.py``), when Playwright
   and Chromium are installed; otherwise skipped with a note.

    python scripts/make_figures.py [--dataset_root ../shared/data/ravdess16k] [--run_dir DIR]
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ser_lib import paths  # noqa: E402
from ser_lib.data import corpora, synth  # noqa: E402
from ser_lib.reports import evaluation, plots  # noqa: E402
from ser_lib.training import TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ravdess16k"


def show(path: Path) -> None:
    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def save(fig, name: str, out: Path) -> None:
    show(plots.save_fig(fig, name, out))
    plt.close(fig)


def dataset_figures(root: Path, corpus: str, out: Path) -> None:
    clips = corpora.index(root, corpus)
    print(f"dataset figures from {root} ({len(clips)} clips)")
    save(plots.class_balance(clips), "class_balance", out)
    save(plots.durations(clips), "durations", out)
    examples = corpora.one_per_emotion(clips)
    save(plots.waveforms(examples), "waveforms", out)
    save(plots.spectrograms(examples), "spectrograms", out)
    save(plots.prosody_contours(examples[examples.emotion.isin(["neutral", "happy", "sad", "angry"])]),
         "prosody_contours", out)


def result_figures(root: Path | None, run_dir: Path, folds: int, epochs: int, out: Path) -> dict:
    print(f"cross-validated run in {run_dir} ({folds} folds; finished folds are reused)")
    train(TrainConfig(dataset_root=str(root) if root else None, output_dir=str(run_dir), folds=folds, epochs=epochs,
                      resume=True))
    summary = evaluation.evaluate_folds(run_dir, [f"ravdess={root}"] if root else None, overwrite=True)
    pooled = run_dir / "evaluation" / "pooled"
    for name in ("confusion_matrix", "roc", "per_class"):
        show(Path(shutil.copyfile(pooled / f"{name}.png", out / f"cv_{name}.png")))
    save(plots.learning_curves(run_dir / "fold1" / "history.csv"), "learning_curves", out)
    return summary


def widget_screenshot(out: Path) -> None:
    if importlib.util.find_spec("playwright") is None or not shutil.which("chromium"):
        print("skipped the JupyterLab screenshot: needs `pip install playwright` and Chromium "
              "(`apt-get install chromium`)")
        return
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "jupyterlab_screenshot.py"),
                    "--out", str(out / "jupyterlab_live_demo.png")], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_root", default=str(DEFAULT_DATA),
                        help="RAVDESS folder (default ../shared/data/ravdess16k; the synthetic corpus when absent)")
    parser.add_argument("--run_dir", help="K-fold run folder (default runs/accuracy/default/all-5folds, "
                                          "runs/figures-synthetic on the synthetic corpus)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=str(paths.figures_dir()))
    parser.add_argument("--skip_results", action="store_true", help="dataset figures only (no training)")
    args = parser.parse_args()
    out = Path(args.out)
    root = Path(args.dataset_root) if Path(args.dataset_root).is_dir() else None
    if root is None:
        print(f"{args.dataset_root} not found: using the synthetic corpus")
    dataset_figures(root or synth.default_corpus(), "ravdess" if root else "synthetic", out)
    if not args.skip_results:
        run_dir = Path(args.run_dir) if args.run_dir else ROOT / "runs" / (
            "accuracy/default/all-5folds" if root else "figures-synthetic")
        summary = result_figures(root, run_dir, args.folds, args.epochs, out)
        print(f"UAR {summary['uar']['mean']:.3f} ± {summary['uar']['std']:.3f} over {summary['folds']} folds; "
              f"pooled UAR {summary['pooled']['uar']:.3f}")
    widget_screenshot(out)


if __name__ == "__main__":
    main()
