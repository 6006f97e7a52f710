"""The demo model: a small spectrogram model of the synthetic corpus, trained once into the cache.

Notebooks 03, 05 and 06 and the latency benchmark use it when no model of your own is given.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import paths
from ..data.synth import SYNTH_VERSION
from .config import TrainConfig
from .run import train

#: Bump when the demo model must be retrained (a new checkpoint format or training recipe).
DEMO_VERSION = 10


def demo_checkpoint(progress: bool = True) -> Path:
    """``best_model.pt`` of the demo model: the default configuration, 4 epochs on the synthetic
    corpus, trained on first use (about 2.5 minutes on 2 CPU cores, descriptors included)."""
    out = paths.cache_dir() / f"demo-model-v{DEMO_VERSION}-synthetic-v{SYNTH_VERSION}"
    manifest = out / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("status") == "finished":
        return out / "best_model.pt"
    train(TrainConfig(output_dir=str(out), epochs=4, patience=0, progress=progress, resume=True))
    return out / "best_model.pt"
