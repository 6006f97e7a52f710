"""One figure style for the whole course, and :func:`save_fig` to write PNGs.

Every emotion keeps its colour in every figure (:data:`EMOTION_COLOURS`), so a reader learns once
that red is angry and blue is sad.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

from . import paths

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


def new_figure(*args, **kwargs):
    """``plt.subplots`` with the course style applied."""
    import matplotlib.pyplot as plt

    set_style()
    return plt.subplots(*args, **kwargs)
