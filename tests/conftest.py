"""Shared fixtures: a small synthetic corpus (never the network) and the shared real data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_lib import synth

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess16k"


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """A 4-actor synthetic corpus (240 clips, 2 male and 2 female actors)."""
    root = tmp_path_factory.mktemp("synthetic4")
    synth.generate(root, actors=4, seed=0, progress=False)
    return root


@pytest.fixture
def shared_data() -> Path:
    """The development copy of RAVDESS (actors 01-20); skips when this checkout has none beside it."""
    if not (SHARED_DATA / "Actor_01").is_dir():
        pytest.skip(f"real RAVDESS recordings not found at {SHARED_DATA} (only present on development machines)")
    return SHARED_DATA


def write_tone(path: Path, sr: int = 16000, seconds: float = 0.5, channels: int = 1,
               freq: float = 440.0, subtype: str = "PCM_16") -> np.ndarray:
    """Write a sine tone (the same in every channel) and return the mono signal."""
    t = np.arange(int(sr * seconds)) / sr
    mono = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    data = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)
    return mono
