"""Data augmentation: waveform perturbations and SpecAugment, seeded, used in training only.

RAVDESS has 60 clips per actor, so models overfit the training voices quickly; augmentation is
the cheapest regulariser (notebook 04 compares runs with and without it).

* :class:`WaveAugment` works on one NumPy waveform with a NumPy ``Generator``: random gain, additive
  noise at a random signal-to-noise ratio, speed perturbation (tempo and pitch together, as in
  Kaldi recipes), a random time shift and, when asked, a random spectral tilt (another microphone).
* :class:`SpecAugment` masks bands of mel channels and stretches of frames of a batch of log-mel
  spectrograms (Park et al., 2019), with a ``torch.Generator``, and never touches padding.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from . import noise
from .audio import SAMPLE_RATE, resample


@dataclass(frozen=True)
class WaveAugment:
    """Random waveform perturbations; each is applied with probability ``p``.

    The defaults are strong (most clips perturbed, noise down to 5 dB SNR, speeds 0.85-1.15): against
    ``p=0.5``, 10-40 dB and 0.9-1.1 they raised a RAVDESS model's 4-class UAR on unheard CREMA-D
    speakers by 0.04 at a cold start (three seeds) for 0.01 less on RAVDESS itself (5 folds).
    """

    p: float = field(default=0.8, metadata={"help": "probability of each waveform perturbation"})
    gain_db: float = field(default=6.0, metadata={"help": "random gain, uniform in [-gain_db, +gain_db] dB"})
    snr_db: tuple[float, float] = field(default=(5.0, 40.0), metadata={
        "help": "white or pink noise at a signal-to-noise ratio uniform in this range (dB)"})
    speeds: tuple[float, ...] = field(default=(0.85, 0.9, 1.0, 1.1, 1.15),
                                      metadata={"help": "speed perturbation factors"})
    shift_seconds: float = field(default=0.25, metadata={"help": "random time shift of at most this (s)"})
    tilt_db: float = field(default=0.0, metadata={
        "help": "random spectral tilt, uniform in +-tilt_db dB per octave around 1 kHz (a darker or brighter "
                "microphone), also on the noisy cold-start copies; 0: off"})
    sample_rate: int = field(default=SAMPLE_RATE, metadata={"cli": False})

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A perturbed copy of ``wave`` (mono float32 at ``sample_rate``)."""
        out = np.asarray(wave, dtype=np.float32)
        if self.speeds and rng.random() < self.p:
            out = speed_perturb(out, float(rng.choice(self.speeds)), self.sample_rate)
        if self.shift_seconds and rng.random() < self.p:
            out = time_shift(out, int(rng.uniform(-1, 1) * self.shift_seconds * self.sample_rate))
        if self.snr_db and rng.random() < self.p:
            out = add_noise(out, float(rng.uniform(*self.snr_db)), rng, colour=str(rng.choice(["white", "pink"])))
        if self.tilt_db and rng.random() < self.p:
            out = spectral_tilt(out, float(rng.uniform(-self.tilt_db, self.tilt_db)), self.sample_rate)
        if self.gain_db and rng.random() < self.p:
            out = out * np.float32(10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20))
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def without_length_changes(self) -> "WaveAugment":
        """The same perturbations minus speed and shift (for audio aligned with cached features)."""
        return replace(self, speeds=(), shift_seconds=0.0)


def speed_perturb(wave: np.ndarray, factor: float, sr: int = 16_000) -> np.ndarray:
    """Play ``factor`` times faster (shorter and higher), by resampling."""
    if factor == 1.0:
        return wave
    return resample(wave, int(round(sr * factor)), sr)


def time_shift(wave: np.ndarray, samples: int) -> np.ndarray:
    """Delay by ``samples`` (positive: silence before) or advance (negative: cut the start)."""
    if samples > 0:
        return np.concatenate([np.zeros(samples, dtype=wave.dtype), wave])
    if samples < 0 and -samples < len(wave) // 2:
        return wave[-samples:]
    return wave


def noisy_copy(wave: np.ndarray, key: str, snr_db: tuple[float, float], seed: int = 0,
               tilt_db: float = 0.0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The same noisy copy of ``wave`` every time: white or pink noise at an SNR drawn from ``snr_db``
    (and a spectral tilt drawn from +-``tilt_db`` dB per octave, when given), drawn with ``seed`` and
    ``key`` (say the clip's path)."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    out = add_noise(wave, float(rng.uniform(*snr_db)), rng, colour=str(rng.choice(["white", "pink"])))
    if tilt_db:
        out = np.clip(spectral_tilt(out, float(rng.uniform(-tilt_db, tilt_db)), sr), -1.0, 1.0)
    return out


def spectral_tilt(wave: np.ndarray, db_per_octave: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``wave`` through a filter of ``db_per_octave`` dB per octave around 1 kHz (negative: darker),
    flat below 50 Hz; the level at 1 kHz is kept. Float64 stays float64, anything else becomes float32."""
    from scipy.fft import irfft, next_fast_len, rfft

    wave = np.asarray(wave)
    dtype = np.result_type(wave.dtype, np.float32)
    if not db_per_octave or not len(wave):
        return wave.astype(dtype, copy=False)
    size = next_fast_len(len(wave), real=True)  # zero-padded: a clip's length may be a large prime
    freqs = np.maximum(np.fft.rfftfreq(size, 1 / sr), 50.0)
    spectrum = rfft(wave.astype(np.float64), size) * 10 ** (db_per_octave * np.log2(freqs / 1000.0) / 20)
    return irfft(spectrum, size)[:len(wave)].astype(dtype)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "white") -> np.ndarray:
    """Add white, pink or brown noise at ``snr_db`` relative to the signal's power."""
    if not np.any(wave):
        return wave
    return (wave + noise.scale_to_snr(wave, noise.coloured(len(wave), colour, rng), snr_db)).astype(np.float32)


@dataclass(frozen=True)
class SpecAugment:
    """Frequency and time masking of ``(batch, n_mels, frames)`` log-mel features (in place of a copy).

    Masked values are set to 0, the mean of normalised features. ``lengths`` restricts time masks
    to each clip's own frames.
    """

    freq_masks: int = field(default=2, metadata={"help": "SpecAugment: frequency masks per clip"})
    freq_width: int = field(default=8, metadata={"help": "SpecAugment: mel bands per frequency mask, at most"})
    time_masks: int = field(default=2, metadata={"help": "SpecAugment: time masks per clip"})
    time_width: float = field(default=0.05, metadata={"help": "SpecAugment: fraction of the clip per time mask, at most"})

    def __call__(self, spec, lengths=None, generator=None):
        import torch

        out = spec.clone()
        batch, n_mels, frames = out.shape
        device = out.device
        if lengths is None:
            lengths = torch.full((batch,), frames, device=device)
        for b in range(batch):
            for _ in range(self.freq_masks):
                width = int(torch.randint(0, self.freq_width + 1, (1,), generator=generator))
                start = int(torch.randint(0, max(1, n_mels - width), (1,), generator=generator))
                out[b, start:start + width, :] = 0
            n = int(lengths[b])
            max_width = max(1, int(self.time_width * n))
            for _ in range(self.time_masks):
                width = int(torch.randint(0, max_width + 1, (1,), generator=generator))
                start = int(torch.randint(0, max(1, n - width), (1,), generator=generator))
                out[b, :, start:start + width] = 0
        return out
