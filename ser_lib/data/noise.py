"""Background noises made locally, mixing at a signal-to-noise ratio, and where a clean clip speaks.

The kinds of noise a microphone hears in a room: ``white``, ``pink`` (a fan, air conditioning: power
falling as 1/f), ``brown`` (rumble: 1/f², above 20 Hz), ``hum`` (mains at 50 Hz with its harmonics,
slowly wavering) and ``babble`` (other people talking: several clips summed). Augmentation adds
them to training clips; ``benchmarks/vad.py`` mixes them under speech to test the voice-activity gates.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft, rfftfreq

from .audio import rms_db

COLOURS = ("white", "pink", "brown")
KINDS = (*COLOURS, "hum", "babble")


def coloured(n: int, colour: str, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """``n`` samples of white, pink (1/f power) or brown (1/f² power, nothing below 20 Hz) noise."""
    if colour not in COLOURS:
        raise ValueError(f"unknown noise colour {colour!r}; use one of {', '.join(COLOURS)}")
    if colour == "white":
        return rng.standard_normal(n)
    # shaped at a length the FFT is fast for (a clip's own length may be a large prime: 10x slower) and
    # cut; brown noise keeps its length, as a cut would leak power into its empty band below 20 Hz
    m = n if colour == "brown" else next_fast_len(n, real=True)
    spectrum = rfft(rng.standard_normal(m))
    bins = np.maximum(np.arange(len(spectrum)), 1.0)
    if colour == "pink":
        spectrum /= np.sqrt(bins)
    else:
        spectrum /= bins
        spectrum[rfftfreq(m, 1 / sr) < 20] = 0
    return irfft(spectrum, n=m)[:n]


def hum(n: int, rng: np.random.Generator, sr: int = 16000, mains: float = 50.0, harmonics: int = 12) -> np.ndarray:
    """Mains hum: ``mains`` Hz and its harmonics (amplitude 1/k, odd ones stronger, as from a
    transformer), with a slow wavering of level, and a little pink noise underneath."""
    t = np.arange(n) / sr
    wave = np.zeros(n)
    for k in range(1, harmonics + 1):
        amplitude = (1.0 if k % 2 else 0.5) / k
        wave += amplitude * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi))
    wave *= 1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 2 * np.pi))
    floor = coloured(n, "pink", rng, sr)
    return wave / np.std(wave) + 0.05 * floor / np.std(floor)


def babble(n: int, clips: Sequence[np.ndarray], rng: np.random.Generator, talkers: int = 6) -> np.ndarray:
    """Several talkers at once: ``talkers`` of ``clips`` (other speakers), each looped from a random
    offset and scaled to the same level, summed."""
    if not clips:
        raise ValueError("babble needs clips of other speakers")
    out = np.zeros(n)
    for k in rng.choice(len(clips), size=talkers, replace=len(clips) < talkers):
        clip = np.asarray(clips[k], dtype=np.float64)
        looped = np.tile(clip, -(-n // len(clip)) + 1)
        start = int(rng.integers(0, len(clip)))
        out += looped[start:start + n] / (np.std(clip) + 1e-12)
    return out


def make(kind: str, n: int, rng: np.random.Generator, sr: int = 16000,
         clips: Sequence[np.ndarray] = ()) -> np.ndarray:
    """``n`` samples of one kind of noise (``babble`` needs ``clips`` of other speakers)."""
    if kind == "hum":
        return hum(n, rng, sr)
    if kind == "babble":
        return babble(n, clips, rng)
    return coloured(n, kind, rng, sr)


def scale_to_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float,
                 active: np.ndarray | None = None) -> np.ndarray:
    """``noise`` scaled so that the power of ``signal`` (over the ``active`` samples, when given)
    is ``snr_db`` above the noise's power."""
    part = signal if active is None else signal[active]
    power = float(np.mean(np.square(part, dtype=np.float64))) if len(part) else 0.0
    if power == 0:
        return np.zeros_like(noise)
    return noise * np.sqrt(power / 10 ** (snr_db / 10) / (np.mean(np.square(noise)) + 1e-12))


def speech_activity(clean: np.ndarray, sr: int = 16000, frame: float = 0.032, below_peak_db: float = 35.0,
                    floor_db: float = -60.0) -> np.ndarray:
    """Which ``frame``-second frames of a clean recording hold speech: level within ``below_peak_db``
    of its loudest frame and above ``floor_db`` dBFS (the reference a voice-activity gate is scored on)."""
    step = int(round(frame * sr))
    frames = len(clean) // step
    levels = np.array([rms_db(clean[i * step:(i + 1) * step]) for i in range(frames)])
    if not frames:
        return np.zeros(0, dtype=bool)
    return levels > max(levels.max() - below_peak_db, floor_db)


def speech_hops(clean: np.ndarray, hop: int, sr: int = 16000, min_speech: float = 0.1) -> np.ndarray:
    """Which ``hop``-sample hops of a clean recording hold at least ``min_speech`` seconds of
    :func:`speech_activity` (32 ms frames): the reference a stream's gate is scored against."""
    frame = 512 * sr // 16000
    active = speech_activity(clean, sr, frame=frame / sr)
    counts = [active[i * hop // frame:i * hop // frame + hop // frame].sum() for i in range(len(clean) // hop)]
    return np.array(counts, dtype=int) * frame / sr >= min_speech
