"""Reading and shaping audio: mono float32 at one sample rate, whatever the file holds.

Reading goes through ``soundfile`` (libsndfile: wav, flac, aiff, ogg, mp3 at any rate and channel
count); resampling through ``soxr``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import AudioError

SAMPLE_RATE = 16_000
#: What soundfile (libsndfile 1.1 or later) reads; where one recording is there twice, the first format is kept.
SUPPORTED_SUFFIXES = (".wav", ".flac", ".aiff", ".aif", ".ogg", ".mp3")


def load(path: str | Path, sr: int | None = SAMPLE_RATE, *, allow_silent: bool = False) -> np.ndarray:
    """Read ``path`` as a mono float32 array at ``sr`` Hz (``None`` keeps the file's rate).

    Multi-channel files are averaged to mono. Raises :class:`AudioError` for a missing,
    unsupported, corrupt, empty or (unless ``allow_silent``) all-zero file.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file {path} does not exist")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise AudioError(
            f"{path}: unsupported audio format {path.suffix or '(no suffix)'}; "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)} (convert with e.g. `ffmpeg -i in{path.suffix} out.wav`)"
        )
    if path.stat().st_size == 0:
        raise AudioError(f"{path} is empty (zero bytes)")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile reports corrupt files with several exception types
        raise AudioError(f"{path} cannot be read as audio; the file may be corrupt ({err})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path} holds no audio samples")
    wave = to_mono(data)
    if not allow_silent and not np.any(wave):
        raise AudioError(f"{path} is digital silence (every sample is zero)")
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{path} contains NaN or infinite samples")
    if sr is not None and file_sr != sr:
        wave = resample(wave, file_sr, sr)
    return wave


def file_rate(path: str | Path) -> int:
    """The sample rate stored in an audio file's header."""
    return int(sf.info(str(path)).samplerate)


def truncated_wav(info) -> tuple[float, float] | None:
    """``(seconds the header announces, seconds the file holds)`` for a WAV whose data chunk was cut
    short (an interrupted download or copy), else ``None``; ``info`` is a ``soundfile.info`` result."""
    match = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", info.extra_info or "", re.MULTILINE)
    if not match or not info.frames:
        return None
    declared, present = int(match.group(1)), int(match.group(2))
    if declared <= present:
        return None
    seconds = info.frames / info.samplerate
    return seconds * declared / present, seconds


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average channels of a ``(frames, channels)`` array (a 1-D array is returned as is)."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        return data
    return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0].copy()


