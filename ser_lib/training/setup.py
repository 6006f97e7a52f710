"""Setting a run up: the data, the splits, the accelerator, the optimiser and its schedule.

Everything here happens before the first epoch; :mod:`ser_lib.training.loop` holds the epochs and
:mod:`ser_lib.training.run` puts the pieces together.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data import labels as emotion_labels
from ..data import corpora, splits
from ..data.dataset import load_table
from ..devices import resolve_device
from ..errors import ConfigError, SplitError
from ..model.ser_model import SERModel
from .config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class RunData:
    """The clips of a run and their prepared audio, shared by the folds."""

    clips: pd.DataFrame
    waves: list[np.ndarray]
    labels: list[str]
    root: str
    failures: list[tuple[str, str]] = field(default_factory=list)

    def targets(self) -> np.ndarray:
        """Each clip's class index in ``labels`` (mapped by emotion name)."""
        return self.clips["emotion"].map(emotion_labels.label_index(self.labels)).to_numpy()

    def parts(self, split: splits.Split) -> dict[str, np.ndarray]:
        """Row indices of the clips of each part of ``split``."""
        return {name: np.flatnonzero(self.clips["speaker"].isin(getattr(split, name)).to_numpy())
                for name in ("train", "val", "test")}


def scan_dataset(config: TrainConfig) -> tuple[str, pd.DataFrame, list[str]]:
    """The datasets, their clip table of the run's emotions and the run's classes (fast: headers only),
    so a wrong folder or an emotion a corpus lacks is reported before anything slow happens."""
    datasets = config.datasets()
    result = corpora.scan(datasets, progress=config.progress)
    for note in result.notes:
        log.warning(note)
    if result.problems:
        log.warning("%d files are not used (`python -m ser_lib index` with the same --dataset options lists them)",
                    len(result.problems))
    labels = emotion_labels.for_data(config.emotion_subset, result.clips)
    clips = emotion_labels.select(result.clips, labels)
    if note := corpora.few_clips_note(clips):
        log.warning("%s", note)
    return ", ".join(map(str, datasets)), clips, labels


def load_run_data(config: TrainConfig, root: str, clips: pd.DataFrame, labels: list[str]) -> RunData:
    """Decode every clip of the run (failures are reported and left out)."""
    clips, waves, failures = load_table(clips, config.audio_settings(), progress=config.progress)
    return RunData(clips, waves, labels, root, failures)


def run_splits(config: TrainConfig, clips: pd.DataFrame) -> list[splits.Split]:
    """The fixed split, the held-out corpus, or the K folds of the run."""
    speakers = corpora.speakers_of(clips)
    genders = clips.groupby("speaker")["gender"].first().to_dict()
    if config.folds:
        return splits.kfold_splits(speakers, genders, config.folds)
    if config.test_corpus:
        return [splits.corpus_split(speakers, genders, config.test_corpus)]
    return [splits.fixed_split(speakers, config.test_speakers, config.val_speakers)]


def check_split(config: TrainConfig, clips: pd.DataFrame, labels: list[str], split: splits.Split) -> None:
    """Refuse a split that cannot train: a class without training clips, no test clips, a batch too large."""
    parts = {name: clips[clips["speaker"].isin(getattr(split, name))] for name in ("train", "test")}
    missing = [label for label in labels if label not in set(parts["train"]["emotion"])]
    if missing:
        raise SplitError(
            f"{split.name}: no training clips for {', '.join(missing)} among speakers "
            f"{', '.join(split.train)} (subset {config.emotion_subset}); choose another --emotion_subset or "
            f"other speakers"
        )
    if not len(parts["test"]):
        raise SplitError(f"{split.name}: the test speakers have no clips in this dataset")
    if config.batch_size > len(parts["train"]):
        raise ConfigError(f"--batch_size {config.batch_size} is larger than the {len(parts['train'])} training "
                          f"clips; use at most {len(parts['train'])}")


def make_accelerator(config: TrainConfig):
    """Hugging Face Accelerate with the run's device and mixed precision (off on the CPU)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    device = resolve_device(config.device)
    precision = config.mixed_precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16") \
            if device.type == "cuda" else "no"  # emulated bf16 (V100, T4) is slower than fp16
    if device.type == "cpu" and precision != "no":
        log.info("mixed precision is off on the CPU")
        precision = "no"
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=config.freeze == "none" and config.has_backbone)]
    return Accelerator(cpu=device.type == "cpu", mixed_precision=precision, kwargs_handlers=handlers)


def make_optimizer(model: SERModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with separate learning rates; no weight decay on biases, norms and layer weights."""
    groups = []
    for name, lr in (("backbone", config.learning_rate), ("heads", config.head_lr)):
        params = model.parameter_groups()[name]
        if not params and name == "backbone":
            continue
        ids = {id(p) for p in params}
        decay = [p for p in model.parameters() if id(p) in ids and p.ndim >= 2]
        no_decay = [p for p in model.parameters() if id(p) in ids and p.ndim < 2]
        groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{name}_no_decay"})
        groups.append({"params": decay, "lr": lr, "weight_decay": config.weight_decay, "name": name})
    return torch.optim.AdamW(groups)


def cosine_with_warmup(total_steps: int, warmup: float):
    """The learning-rate factor of a step: linear warm-up, then cosine annealing to zero."""
    warm = max(1, int(round(total_steps * warmup))) if warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def class_weights(labels: np.ndarray, n: int) -> torch.Tensor:
    """Inverse-frequency weights of the classes (0 for a class without clips)."""
    counts = np.bincount(labels, minlength=n).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (n * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def out_of_memory_help(config: TrainConfig, run_dir: Path, device) -> str:
    """What to change when the accelerator runs out of memory (the common fixes, most effective first)."""
    fixes = [f"--batch_size {max(1, config.batch_size // 2)} (memory grows with the batch)",
             f"--max_seconds {max(1.0, config.max_seconds - 1):g} (shorter crops)"]
    if config.has_backbone and config.freeze != "backbone":
        fixes.append("--freeze backbone (no encoder gradients; its outputs are cached after the first pass)")
    if config.mixed_precision == "no":
        fixes.append("--mixed_precision auto (bf16/fp16 halves activation memory)")
    if config.average_epochs > 0:
        fixes.append("--average_epochs 0 (no second copy of the trainable weights for their moving average)")
    return (f"out of memory on {device}. Finished epochs, if any, are kept in {run_dir} (last.pt). Start again "
            f"(with --overwrite, or another --output_dir) with one of: " + "; ".join(fixes) + ". Close other "
            "programs using the GPU (nvidia-smi lists them).")
