"""From the clip table to padded batches: loading, cropping, augmenting, sampling.

All clips of a run are decoded once into memory (a few hundred MB for RAVDESS at 16 kHz), so epochs
do not pay for decoding and resampling again. Every random choice (order, crop, augmentation) is
drawn from a generator seeded by (run seed, epoch, clip), so a resumed run replays exactly and the
number of data-loader workers does not change the result.

A batch is ``{"wave", "lengths", "emotion", "gender", "index", "inputs"}``; ``inputs`` holds the
model's optional keyword arguments (the normaliser's statistics and descriptors, cached encoder
states), named as :meth:`ser_lib.model.SERModel.forward` names them.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..errors import AudioError, DatasetError
from ..seeding import derive_seed
from . import audio
from .audio import AudioSettings
from .augment import WaveAugment


#: Gender targets of the auxiliary head; an unknown gender is left out of its loss and accuracy.
GENDER_TARGETS = {"male": 0, "female": 1}
IGNORE = -100


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
        logging.getLogger(__name__).warning("skipping a clip that cannot be loaded: %s", reason)
    return waves, failures


def load_table(clips: pd.DataFrame, settings: AudioSettings, progress: bool = True
               ) -> tuple[pd.DataFrame, list[np.ndarray], list[tuple[str, str]]]:
    """The loadable rows of a clip table, their prepared audio, and the files that failed (and why)."""
    waves, failures = load_clips(clips["path"].tolist(), settings, progress=progress)
    keep = [w is not None for w in waves]
    if not any(keep):
        raise DatasetError("none of the clips could be loaded:\n  " +
                           "\n  ".join(f"{p}: {r}" for p, r in failures[:10]))
    return clips[keep].reset_index(drop=True), [w for w in waves if w is not None], failures


class ClipDataset(torch.utils.data.Dataset):
    """Clips of one part of a split, with emotion and gender targets and the model's extra inputs.

    ``train=True``: a random crop of at most ``max_seconds`` and waveform augmentation;
    otherwise the centre crop and no augmentation. ``inputs`` holds one row per clip of each extra
    model input; ``states_cache`` (a :class:`~ser_lib.model.backbone.EncoderStatesCache`)
    supplies a frozen encoder's layers instead of running it. ``variants`` are ``(rate, inputs)``
    pairs: the same inputs under other speaker statistics (the training data's, or a few clips'), which
    a training clip takes instead with probability ``rate``, drawn anew each epoch: the model also
    learns the cold start, where nothing of a speaker has been heard yet, and the first few clips.
    """

    def __init__(self, clips: pd.DataFrame, waves: Sequence[np.ndarray], labels: Sequence[int],
                 settings: AudioSettings, *, train: bool, seed: int = 0,
                 augment: WaveAugment | None = None, states_cache=None,
                 inputs: dict[str, np.ndarray] | None = None,
                 variants: Sequence[tuple[float, dict[str, np.ndarray]]] = ()):
        if len(clips) != len(waves) or len(waves) != len(labels):
            raise ValueError("clips, waves and labels must have the same length")
        self.clips = clips.reset_index(drop=True)
        self.waves = list(waves)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.genders = self.clips["gender"].map(GENDER_TARGETS).fillna(IGNORE).to_numpy().astype(np.int64)
        self.settings = settings
        self.train = train
        self.seed = seed
        self.augment = augment if train else None
        self.states_cache = states_cache
        self.inputs = {k: np.asarray(v, dtype=np.float32) for k, v in (inputs or {}).items()}
        for key, values in self.inputs.items():
            if len(values) != len(self.waves):
                raise ValueError(f"model input {key!r} has {len(values)} rows for {len(self.waves)} clips")
        self.variants = [(rate, {k: np.asarray(v, dtype=np.float32) for k, v in values.items()})
                         for rate, values in variants] if train else []
        if any(values.keys() != self.inputs.keys() for _, values in self.variants):
            raise ValueError("each variant must hold the same model inputs as inputs")
        if sum(rate for rate, _ in self.variants) >= 1:
            raise ValueError("the variants' rates must add up to less than 1")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.waves)

    def _rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng(derive_seed(self.seed, self.epoch, i))

    def _wave(self, i: int) -> np.ndarray:
        wave = self.waves[i]
        if not self.train:
            return self.settings.center_crop(wave)
        rng = self._rng(i)
        if self.augment is not None:
            wave = self.augment(wave, rng)
        if len(wave) > self.settings.max_samples:
            wave = audio.pad_or_crop(wave, self.settings.max_samples, mode="random", rng=rng)
        return wave

    def _with_cached_states(self, i: int, item: dict) -> dict:
        # Cached encoder layers were computed on the centre crop; crop both alike, without length
        # changes in the waveform augmentation (the encoder branch never sees augmented audio).
        wave = self.settings.center_crop(self.waves[i])
        item["inputs"]["states"] = torch.from_numpy(self.states_cache.get(self.clips.loc[i, "path"], wave)).float()
        item["wave"] = wave if self.augment is None else self.augment.without_length_changes()(wave, self._rng(i))
        return item

    def __getitem__(self, i: int) -> dict:
        inputs = self.inputs
        if self.variants:
            u = np.random.default_rng(derive_seed(self.seed, self.epoch, i, 1)).random()
            for rate, values in self.variants:
                if u < rate:
                    inputs = values
                    break
                u -= rate
        item = {"emotion": int(self.labels[i]), "gender": int(self.genders[i]), "index": i,
                "inputs": {key: values[i] for key, values in inputs.items()}}
        if self.states_cache is not None:
            return self._with_cached_states(i, item)
        item["wave"] = self._wave(i)
        return item


def _pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad ``(layers, frames, hidden)`` encoder states along frames."""
    frames = torch.tensor([s.shape[1] for s in states], dtype=torch.long)
    first = states[0]
    out = torch.zeros(len(states), first.shape[0], int(frames.max()), first.shape[2], dtype=first.dtype)
    for k, s in enumerate(states):
        out[k, :, : frames[k]] = s
    return out, frames


