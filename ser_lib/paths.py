"""Where ser_lib keeps things: the cache folder (synthetic corpus, features, demo model) and figures.

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


def project_path(path: str | Path) -> Path:
    """A relative path taken from the project root (notebooks run from different folders)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def figures_dir() -> Path:
    """The project's ``figures/`` folder (what README shows)."""
    return PROJECT_ROOT / "figures"