def resample(wave: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
    """Band-limited resampling of a mono float32 array (soxr, "high quality": milliseconds per clip from
    any rate, 24,414 Hz TESS and 44.1 kHz microphones included)."""
    if orig_sr == sr:
        return np.asarray(wave, dtype=np.float32)
    if orig_sr <= 0 or sr <= 0:
        raise AudioError(f"sample rates must be positive, got {orig_sr} -> {sr}")
    import soxr

    return soxr.resample(np.ascontiguousarray(wave, dtype=np.float32), int(orig_sr), int(sr), quality="HQ")


def pad_or_crop(wave: np.ndarray, length: int, *, mode: str = "center",
                rng: np.random.Generator | None = None) -> np.ndarray:
    """Return exactly ``length`` samples: zero-pad at the end, or crop (``center``, ``start`` or ``random``)."""
    n = len(wave)
    if n == length:
        return wave
    if n < length:
        return np.pad(wave, (0, length - n))
    if mode == "start":
        start = 0
    elif mode == "center":
        start = (n - length) // 2
    elif mode == "random":
        start = int((rng or np.random.default_rng()).integers(0, n - length + 1))
    else:
        raise ValueError(f"unknown crop mode {mode!r}")
    return wave[start:start + length]


#: :func:`trim_silence` also cuts what is less than this (dB) above a clip's noise floor, as
#: :func:`~ser_lib.data.features.active_frames` counts speech.
TRIM_FLOOR_DB = 12.0


def frame_levels(wave: np.ndarray, sr: int = SAMPLE_RATE, frame_ms: float = 25.0) -> np.ndarray:
    """The level (dBFS) of each whole ``frame_ms`` frame of ``wave``."""
    frame = max(1, int(sr * frame_ms / 1000))
    n_frames = len(wave) // frame
    frames = wave[: n_frames * frame].reshape(n_frames, frame)
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def trim_silence(wave: np.ndarray, sr: int = SAMPLE_RATE, top_db: float = 40.0, floor_db: float | None = TRIM_FLOOR_DB,
                 frame_ms: float = 25.0, margin_ms: float = 100.0) -> np.ndarray:
    """Cut leading and trailing frames quieter than ``top_db`` below the loudest frame and, with
    ``floor_db``, less than ``floor_db`` above the noise floor (the 10th percentile frame level).

    RAVDESS clips start and end with about a second of room noise, 60 dB below the speech; trimming
    it gives the model more speech per crop. A noisier recording's floor can sit 15-25 dB below its
    speech (CREMA-D), where ``top_db`` alone trims nothing and half the clip is room noise:
    ``floor_db`` trims that too. ``margin_ms`` of context is kept on both sides.
    """
    frame = max(1, int(sr * frame_ms / 1000))
    levels = frame_levels(wave, sr, frame_ms)
    if len(levels) < 2:
        return wave
    threshold = levels.max() - top_db
    if floor_db is not None:
        threshold = max(threshold, float(np.percentile(levels, 10)) + floor_db)
    loud = np.flatnonzero(levels > threshold)
    if len(loud) == 0:  # a steady signal: nothing stands out from its own floor
        loud = np.flatnonzero(levels > levels.max() - top_db)
    margin = int(sr * margin_ms / 1000)
    start = max(0, loud[0] * frame - margin)
    end = min(len(wave), (loud[-1] + 1) * frame + margin)
    return wave[start:end]


def peak_normalize(wave: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Scale so the largest absolute sample is ``peak`` (silence is returned unchanged)."""
    top = float(np.max(np.abs(wave))) if len(wave) else 0.0
    return wave if top == 0 else (wave * (peak / top)).astype(np.float32)


def rms_db(wave: np.ndarray) -> float:
    """Root-mean-square level in dBFS."""
    return float(10 * np.log10(np.mean(np.square(wave, dtype=np.float64)) + 1e-12))


def loudness_normalize(wave: np.ndarray, target_db: float = -25.0) -> np.ndarray:
    """Scale to an RMS level of ``target_db`` dBFS, limited so no sample exceeds 1."""
    if not np.any(wave):
        return wave
    gain = 10 ** ((target_db - rms_db(wave)) / 20)
    gain = min(gain, 1.0 / float(np.max(np.abs(wave))))
    return (wave * gain).astype(np.float32)


@dataclass(frozen=True)
class AudioSettings:
    """How clips are prepared for a model; saved in its checkpoint, so inference prepares alike."""

    sample_rate: int = SAMPLE_RATE
    trim_db: float | None = 40.0   # trim leading/trailing silence quieter than this below the peak
    max_seconds: float = 3.0       # training crops (random) and evaluation crops (centre) at most this long
    trim_floor_db: float | None = TRIM_FLOOR_DB  # and less than this above the noise floor (None: peak rule only)

    @classmethod
    def from_dict(cls, data: dict) -> "AudioSettings":
        """Settings as saved with a model; models saved before ``trim_floor_db`` trimmed by the peak only."""
        return cls(**{"trim_floor_db": None, **data})

    @property
    def max_samples(self) -> int:
        return int(self.max_seconds * self.sample_rate)

    def cache_params(self) -> dict:
        """What of these settings changes a prepared clip (keys of cached features)."""
        params = {"sample_rate": self.sample_rate, "trim_db": self.trim_db, "max_seconds": self.max_seconds}
        return params if self.trim_floor_db is None else {**params, "trim_floor_db": self.trim_floor_db}

    def prepare(self, wave: np.ndarray) -> np.ndarray:
        """Trim silence (the crop happens later)."""
        return trim_silence(wave, self.sample_rate, self.trim_db, self.trim_floor_db) if self.trim_db else wave

    def center_crop(self, wave: np.ndarray) -> np.ndarray:
        """At most ``max_seconds`` from the middle of a prepared clip (evaluation and inference)."""
        return pad_or_crop(wave, min(len(wave), self.max_samples), mode="center")


def save(path: str | Path, wave: np.ndarray, sr: int = SAMPLE_RATE) -> Path:
    """Write a mono float array as 16-bit PCM (wav/flac by suffix), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(wave, -1.0, 1.0), sr, subtype="PCM_16")
    return path
