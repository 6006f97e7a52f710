"""One figure style for the whole course, and :func:`save_fig` to write PNGs.

Every emotion keeps its colour in every figure (:data:`EMOTION_COLOURS`), so a reader learns once
that red is angry and blue is sad.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np

from .. import paths
from ..data import audio, features
from ..data.corpora.base import natural_key
from ..data.labels import EMOTIONS

EMOTION_COLOURS: dict[str, str] = {
    "neutral": "#8c8c8c",
    "calm": "#6fb3a8",
    "happy": "#f2b134",
    "sad": "#3b6fb6",
    "angry": "#d1453b",
    "fearful": "#8a5fb0",
    "disgust": "#6b8e23",
    "surprised": "#e87ac0",
}

GENDER_COLOURS = {"female": "#c47ab0", "male": "#5a8fc4", "unknown": "#999999"}

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 120,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}


def set_style() -> None:
    """Apply the course style to matplotlib (called by every plotting function)."""
    matplotlib.rcParams.update(STYLE)


def colours(labels: Sequence[str]) -> list[str]:
    """The colour of each emotion label (grey for unknown labels)."""
    return [EMOTION_COLOURS.get(label, "#555555") for label in labels]


def save_fig(fig, name: str, folder: str | Path | None = None) -> Path:
    """Write ``fig`` as ``name.png`` into ``folder`` (default: the project's ``figures/``)."""
    folder = Path(folder) if folder is not None else paths.figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name if name.endswith(".png") else f"{name}.png")
    fig.savefig(path)
    return path


def shade_legend(ax, entries, **kwargs) -> None:
    """A legend of grey swatches ``(label, alpha, hatch)``: for series told apart by shade and hatching
    in a figure whose colours already stand for the emotions."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="#bbbbbb", alpha=alpha, hatch=hatch, edgecolor="black", linewidth=0.4, label=label)
               for label, alpha, hatch in entries]
    ax.legend(handles=handles, fontsize=8, loc="upper left", **kwargs)


def new_figure(*args, **kwargs):
    """``plt.subplots`` with the course style applied."""
    import matplotlib.pyplot as plt

    set_style()
    return plt.subplots(*args, **kwargs)


# ----------------------------------------------------------------------------------------------
# Figures of the dataset and of training (notebooks 01, 02, 04 and README)
# ----------------------------------------------------------------------------------------------
def class_balance(clips):
    """Clips per emotion and intensity, and actors per gender."""
    import pandas as pd

    fig, (ax1, ax2) = new_figure(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 1]})
    order = [e for e in EMOTIONS if e in set(clips["emotion"])]
    counts = pd.crosstab(clips["emotion"], clips["intensity"]).reindex(order).fillna(0)
    bottom = np.zeros(len(order))
    for intensity, alpha, hatch in (("normal", 1.0, ""), ("strong", 0.55, "//")):
        if intensity in counts:
            ax1.bar(order, counts[intensity], bottom=bottom, color=colours(order), alpha=alpha, hatch=hatch,
                    edgecolor="black", linewidth=0.4)
            bottom += counts[intensity].to_numpy()
    ax1.set_ylabel("clips")
    ax1.set_title("Clips per emotion and intensity")
    ax1.set_ylim(0, bottom.max() * 1.2)  # room for the legend above the bars
    shade_legend(ax1, [("normal intensity", 1.0, ""), ("strong intensity", 0.55, "//")], ncol=2)
    ax1.tick_params(axis="x", rotation=30)
    genders = clips.groupby("gender")["speaker"].nunique()
    ax2.bar(genders.index, genders.values, color=[GENDER_COLOURS.get(g, "#999999") for g in genders.index])
    ax2.set_title("Speakers per gender")
    fig.tight_layout()
    return fig


def durations(clips):
    """Histogram of clip durations per emotion."""
    fig, ax = new_figure(figsize=(7, 3.5))
    for emotion, group in clips.groupby("emotion", sort=False):
        ax.hist(group["duration"], bins=30, histtype="step", lw=1.6, color=EMOTION_COLOURS.get(emotion),
                label=emotion)
    ax.set_xlabel("duration (s)")
    ax.set_ylabel("clips")
    ax.set_title("Clip durations")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def waveforms(rows, sr: int = 16000):
    """The waveform of each clip in ``rows`` (e.g. :func:`ravdess.one_per_emotion`), one panel each."""
    fig, axes = new_figure(len(rows), 1, figsize=(9, 1.2 * len(rows)), sharex=True, sharey=True)
    for ax, (_, row) in zip(np.atleast_1d(axes), rows.iterrows()):
        wave = audio.load(row["path"], sr)
        ax.plot(np.arange(len(wave)) / sr, wave, color=EMOTION_COLOURS.get(row["emotion"]), lw=0.5)
        ax.set_ylabel(row["emotion"], rotation=0, ha="right", va="center")
        ax.set_yticks([])
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    fig.suptitle("Waveforms, one clip per emotion", fontweight="bold")
    fig.tight_layout()
    return fig


def hz_axis(ax, settings: features.MelSettings = features.MelSettings()) -> None:
    """Label a log-mel image's vertical axis (one row per mel band) in Hz."""
    centres = features.mel_band_hz(settings)
    ticks = [hz for hz in (100, 250, 500, 1000, 2000, 4000, 8000) if centres[0] <= hz <= centres[-1]]
    ax.set_yticks(np.interp(ticks, centres, np.arange(len(centres)) + 0.5))
    ax.set_yticklabels([f"{hz / 1000:g}k" if hz >= 1000 else str(hz) for hz in ticks])
    ax.set_ylabel("frequency (Hz)")


