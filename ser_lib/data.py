"""From the clip table to padded batches: loading, cropping, augmenting, sampling.

All clips of a run are decoded once into memory (a few hundred MB for RAVDESS at 16 kHz), so epochs
do not pay for decoding and resampling again. Every random choice (order, crop, augmentation) is
drawn from a generator seeded by (run seed, epoch, clip), so a resumed run replays exactly and the
number of data-loader workers does not change the result.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from . import audio
from .augment import WaveAugment
from .errors import AudioError
from .seeding import derive_seed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioSettings:
    """How clips are prepared for the model (saved in checkpoints; inference uses the same)."""

    sample_rate: int = 16_000
    trim_db: float | None = 40.0   # trim leading/trailing silence quieter than this below the peak
    max_seconds: float = 3.0       # training crops (random) and evaluation crops (centre) at most this long

    @property
    def max_samples(self) -> int:
        return int(self.max_seconds * self.sample_rate)

    def prepare(self, wave: np.ndarray) -> np.ndarray:
        """Trim silence (the crop happens later)."""
        return audio.trim_silence(wave, self.sample_rate, self.trim_db) if self.trim_db else wave


def center_crop(wave: np.ndarray, settings: AudioSettings) -> np.ndarray:
    """At most ``settings.max_seconds`` from the middle of a clip (evaluation and inference)."""
    return audio.pad_or_crop(wave, min(len(wave), settings.max_samples), mode="center")


def load_clips(paths: Sequence[str], settings: AudioSettings, progress: bool = True,
               workers: int = 4) -> tuple[list[np.ndarray | None], list[tuple[str, str]]]:
    """Decode, resample and trim every clip; failures are returned as ``(path, reason)``, not raised."""

    def one(path: str):
        try:
            return settings.prepare(audio.load(path, settings.sample_rate)), None
        except AudioError as err:
            return None, (path, str(err))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(tqdm(pool.map(one, paths), total=len(paths), desc="loading audio", unit="clip",
                            disable=not progress, leave=False))
    waves = [w for w, _ in results]
    failures = [f for _, f in results if f is not None]
    for path, reason in failures:
        log.warning("skipping a clip that cannot be loaded: %s", reason)
    return waves, failures


class ClipDataset(torch.utils.data.Dataset):
    """Clips of one part of a split, with emotion and gender targets.

    ``train=True``: a random crop of at most ``max_seconds`` and waveform augmentation;
    otherwise the centre crop and no augmentation.
    """

    def __init__(self, clips: pd.DataFrame, waves: Sequence[np.ndarray], labels: Sequence[int],
                 settings: AudioSettings, *, train: bool, seed: int = 0,
                 augment: WaveAugment | None = None, states_cache=None,
                 extras: dict[str, np.ndarray] | None = None):
        if len(clips) != len(waves) or len(waves) != len(labels):
            raise ValueError("clips, waves and labels must have the same length")
        self.clips = clips.reset_index(drop=True)
        self.waves = list(waves)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.genders = (self.clips["gender"] == "female").to_numpy().astype(np.int64)
        self.settings = settings
        self.train = train
        self.seed = seed
        self.augment = augment if train else None
        self.states_cache = states_cache
        self.extras = {k: np.asarray(v, dtype=np.float32) for k, v in (extras or {}).items()}
        for key, values in self.extras.items():
            if len(values) != len(self.waves):
                raise ValueError(f"extra input {key!r} has {len(values)} rows for {len(self.waves)} clips")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, i: int) -> dict:
        wave = self.waves[i]
        limit = self.settings.max_samples
        item = {"emotion": int(self.labels[i]), "gender": int(self.genders[i]), "index": i}
        item.update({key: values[i] for key, values in self.extras.items()})
        if self.states_cache is not None:
            # Cached encoder layers were computed on the centre crop; crop both alike, without
            # waveform augmentation for the encoder branch (it never sees augmented audio).
            wave = center_crop(wave, self.settings)
            item["states"] = torch.from_numpy(self.states_cache.get(self.clips.loc[i, "path"], wave)).float()
            if self.augment is not None:
                rng = np.random.default_rng(derive_seed(self.seed, self.epoch, i))
                item["wave"] = self.augment.without_length_changes()(wave, rng)
            else:
                item["wave"] = wave
            return item
        if self.train:
            rng = np.random.default_rng(derive_seed(self.seed, self.epoch, i))
            if self.augment is not None:
                wave = self.augment(wave, rng)
            if len(wave) > limit:
                wave = audio.pad_or_crop(wave, limit, mode="random", rng=rng)
        else:
            wave = center_crop(wave, self.settings)
        item["wave"] = wave
        return item


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """Zero-pad waveforms (and cached encoder states) to the longest clip of the batch."""
    lengths = torch.tensor([len(it["wave"]) for it in items], dtype=torch.long)
    wave = torch.zeros(len(items), int(lengths.max()))
    for k, it in enumerate(items):
        wave[k, : lengths[k]] = torch.as_tensor(it["wave"])
    batch = {
        "wave": wave,
        "lengths": lengths,
        "emotion": torch.tensor([it["emotion"] for it in items]),
        "gender": torch.tensor([it["gender"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }
    for key in ("mel_mean", "mel_std", "descriptors"):
        if key in items[0]:
            batch[key] = torch.from_numpy(np.stack([it[key] for it in items]))
    if "states" in items[0]:
        frames = torch.tensor([it["states"].shape[1] for it in items], dtype=torch.long)
        first = items[0]["states"]
        states = torch.zeros(len(items), first.shape[0], int(frames.max()), first.shape[2], dtype=first.dtype)
        for k, it in enumerate(items):
            states[k, :, : frames[k]] = it["states"]
        batch["states"], batch["state_lengths"] = states, frames
    return batch


MODEL_INPUTS = {"states": "backbone_states", "state_lengths": "backbone_lengths", "mel_mean": "mel_mean",
                "mel_std": "mel_std", "descriptors": "descriptors"}


def model_inputs(batch: dict, device) -> dict:
    """The optional model arguments present in a batch, moved to ``device``."""
    return {name: batch[key].to(device) for key, name in MODEL_INPUTS.items() if key in batch}


class EncoderStatesCache:
    """Hidden states of a frozen encoder per clip, on disk as float16 (``FeatureCache``).

    With ``--freeze backbone`` the encoder's output for a clip never changes, so it is computed once
    (:meth:`fill`) and later epochs train only the layers on top. Keyed by file content, the
    encoder's weights and the audio settings.
    """

    def __init__(self, folder, backbone, settings: AudioSettings):
        import hashlib
        import json

        from .features import FeatureCache

        self.store = FeatureCache(folder)
        self.backbone = backbone
        digest = hashlib.sha1(json.dumps(backbone.encoder.config.to_dict(), sort_keys=True, default=str).encode())
        for tensor in backbone.encoder.state_dict().values():
            digest.update(tensor.detach().cpu().float().numpy().tobytes()[:4096])
            digest.update(str(float(tensor.float().sum())).encode())
        self.params = {"encoder": digest.hexdigest(), "sample_rate": settings.sample_rate,
                       "trim_db": settings.trim_db, "max_seconds": settings.max_seconds}

    @torch.no_grad()
    def _compute(self, wave: np.ndarray, device) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(wave))[None].to(device)
        states, frames = self.backbone.layers(x, torch.tensor([len(wave)], device=device))
        return states[0, :, : int(frames[0])].to(torch.float16).cpu().numpy()

    def get(self, path: str, wave: np.ndarray, device="cpu") -> np.ndarray:
        return self.store.get(path, "encoder-states", self.params, lambda: self._compute(wave, device))

    def fill(self, paths: Sequence[str], waves: Sequence[np.ndarray], settings: AudioSettings,
             device, progress: bool = True) -> None:
        """Compute and store the states of every clip's centre crop (skips those already there)."""
        was_training = self.backbone.training
        self.backbone.eval()
        for path, wave in tqdm(list(zip(paths, waves)), desc="caching encoder layers", unit="clip",
                               disable=not progress, leave=False):
            self.get(path, center_crop(wave, settings), device)
        self.backbone.train(was_training)


class EpochSampler(torch.utils.data.Sampler):
    """Shuffled (or class-balanced) order drawn from (seed, epoch), sharded across processes."""

    def __init__(self, labels: Sequence[int], *, shuffle: bool, seed: int = 0, balanced: bool = False,
                 rank: int = 0, world: int = 1):
        self.labels = np.asarray(labels)
        self.shuffle, self.seed, self.balanced = shuffle, seed, balanced
        self.rank, self.world = rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        n = len(self.labels)
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng(derive_seed(self.seed, self.epoch, 0x5A))
        if self.balanced:
            counts = np.bincount(self.labels)
            p = 1.0 / counts[self.labels]
            return rng.choice(n, size=n, replace=True, p=p / p.sum())
        return rng.permutation(n)

    def __iter__(self):
        order = self._order()
        if self.world > 1:
            pad = (-len(order)) % self.world
            order = np.concatenate([order, order[:pad]])[self.rank::self.world]
        return iter(order.tolist())

    def __len__(self) -> int:
        return int(np.ceil(len(self.labels) / self.world))
