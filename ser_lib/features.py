"""Acoustic features: log-mel spectrograms for the model, MFCC and prosody for exploration.

Notebook 02 (feature exploration) shows each of them per emotion. :func:`clip_statistics` turns a
clip into the fixed-length vector of a classic baseline (MFCC, pitch and energy statistics), and
:class:`FeatureCache` keeps expensive per-file results on disk, keyed by file content and
parameters.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .audio import SAMPLE_RATE


@dataclass(frozen=True)
class MelConfig:
    """Log-mel parameters: 25 ms windows every 10 ms, 64 bands up to 8 kHz."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 20.0
    f_max: float = 8000.0


@lru_cache(maxsize=8)
def _mel_transform(config: MelConfig):
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
        n_mels=config.n_mels, f_min=config.f_min, f_max=min(config.f_max, config.sample_rate / 2),
        power=2.0, center=True,
    )


def log_mel(wave, config: MelConfig = MelConfig()):
    """Log-mel spectrogram (dB-like natural log of power + 1e-6).

    Accepts a NumPy array or torch tensor of shape ``(samples,)`` or ``(batch, samples)`` and returns
    the same kind with shape ``(..., n_mels, frames)``.
    """
    import torch

    as_numpy = isinstance(wave, np.ndarray)
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)) if as_numpy else wave
    transform = _mel_transform(config).to(x.device)
    out = torch.log(transform(x.float()) + 1e-6)
    return out.numpy() if as_numpy else out


def mfcc(wave: np.ndarray, sr: int = SAMPLE_RATE, n_mfcc: int = 20) -> np.ndarray:
    """MFCCs ``(n_mfcc, frames)`` with the same 25 ms / 10 ms framing as :func:`log_mel`."""
    import librosa

    return librosa.feature.mfcc(y=wave, sr=sr, n_mfcc=n_mfcc, n_fft=int(0.025 * sr),
                                hop_length=int(0.01 * sr), n_mels=64)


@dataclass
class Prosody:
    """Frame-wise pitch and energy: ``f0`` in Hz (NaN where unvoiced), ``rms_db`` in dBFS."""

    times: np.ndarray
    f0: np.ndarray
    voiced: np.ndarray
    rms_db: np.ndarray


def prosody(wave: np.ndarray, sr: int = SAMPLE_RATE, fmin: float = 60.0, fmax: float = 500.0,
            method: str = "yin") -> Prosody:
    """Pitch and energy contours every 10 ms.

    ``method="yin"`` is fast (about 20 ms per clip) and marks frames voiced when they are loud
    and periodic-looking (low zero-crossing rate); ``"pyin"`` is librosa's probabilistic YIN,
    slower but with its own voicing decision, for figures.
    """
    import librosa

    hop = int(0.01 * sr)
    frame = 1024 if sr >= 16000 else 512
    rms = librosa.feature.rms(y=wave, frame_length=frame, hop_length=hop, center=True)[0]
    rms_db = 20 * np.log10(rms + 1e-9)
    if method == "pyin":
        f0, voiced, _ = librosa.pyin(wave, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame, hop_length=hop)
    elif method == "yin":
        f0 = librosa.yin(wave, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame, hop_length=hop)
        zcr = librosa.feature.zero_crossing_rate(wave, frame_length=frame, hop_length=hop)[0]
        n = min(len(f0), len(rms_db), len(zcr))
        f0, zcr = f0[:n], zcr[:n]
        voiced = (rms_db[:n] > rms_db.max() - 30) & (zcr < 0.12)
    else:
        raise ValueError(f"unknown pitch method {method!r}; use 'yin' or 'pyin'")
    n = min(len(f0), len(rms_db))
    f0 = np.where(voiced[:n], f0[:n], np.nan)
    times = np.arange(n) * hop / sr
    return Prosody(times=times, f0=f0, voiced=np.asarray(voiced[:n], dtype=bool), rms_db=rms_db[:n])


def active_frames(rms_db: np.ndarray, range_db: float = 35.0, above_floor_db: float = 12.0) -> np.ndarray:
    """Frames that carry speech: within ``range_db`` of the loudest frame and clearly above the
    noise floor (the 10th percentile level)."""
    floor = np.percentile(rms_db, 10)
    active = rms_db > max(rms_db.max() - range_db, floor + above_floor_db)
    return active if active.any() else rms_db >= rms_db.max() - range_db  # a flat signal: all of it


