"""One place for randomness: seed Python, NumPy and torch together, and derive sub-seeds."""
from __future__ import annotations

import random

import numpy as np


def derive_seed(*parts: int) -> int:
    """A 32-bit seed determined by ``parts`` (e.g. run seed, epoch, clip index)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)
