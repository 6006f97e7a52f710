"""Checkpoints that rebuild their own model: weights plus every plain value needed to use them.

A checkpoint is a dict of tensors and plain Python values, so it loads with
``torch.load(weights_only=True)`` (no pickled code). It carries the model config (including the
encoder's architecture, so no download is needed to rebuild it), the label names in output order
(the only copy of the label set), the audio settings, the input normaliser's statistics, the split
and the training options, and the metrics at saving time. Every field is checked on loading, so a
damaged or foreign file gets a message, not a traceback.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..data.audio import AudioSettings
from ..errors import CheckpointError, ConfigError
from .normalizer import InputNormalizer
from .ser_model import ModelConfig, SERModel

FORMAT = "ser-course-checkpoint"
FORMAT_VERSION = 3


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode), its classes, and how to feed it."""

    model: SERModel
    labels: list[str]
    audio: AudioSettings
    normalizer: InputNormalizer
    split: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    train_config: dict = field(default_factory=dict)
    path: Path | None = None


def payload(model: SERModel, *, labels: list[str], audio: AudioSettings, normalizer: InputNormalizer,
            split: dict, train_config: dict, metrics: dict, extra: dict | None = None) -> dict:
    """The dict that :func:`save` writes (tensors on the CPU, everything else plain)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "labels": list(labels),
        "audio": asdict(audio),
        "normalizer": normalizer.to_dict(),
        "split": split,
        "train_config": train_config,
        "metrics": metrics,
        **(extra or {}),
    }


def save(data: dict, path: str | Path) -> Path:
    """Write atomically (a temporary file renamed into place), so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    torch.save(data, tmp)
    os.replace(tmp, path)
    return path


def read(path: str | Path) -> dict:
    """The raw checkpoint dict, validated; :class:`CheckpointError` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (train one with `python -m ser_lib train`)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, text, random bytes, pickled objects...
        raise CheckpointError(f"{path} is not a ser-course checkpoint: {_load_failure(err, path)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ser-course checkpoint (no '{FORMAT}' marker)")
    version = data.get("format_version")
    if version not in (1, 2, FORMAT_VERSION):
        raise CheckpointError(f"{path} has checkpoint format version {version}, this ser_lib reads versions 1 "
                              f"to {FORMAT_VERSION}: use the ser_lib version that wrote it, or retrain")
    if version == 1:
        data = _upgrade_from_v1(data)
    if version in (1, 2):
        data = _upgrade_from_v2(data)
    _validate(data, path)
    return data


def _load_failure(err: Exception, path: Path) -> str:
    """Why ``torch.load`` refused a file, without PyTorch's advice to unpickle it unsafely."""
    text = str(err)
    if "Unsupported global" in text:
        return "it holds pickled Python objects, which are never loaded (they could run code)"
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):  # PyTorch files are zip archives
        return "it is an incomplete or damaged PyTorch file (truncated by a copy or download?); copy it again"
    return "it is not a PyTorch file at all (a checkpoint is the best_model.pt that `train` writes)"


def _validate(data: dict, path: Path) -> None:
    """Every field a checkpoint needs, of the right kind; the labels match the emotion head."""
    kinds = {"model_config": dict, "state_dict": dict, "labels": list, "audio": dict, "normalizer": dict}
    for key, kind in kinds.items():
        if not isinstance(data.get(key), kind):
            raise CheckpointError(f"{path} is damaged: its '{key}' is missing or not a {kind.__name__}; retrain "
                                  f"or copy the file again")
    labels = data["labels"]
    if len(labels) < 2 or not all(isinstance(x, str) for x in labels) or len(set(labels)) != len(labels):
        raise CheckpointError(f"{path} is damaged: its labels {labels!r} are not a list of distinct emotion names")
    classes = data["model_config"].get("num_emotions")
    if classes != len(labels):
        raise CheckpointError(f"{path} is damaged: {len(labels)} labels for a model with {classes} emotion outputs")