def clip_statistics(wave: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """Clip-level descriptors of a classic SER baseline: MFCC, pitch, energy, timing and spectral shape."""
    import librosa

    feats: dict[str, float] = {}
    m = mfcc(wave, sr, n_mfcc=13)
    d = librosa.feature.delta(m)
    for i in range(m.shape[0]):
        feats[f"mfcc{i}_mean"] = float(m[i].mean())
        feats[f"mfcc{i}_std"] = float(m[i].std())
        feats[f"dmfcc{i}_std"] = float(d[i].std())

    p = prosody(wave, sr)
    voiced_f0 = p.f0[p.voiced]
    if len(voiced_f0) >= 3:
        st = 12 * np.log2(voiced_f0 / 100.0)
        t = p.times[p.voiced]
        feats.update(
            f0_mean=float(st.mean()), f0_std=float(st.std()),
            f0_range=float(np.percentile(st, 95) - np.percentile(st, 5)),
            f0_slope=float(np.polyfit(t - t.mean(), st, 1)[0]),
            f0_final=float(st[-max(3, len(st) // 10):].mean() - st.mean()),
            jitter_proxy=float(np.median(np.abs(np.diff(st)))),
        )
    else:
        feats.update(f0_mean=0.0, f0_std=0.0, f0_range=0.0, f0_slope=0.0, f0_final=0.0, jitter_proxy=0.0)
    active = active_frames(p.rms_db)
    level = p.rms_db[active]
    feats.update(
        rms_mean=float(level.mean()), rms_std=float(level.std()), rms_max=float(p.rms_db.max()),
        voiced_fraction=float(p.voiced.sum() / max(1, active.sum())),
        active_seconds=float(active.sum() * 0.01),
    )
    spec = np.abs(librosa.stft(wave, n_fft=512, hop_length=int(0.01 * sr))) ** 2
    freqs = librosa.fft_frequencies(sr=sr, n_fft=512)
    frames = spec[:, : len(active)][:, active[: spec.shape[1]]]
    low, high = frames[freqs < 1000].sum(), frames[freqs >= 1000].sum()
    feats["alpha_ratio_db"] = float(10 * np.log10((high + 1e-12) / (low + 1e-12)))
    centroid = (freqs[:, None] * frames).sum(0) / (frames.sum(0) + 1e-12)
    feats["centroid_mean"] = float(centroid.mean()) if centroid.size else 0.0
    return feats


class FeatureCache:
    """Per-file results on disk, keyed by the file's content hash, a name and parameters.

    ``cache.get(path, "stats", params, compute)`` returns the stored value or calls ``compute()``
    and stores its result (a NumPy array or a JSON-able object).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def file_digest(path: str | Path) -> str:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def key(self, path: str | Path, name: str, params: dict | object | None = None) -> str:
        if params is not None and hasattr(params, "__dataclass_fields__"):
            params = asdict(params)
        blob = json.dumps({"file": self.file_digest(path), "name": name, "params": params},
                          sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()

    def _files(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.npy", self.folder / f"{key}.json"

    def lookup(self, key: str):
        """The stored value for ``key``, or ``None``."""
        npy, js = self._files(key)
        if npy.exists():
            return np.load(npy)
        if js.exists():
            return json.loads(js.read_text())
        return None

    def put(self, key: str, value) -> None:
        """Store ``value`` atomically (a NumPy array as .npy, anything else as JSON)."""
        npy, js = self._files(key)
        target = npy if isinstance(value, np.ndarray) else js
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        if isinstance(value, np.ndarray):
            with open(tmp, "wb") as f:
                np.save(f, value)
        else:
            tmp.write_text(json.dumps(value))
        tmp.replace(target)

    def get_many(self, paths_: Sequence[str | Path], name: str, params, compute: Callable[[object], object],
                 inputs: Sequence[object], workers: int | None = None) -> list:
        """The values of many files: stored ones are read, missing ones computed in worker processes
        (``compute(inputs[i])``, a module-level function) and stored."""
        keys = [self.key(p, name, params) for p in paths_]
        values = [self.lookup(k) for k in keys]
        missing = [i for i, value in enumerate(values) if value is None]
        if missing:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for i, value in zip(missing, pool.map(compute, [inputs[i] for i in missing], chunksize=8)):
                    values[i] = value
                    self.put(keys[i], value)
        return values

    def get(self, path: str | Path, name: str, params, compute: Callable[[], object]):
        key = self.key(path, name, params)
        value = self.lookup(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value