def collate(items: list[dict]) -> dict:
    """Zero-pad waveforms (and cached encoder states) to the longest clip of the batch."""
    lengths = torch.tensor([len(it["wave"]) for it in items], dtype=torch.long)
    wave = torch.zeros(len(items), int(lengths.max()))
    for k, it in enumerate(items):
        wave[k, : lengths[k]] = torch.as_tensor(it["wave"])
    inputs = {}
    for key in items[0]["inputs"]:
        if key == "states":
            inputs["backbone_states"], inputs["backbone_lengths"] = _pad_states([it["inputs"][key] for it in items])
        else:
            inputs[key] = torch.from_numpy(np.stack([it["inputs"][key] for it in items]))
    return {"wave": wave, "lengths": lengths, "inputs": inputs,
            **{key: torch.tensor([it[key] for it in items]) for key in ("emotion", "gender", "index")}}


def to_device(batch: dict, device) -> dict:
    """A batch with every tensor (the model inputs too) on ``device``."""
    return {key: to_device(value, device) if isinstance(value, dict) else value.to(device)
            for key, value in batch.items()}


#: A length-bucketing sampler sorts pools of this many batches by clip length.
BUCKET_POOL = 50


class EpochSampler(torch.utils.data.Sampler):
    """Shuffled order drawn from (seed, epoch), sharded across processes; with ``balance_by`` (arrays
    of class or corpus labels, one per clip), clips are drawn with replacement so that every value of
    each array is drawn equally often. With ``lengths`` (samples per clip), each run of ``batch_size``
    clips (per process) holds clips of similar length, so batches need little padding: pools of
    :data:`BUCKET_POOL` batches of the shuffled order are sorted by length, cut into batches, and the
    batches shuffled (a short last batch stays last)."""

    def __init__(self, size: int, *, shuffle: bool, seed: int = 0, balance_by: Sequence[Sequence] = (),
                 rank: int = 0, world: int = 1, lengths: Sequence[int] | None = None, batch_size: int = 1):
        self.size = size
        self.shuffle, self.seed = shuffle, seed
        self.balance_by = [np.unique(np.asarray(values), return_inverse=True)[1] for values in balance_by]
        self.rank, self.world = rank, world
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.batch_size = batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        n = self.size
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng(derive_seed(self.seed, self.epoch, 0x5A))
        if self.balance_by:
            p = np.ones(n)
            for codes in self.balance_by:
                p /= np.bincount(codes)[codes]
            order = rng.choice(n, size=n, replace=True, p=p / p.sum())
        else:
            order = rng.permutation(n)
        return order if self.lengths is None else self._bucketed(order, rng)

    def _bucketed(self, order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        group = self.batch_size * self.world  # one batch on every process
        batches = []
        for start in range(0, len(order), group * BUCKET_POOL):
            pool = order[start:start + group * BUCKET_POOL]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches += [pool[i:i + group] for i in range(0, len(pool), group)]
        full = [batches[i] for i in rng.permutation(len(batches)) if len(batches[i]) == group]
        return np.concatenate(full + [b for b in batches if len(b) < group])

    def __iter__(self):
        order = self._order()
        if self.world > 1:
            pad = (-len(order)) % self.world
            order = np.concatenate([order, order[:pad]])[self.rank::self.world]
        return iter(order.tolist())

    def __len__(self) -> int:
        return int(np.ceil(self.size / self.world))
