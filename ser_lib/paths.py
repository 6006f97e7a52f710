"""Where ser_lib keeps things: the cache (synthetic corpus, features) and the figures folder.

Paths are resolved here, not relative to the working directory, because papermill and nbval start
notebooks in different folders.
"""
from __future__ import annotations

import os
from pathlib import Path

#: The checkout this package was imported from (``figures/`` and ``notebooks/`` live there).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """``$SER_CACHE_DIR``, else ``$XDG_CACHE_HOME/ser-course``, else ``~/.cache/ser-course``."""
    if os.environ.get("SER_CACHE_DIR"):
        return Path(os.environ["SER_CACHE_DIR"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser()
    return base / "ser-course"


def synthetic_dir(actors: int = 24, seed: int = 0) -> Path:
    """Where the synthetic corpus with these parameters lives in the cache."""
    from .synth import SYNTH_VERSION

    return cache_dir() / f"synthetic-v{SYNTH_VERSION}-{actors}actors-seed{seed}"


def synthetic_root(actors: int = 24, seed: int = 0, progress: bool = True) -> Path:
    """The synthetic corpus folder, generated on first use (the default dataset everywhere)."""
    from . import synth

    return synth.generate(synthetic_dir(actors, seed), actors=actors, seed=seed, progress=progress)


def project_path(path: str | Path) -> Path:
    """A relative path taken from the project root (notebooks run from different folders)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def figures_dir() -> Path:
    """The project's ``figures/`` folder (what README shows)."""
    return PROJECT_ROOT / "figures"
