"""Checkpoints that rebuild their own model: weights plus every plain value needed to use them.

A checkpoint is a dict of tensors and plain Python values, so it loads with
``torch.load(weights_only=True)`` (no pickled code). It carries the model config (including the
encoder's architecture, so no download is needed to rebuild it), the label names in output
order, the emotion subset, the split, the audio settings and the metrics at saving time.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .data import AudioSettings
from .errors import CheckpointError
from .model import ModelConfig, SERModel

FORMAT = "ser-course-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode) and what it was trained for."""

    model: SERModel
    labels: list[str]
    emotion_codes: list[int]
    emotion_subset: str
    split: dict
    audio: AudioSettings
    metrics: dict
    train_config: dict
    path: Path
    normalization: dict = field(default_factory=dict)


def checkpoint_payload(model: SERModel, *, labels: list[str], emotion_codes: list[int], emotion_subset: str,
                       split: dict, audio: AudioSettings, metrics: dict, train_config: dict,
                       normalization: dict | None = None, extra: dict | None = None) -> dict:
    """The dict that :func:`save` writes (tensors on the CPU, everything else plain)."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "labels": list(labels),
        "emotion_codes": [int(c) for c in emotion_codes],
        "emotion_subset": emotion_subset,
        "split": split,
        "audio": asdict(audio),
        "metrics": metrics,
        "train_config": train_config,
        "normalization": normalization or {},
    }
    payload.update(extra or {})
    return payload


def save(payload: dict, path: str | Path) -> Path:
    """Write atomically (a temporary file renamed into place), so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read(path: str | Path) -> dict:
    """The raw checkpoint dict, validated; :class:`CheckpointError` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (train one with `python -m ser_lib train`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, wrong file type, pickled objects...
        raise CheckpointError(f"{path} is not a readable ser-course checkpoint ({str(err).splitlines()[0]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ser-course checkpoint (no '{FORMAT}' marker)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {version}, this ser_lib reads version "
                              f"{FORMAT_VERSION}: retrain, or use the ser_lib version that wrote it")
    return payload


def load(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model of a checkpoint (no download: the encoder architecture is in the file)."""
    payload = read(path)
    config = ModelConfig.from_dict(payload["model_config"])
    model = SERModel(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the model described in the file ({err})") from None
    model.to(device).eval()
    return Checkpoint(
        model=model, labels=list(payload["labels"]), emotion_codes=list(payload["emotion_codes"]),
        emotion_subset=payload["emotion_subset"], split=payload["split"],
        audio=AudioSettings(**payload["audio"]), metrics=payload.get("metrics", {}),
        train_config=payload.get("train_config", {}), path=Path(path),
        normalization=payload.get("normalization", {}),
    )