def _upgrade_from_v1(data: dict) -> dict:
    """A format-1 checkpoint (mel statistics in the model's buffers) in format 2."""
    old_config = dict(data["model_config"])
    mel = {k: old_config.pop(k) for k in ("sample_rate", "n_mels", "n_fft", "hop_length") if k in old_config}
    old_config["mel"] = mel
    state = dict(data["state_dict"])
    info = dict(data.get("normalization") or {})
    mel_stats = None
    if "spectrogram.mel_mean" in state:
        mel_stats = {"mean": state.pop("spectrogram.mel_mean").tolist(), "std": state.pop("spectrogram.mel_std").tolist()}
    state = {k.replace("spectrogram.mel.", "spectrogram.front_end.mel."): v for k, v in state.items()}
    descriptors = ({"mean": info["descriptor_mean"], "std": info["descriptor_std"]}
                   if "descriptor_mean" in info else None)
    normalizer = {"speaker_norm": bool(info.get("speaker_norm")), "mel": mel_stats, "descriptors": descriptors,
                  "descriptor_names": info.get("descriptor_names", [])}
    keep = {k: v for k, v in data.items() if k not in ("emotion_codes", "emotion_subset", "normalization")}
    return {**keep, "format_version": 2, "model_config": old_config, "state_dict": state, "normalizer": normalizer}


def _upgrade_from_v2(data: dict) -> dict:
    """A format-2 checkpoint (actor numbers of one RAVDESS-layout corpus) with namespaced speakers."""
    corpus = "ravdess" if (data.get("train_config") or {}).get("dataset_root") else "synthetic"
    split = {part: [f"{corpus}:{int(a):02d}" if isinstance(a, int) else a for a in data.get("split", {}).get(part, [])]
             for part in ("train", "val", "test")}
    return {**data, "format_version": FORMAT_VERSION,
            "split": {**data.get("split", {}), **split}}


def load(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model of a checkpoint (no download: the encoder architecture is in the file)."""
    data = read(path)
    try:
        config = ModelConfig.from_dict(data["model_config"])
        audio = AudioSettings.from_dict(data["audio"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its model config or audio settings cannot be read ({err})") from None
    model = SERModel(config)
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the model described in the file "
                              f"({str(err).splitlines()[0]})") from None
    model.to(device).eval()
    return Checkpoint(model=model, labels=list(data["labels"]), audio=audio,
                      normalizer=InputNormalizer.from_dict(data["normalizer"], config.mel, audio),
                      split=data.get("split") or {}, metrics=data.get("metrics") or {},
                      train_config=data.get("train_config") or {}, path=Path(path))


def model_files(given: list) -> list[Path]:
    """The model files of one model or an ensemble (a run folder stands for its ``best_model.pt``), refused
    when one is given twice."""
    paths = [Path(p) / "best_model.pt" if Path(p).is_dir() else Path(p) for p in given]
    resolved = [p.resolve() for p in paths]
    twice = [str(g) for g, r in zip(given, resolved) if resolved.count(r) > 1]
    if twice:
        raise ConfigError(f"{twice[0]} is given twice: each model of an ensemble once")
    return paths


def check_ensemble(members: list[Checkpoint], paths: list) -> None:
    """:class:`CheckpointError` unless the models of an ensemble (loaded from ``paths``) predict the same
    classes in the same order and all use speaker normalisation or none does: the mean of their
    probabilities is only meaningful then."""
    first = members[0]
    for path, loaded in zip(paths[1:], members[1:]):
        if loaded.labels != first.labels:
            raise CheckpointError(f"{path} predicts {', '.join(loaded.labels)} but {paths[0]} predicts "
                                  f"{', '.join(first.labels)}: an ensemble's models must share their classes")
        if loaded.normalizer.speaker_norm != first.normalizer.speaker_norm:
            raise CheckpointError(f"{path} and {paths[0]} differ in speaker normalisation (--speaker_norm): "
                                  f"an ensemble's models must agree on it")