def spectrograms(rows, sr: int = 16000):
    """Log-mel spectrogram of each clip in ``rows``, in a grid (the model's view of the audio)."""
    n = len(rows)
    cols = 4 if n > 4 else n
    r = int(np.ceil(n / cols))
    fig, axes = new_figure(r, cols, figsize=(3.6 * cols, 2.6 * r), squeeze=False)
    for ax, (_, row) in zip(axes.flat, rows.iterrows()):
        spec = features.log_mel(audio.trim_silence(audio.load(row["path"], sr), sr))
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, spec.shape[1] / 100, 0, spec.shape[0]))
        ax.set_title(row["emotion"], color=EMOTION_COLOURS.get(row["emotion"]))
        ax.set_xlabel("time (s)")
        hz_axis(ax)
        ax.grid(False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def prosody_contours(rows, sr: int = 16000):
    """Pitch (pYIN) and energy contours of each clip in ``rows``, overlaid per emotion."""
    fig, (ax_f0, ax_rms) = new_figure(1, 2, figsize=(12, 3.8))
    for _, row in rows.iterrows():
        p = features.prosody(audio.trim_silence(audio.load(row["path"], sr), sr), sr, method="pyin")
        colour = EMOTION_COLOURS.get(row["emotion"])
        ax_f0.plot(p.times, p.f0, color=colour, lw=1.5, label=row["emotion"])
        ax_rms.plot(p.times, p.rms_db, color=colour, lw=1.2, label=row["emotion"])
    ax_f0.set_title("Pitch (F0)")
    ax_f0.set_ylabel("Hz")
    ax_rms.set_title("Energy")
    ax_rms.set_ylabel("dBFS")
    for ax in (ax_f0, ax_rms):
        ax.set_xlabel("time (s)")
    ax_rms.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def learning_curves(history):
    """Loss and validation metrics per epoch from a run's ``history.csv`` (a path or a DataFrame).

    The chosen epoch is marked: the run's own choice from the ``manifest.json`` beside a history file
    (which may judge epochs by a mean over several), else the epoch of the best validation UAR.
    """
    import json

    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    chosen = None
    if not isinstance(history, pd.DataFrame):
        manifest = Path(history).with_name("manifest.json")
        if manifest.exists():
            chosen = json.loads(manifest.read_text()).get("best_epoch")  # 1-based
        history = pd.read_csv(history)
    epochs = history["epoch"] + 1
    fig, (ax_loss, ax_score) = new_figure(1, 2, figsize=(11, 3.8))
    ax_loss.plot(epochs, history["train_loss"], label="train", color="#3b6fb6")
    if "val_loss" in history:
        ax_loss.plot(epochs, history["val_loss"], label="validation", color="#d1453b")
    ax_loss.set_title("Loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.legend()
    ax_score.plot(epochs, history["train_accuracy"], label="train accuracy", color="#3b6fb6", ls="--")
    series = (("val_uar", "validation UAR", "#d1453b"), ("val_accuracy", "validation accuracy", "#f2b134"),
              ("val_macro_f1", "validation macro-F1", "#6b8e23"))
    for key, label, colour in series:
        if key in history:
            ax_score.plot(epochs, history[key], label=label, color=colour)
    if "val_uar" in history:
        match = np.flatnonzero((history["epoch"] == (chosen or 0) - 1).to_numpy())
        row = int(match[0]) if len(match) else int(np.nanargmax(history["val_uar"].to_numpy()))
        ax_score.axvline(epochs.iloc[row], color="#999999", ls=":", lw=1)
        ax_score.annotate(f"chosen epoch {int(epochs.iloc[row])}\n(validation UAR {history['val_uar'].iloc[row]:.3f})",
                          (epochs.iloc[row], 0.05), textcoords="offset points", xytext=(4, 0), fontsize=8)
    ax_score.set_ylim(0, 1)
    ax_score.set_title("Scores")
    ax_score.set_xlabel("epoch")
    for ax in (ax_loss, ax_score):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_score.legend(fontsize=8)
    fig.tight_layout()
    return fig


def number_ranges(power):
    """Where a log-mel front end's mel power values fall against what float16 and bfloat16 can hold:
    a histogram of ``log10(power)`` with each format's smallest positive and largest number."""
    import torch

    values = np.log10(np.clip(np.asarray(power, dtype=np.float64).ravel(), 1e-30, None))
    fig, ax = new_figure(figsize=(10, 3.4))
    ax.hist(values, bins=80, color="#8c8c8c")
    limits = [("float16", torch.float16, "#d1453b", "--"), ("bfloat16", torch.bfloat16, "#3b6fb6", ":")]
    for name, dtype, colour, style in limits:
        info = torch.finfo(dtype)
        ax.axvline(np.log10(info.smallest_normal), color=colour, ls=style, label=f"{name}: smallest normal, largest")
        ax.axvline(np.log10(info.max), color=colour, ls=style)
    ax.set_xlim(min(values.min(), -9) - 1, max(values.max(), 5) + 1)
    ax.set_title("Mel power of one clip, and the range of each 16-bit format")
    ax.set_xlabel("log10(mel power)")
    ax.set_ylabel("values")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def throughput(table):
    """Training speed and memory against the batch size, one line per crop length (a
    :func:`ser_lib.training.speed.sweep` table): clips per second, and the activations kept for the
    backward pass (with the GPU's peak allocation where there is one)."""
    from matplotlib.ticker import ScalarFormatter

    fig, (ax_rate, ax_memory) = new_figure(1, 2, figsize=(11, 3.6))
    styles = ["-o", "--s", ":^", "-.d"]
    gpu = table["peak_mb"].notna().any()
    for (seconds, rows), style in zip(table.groupby("seconds"), styles):
        ax_rate.plot(rows["batch_size"], rows["clips_per_second"], style, color="#3b6fb6", label=f"{seconds:g} s crops")
        ax_memory.plot(rows["batch_size"], rows["activation_mb"], style, color="#3b6fb6",
                       label=f"{seconds:g} s: activations")
        if gpu:
            ax_memory.plot(rows["batch_size"], rows["peak_mb"], style, color="#d1453b",
                           label=f"{seconds:g} s: GPU peak")
    device = table["device"].iloc[0]
    ax_rate.set_title(f"Training throughput ({device}, {table['precision'].iloc[0]})")
    ax_rate.set_ylabel("clips per second")
    ax_memory.set_title("Memory of one step")
    ax_memory.set_ylabel("MB")
    for ax in (ax_rate, ax_memory):
        ax.set_xlabel("batch size")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(table["batch_size"].unique()))
        ax.get_xaxis().set_major_formatter(ScalarFormatter())
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def ladder(uar, steps):
    """The baseline ladder (:func:`ser_lib.training.ladder.run` and ``steps``): each rung's UAR (bar:
    mean over folds, dots: the folds), and what each rung adds to the one before it (the mean paired
    difference with its 95% confidence interval; an interval across 0 is not shown to help)."""
    fig, (ax_uar, ax_gain) = new_figure(1, 2, figsize=(12, 0.45 * len(uar) + 2.1), sharey=True)
    rows = np.arange(len(uar))
    ax_uar.barh(rows, uar.mean(axis=1), color="#9bb7de", label="mean over folds")
    for j, fold in enumerate(uar.columns):  # a fold's rungs joined: the pairs the differences are taken over
        ax_uar.plot(uar[fold], rows, "-o", color="#27497a", ms=4, lw=0.8, alpha=0.6,
                    label="one fold (its rungs joined)" if j == 0 else None)
    ax_uar.set(yticks=rows, yticklabels=uar.index, xlabel="test UAR (speaker-independent)", xlim=(0, 1),
               title="Each rung")
    ax_uar.invert_yaxis()
    below = dict(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)  # never on the data
    ax_uar.legend(ncol=2, **below)
    gains = steps["gain"].to_numpy(dtype=float)
    low, high = steps["95% CI low"].to_numpy(dtype=float), steps["95% CI high"].to_numpy(dtype=float)
    shown = ~np.isnan(gains)
    colour = np.where(low > 0, "#2e7d4f", np.where(high < 0, "#d1453b", "#8c8c8c"))
    ax_gain.errorbar(gains[shown], rows[shown], xerr=[(gains - low)[shown], (high - gains)[shown]], fmt="none",
                     ecolor="#555555", capsize=3)
    ax_gain.scatter(gains[shown], rows[shown], c=colour[shown], zorder=3)
    ax_gain.axvline(0, color="black", lw=0.8)
    ax_gain.set(xlabel="UAR gained over the rung above (mean of folds, 95% CI)", title="What each rung adds")
    from matplotlib.lines import Line2D

    ax_gain.legend(handles=[Line2D([], [], marker="o", ls="none", color=c, label=text) for c, text in
                            (("#2e7d4f", "interval above 0"), ("#8c8c8c", "interval spans 0"),
                             ("#d1453b", "interval below 0"))], ncol=3, **below)
    fig.tight_layout()
    return fig


def projection(table, clips, colour_by: str = "emotion", method: str = "pca", seed: int = 0, ax=None):
    """2-D projection (PCA or t-SNE) of standardised clip features, coloured by emotion or actor."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(table.to_numpy())
    if method == "tsne":
        xy = TSNE(n_components=2, random_state=seed, init="pca", perplexity=30).fit_transform(x)
    else:
        xy = PCA(n_components=2, random_state=seed).fit_transform(x)
    if ax is None:
        fig, ax = new_figure(figsize=(5.5, 5))
    else:
        fig = ax.figure
    values = clips[colour_by].to_numpy()
    if colour_by == "emotion":
        for emotion in dict.fromkeys(values):
            mask = values == emotion
            ax.scatter(xy[mask, 0], xy[mask, 1], s=10, color=EMOTION_COLOURS.get(emotion), label=emotion, alpha=0.8)
        ax.legend(fontsize=7, markerscale=1.5, ncol=2)
    else:
        names = sorted(set(values), key=natural_key)  # e.g. speakers: one colour each
        codes = np.array([names.index(v) for v in values])
        points = ax.scatter(xy[:, 0], xy[:, 1], s=10, c=codes, cmap="tab20", alpha=0.8)
        fig.colorbar(points, ax=ax, label=f"{colour_by} ({len(names)})")
    ax.set_title(f"{method.upper()} of clip features, by {colour_by}")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def stream_timeline(results, labels: list[str]):
    """Smoothed probabilities of a stream over time (stacked), grey where there was no speech."""
    fig, ax = new_figure(figsize=(10, 3.2))
    times = np.array([r.time for r in results])
    probs = np.array([r.smoothed if r.smoothed is not None else np.zeros(len(labels)) for r in results])
    ax.stackplot(times, probs.T, colors=colours(labels), labels=labels, alpha=0.85, step="post")
    for r in results:
        if not r.speech:
            ax.axvspan(r.time - 0.25, r.time + 0.25, color="#dddddd", lw=0)
    ax.set_xlim(times.min() if len(times) else 0, times.max() if len(times) else 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_title("Stream timeline (smoothed; grey: no speech)")
    ax.legend(fontsize=7, ncol=len(labels), loc="upper center", bbox_to_anchor=(0.5, -0.25))
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# Figures of a cross-corpus test (notebook 07)
# ----------------------------------------------------------------------------------------------
def recording_profiles(profiles: dict):
    """How corpora were recorded (:func:`ser_lib.data.channel.profile` of each): speech level per clip,
    and the long-term average spectrum."""
    fig, (ax_level, ax_ltas) = new_figure(1, 2, figsize=(11, 3.6))
    palette = ["#3b6fb6", "#d1453b", "#6b8e23", "#8a5fb0"]
    for (name, prof), colour in zip(profiles.items(), palette):
        ax_level.hist(prof.level_db, bins=15, alpha=0.55, color=colour, label=name)
        ax_ltas.semilogx(np.maximum(prof.freqs, 1.0), prof.ltas_db, color=colour, label=name)
    ax_level.set_title("Speech level per clip")
    ax_level.set_xlabel("dBFS")
    ax_level.set_ylabel("clips")
    ax_level.legend()
    ax_ltas.set_xlim(50, audio.SAMPLE_RATE / 2)
    ax_ltas.set_title("Long-term average spectrum of the speech")
    ax_ltas.set_xlabel("frequency (Hz)")
    ax_ltas.set_ylabel("dB")
    ax_ltas.legend()
    fig.tight_layout()
    return fig


def recall_and_predictions(evaluations: dict):
    """Per-class recall and the share of predictions per class, one series per evaluation
    (``{"cold start": Predictions, "adapted": Predictions}``): a model that answers one class for every
    voice shows a tall bar on the right and empty recalls on the left."""
    fig, (ax_recall, ax_share) = new_figure(1, 2, figsize=(11, 3.6), sharex=True)
    first = next(iter(evaluations.values()))
    labels = first.labels
    x = np.arange(len(labels))
    width = 0.8 / len(evaluations)
    hatches = ["", "//", "..", "xx"]
    for k, (name, pred) in enumerate(evaluations.items()):
        y_true, y_pred = np.asarray(pred.y_true), np.asarray(pred.y_pred)
        recall = [float((y_pred[y_true == c] == c).mean()) if (y_true == c).any() else np.nan
                  for c in range(len(labels))]
        share = np.bincount(y_pred, minlength=len(labels)) / max(1, len(y_pred))
        for ax, values in ((ax_recall, recall), (ax_share, share)):
            ax.bar(x + (k - (len(evaluations) - 1) / 2) * width, values, width, color=colours(labels),
                   hatch=hatches[k % len(hatches)], edgecolor="black", linewidth=0.4, label=name)
    ax_share.axhline(1 / len(labels), color="#555555", ls=":", lw=1, label="balanced")
    ax_recall.set_title("Recall per class")
    ax_recall.set_ylim(0, 1)
    ax_share.set_title("Share of the predictions")
    for ax in (ax_recall, ax_share):
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=30)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
