"""Acoustic features: the log-mel front end, MFCC, prosody, and the clip descriptors.

:class:`LogMel` is the one log-mel spectrogram of ser_lib: the model's spectrogram branch, the input
statistics (:mod:`ser_lib.model.normalizer`) and the figures of notebook 02 all compute it. Notebook 02
shows each feature per emotion. :func:`clip_statistics` turns a clip into the fixed-length vector of
a classic baseline (MFCC, pitch, energy, timing, spectral balance); computed on the centre crop a
model sees, the same vector is the model's clip descriptors (:func:`descriptor_matrix`).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .. import paths
from .audio import SAMPLE_RATE, AudioSettings
from .cache import FeatureCache


@dataclass(frozen=True)
class MelSettings:
    """Log-mel parameters: 25 ms windows every 10 ms, ``n_mels`` bands from 20 Hz to half the rate."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 20.0


def mel_band_hz(settings: MelSettings = MelSettings()) -> np.ndarray:
    """Centre frequency (Hz) of each mel band of the front end (the HTK mel scale torchaudio uses)."""
    to_mel = lambda hz: 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)  # noqa: E731
    points = np.linspace(to_mel(settings.f_min), to_mel(settings.sample_rate / 2), settings.n_mels + 2)
    return 700.0 * (10 ** (points[1:-1] / 2595.0) - 1.0)


class LogMel(torch.nn.Module):
    """``log(mel power + 1e-6)`` of uncentred STFT frames, in float32 even under autocast.

    Uncentred frames never look past a clip's end, so zero padding in a batch cannot change a clip's
    frames (:meth:`frame_lengths` says how many frames are real).
    """

    def __init__(self, settings: MelSettings = MelSettings()):
        super().__init__()
        import torchaudio

        self.settings = settings
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=settings.sample_rate, n_fft=settings.n_fft, hop_length=settings.hop_length,
            n_mels=settings.n_mels, f_min=settings.f_min, f_max=settings.sample_rate / 2, center=False, power=2.0,
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(..., samples)`` -> ``(..., n_mels, frames)``."""
        with torch.autocast(device_type=wave.device.type, enabled=False):
            return torch.log(self.mel(wave.float()) + 1e-6)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames of clips of ``lengths`` samples."""
        return torch.clamp((lengths - self.settings.n_fft) // self.settings.hop_length + 1, min=0)


@lru_cache(maxsize=8)
def _front_end(settings: MelSettings) -> LogMel:
    return LogMel(settings)


def log_mel(wave, settings: MelSettings = MelSettings()):
    """The :class:`LogMel` of a NumPy array or a CPU tensor ``(samples,)`` or ``(batch, samples)``,
    returned as the same kind with shape ``(..., n_mels, frames)``."""
    as_numpy = isinstance(wave, np.ndarray)
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)) if as_numpy else wave
    with torch.no_grad():
        out = _front_end(settings)(x)
    return out.numpy() if as_numpy else out


def mfcc(wave: np.ndarray, sr: int = SAMPLE_RATE, n_mfcc: int = 20) -> np.ndarray:
    """MFCCs ``(n_mfcc, frames)`` with 25 ms windows every 10 ms, as :class:`LogMel`."""
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
            method: str = "yin", voicing: str = "periodicity") -> Prosody:
    """Pitch and energy contours every 10 ms.

    ``method="yin"`` is fast (:func:`yin`, about 3 ms per 3 s); a frame is voiced when it is within 35 dB of the
    loudest and its waveform repeats at the pitch period (``voicing="periodicity"``, see
    :func:`periodicity`), or, as descriptors of version 1 did, when it is within 30 dB and has a low
    zero-crossing rate (``voicing="zcr"``, which misses loud, bright or noisy voiced speech).
    ``"pyin"`` is librosa's probabilistic YIN, slower but with its own voicing decision, for figures.
    """
    import librosa

    hop = int(0.01 * sr)
    frame = 1024 if sr >= 16000 else 512
    rms = librosa.feature.rms(y=wave, frame_length=frame, hop_length=hop, center=True)[0]
    rms_db = 20 * np.log10(rms + 1e-9)
    if method == "pyin":
        f0, voiced, _ = librosa.pyin(wave, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame, hop_length=hop)
    elif method == "yin":
        f0 = yin(wave, sr, fmin, fmax, frame, hop)
        n = min(len(f0), len(rms_db))
        f0 = f0[:n]
        if voicing == "periodicity":
            voiced = (rms_db[:n] > rms_db.max() - 35) & (periodicity(wave, f0, sr, frame, hop) >= VOICING_THRESHOLD)
        elif voicing == "zcr":
            zcr = librosa.feature.zero_crossing_rate(wave, frame_length=frame, hop_length=hop)[0]
            n = min(n, len(zcr))
            f0 = f0[:n]
            voiced = (rms_db[:n] > rms_db.max() - 30) & (zcr[:n] < 0.12)
        else:
            raise ValueError(f"unknown voicing rule {voicing!r}; use 'periodicity' or 'zcr'")
    else:
        raise ValueError(f"unknown pitch method {method!r}; use 'yin' or 'pyin'")
    n = min(len(f0), len(rms_db), len(voiced))
    f0 = np.where(voiced[:n], f0[:n], np.nan)
    times = np.arange(n) * hop / sr
    return Prosody(times=times, f0=f0, voiced=np.asarray(voiced[:n], dtype=bool), rms_db=rms_db[:n])


def yin(wave: np.ndarray, sr: int, fmin: float, fmax: float, frame: int, hop: int,
        trough_threshold: float = 0.1) -> np.ndarray:
    """YIN pitch (Hz) of centred frames: the same numbers as ``librosa.yin`` (0.11, tested equal), in
    about 60 % of its time (the live stream describes its window on every hop), because every step
    runs along contiguous frames and the parabolic refinement is computed at the chosen lag only.
    """
    import librosa
    from scipy.fft import next_fast_len

    librosa.util.valid_audio(wave)
    fft = librosa.get_fftlib()
    rows = librosa.util.frame(np.pad(wave, frame // 2), frame_length=frame, hop_length=hop).T
    min_lag, max_lag = int(np.floor(sr / fmax)), min(int(np.ceil(sr / fmin)), frame - 1)
    n_fft = next_fast_len(2 * frame - 1, real=True)
    acf = fft.irfft(librosa.util.abs2(fft.rfft(rows, n=n_fft, axis=-1)), n=n_fft, axis=-1)[:, : max_lag + 1]
    # difference function d(k) = 2 (r(0) - r(k)) - sum_{m<k} y(m)^2, with librosa's zero energy term at k = 1
    energy = np.cumsum(np.square(rows[:, :max_lag]), axis=-1)
    energy[:, 0] = 0
    diff = np.zeros_like(acf)
    diff[:, 1:] = 2 * (acf[:, :1] - acf[:, 1:]) - energy
    mean = (np.cumsum(diff[:, 1:], axis=-1) / np.arange(1, max_lag + 1))[:, min_lag - 1:]
    cmnd = diff[:, min_lag:] / (mean + np.finfo(mean.dtype).tiny)  # cumulative mean normalised difference
    trough = np.zeros(cmnd.shape, dtype=bool)
    trough[:, 1:-1] = (cmnd[:, 1:-1] < cmnd[:, :-2]) & (cmnd[:, 1:-1] <= cmnd[:, 2:])
    trough[:, 0], trough[:, -1] = cmnd[:, 0] < cmnd[:, 1], cmnd[:, -1] < cmnd[:, -2]
    deep = trough & (cmnd < trough_threshold)  # the first deep trough, else the global minimum
    lag = np.where(deep.any(axis=1), deep.argmax(axis=1), cmnd.argmin(axis=1))
    frames = np.arange(len(lag))
    at = np.clip(lag, 1, cmnd.shape[1] - 2)
    before, here, after = cmnd[frames, at - 1], cmnd[frames, at], cmnd[frames, at + 1]
    a, b = after + before - 2 * here, (after - before) / 2
    inner = (lag > 0) & (lag < cmnd.shape[1] - 1) & (np.abs(b) < np.abs(a))
    shift = np.divide(-b, a, out=np.zeros_like(b), where=inner)  # parabolic refinement, 0 at the ends
    return sr / (min_lag + lag + shift)


#: A frame is voiced when its normalised autocorrelation at the pitch period reaches this.
VOICING_THRESHOLD = 0.5


def periodicity(wave: np.ndarray, f0: np.ndarray, sr: int, frame: int, hop: int) -> np.ndarray:
    """How well each frame repeats at its pitch period ``1 / f0``: the normalised autocorrelation at
    that lag (the better of the two whole-sample lags around it), from 0 (noise) to 1 (a perfectly
    periodic wave), of the signal below 1 kHz, where the fundamental and the strong harmonics are.
    Frames are centred as librosa's.

    Unlike the zero-crossing rate, it does not depend on the level, the spectral tilt or a steady
    noise floor of the recording, only on whether the voice repeats itself.
    """
    import librosa
    from scipy.signal import sosfiltfilt

    low = np.pad(sosfiltfilt(_lowpass_1khz(sr), np.asarray(wave, dtype=np.float64)), frame // 2)
    head = librosa.util.frame(low, frame_length=frame, hop_length=hop)[: frame // 2, : len(f0)]
    width, n = head.shape
    period = sr / np.clip(np.nan_to_num(f0[:n], nan=sr / 2), 1.0, None)
    head_energy = (head ** 2).sum(0)
    offsets = np.arange(width)[:, None] + np.arange(n) * hop  # frame t's samples, as (sample, frame)
    best = np.zeros(n)
    for lags in (np.floor(period), np.ceil(period)):
        lags = np.clip(lags.astype(int), 1, frame - width)
        tail = low[offsets + lags]
        energy = np.sqrt(head_energy * (tail ** 2).sum(0))
        best = np.maximum(best, np.where(energy > 0, (head * tail).sum(0) / np.maximum(energy, 1e-12), 0.0))
    return best


@lru_cache(maxsize=4)
def _lowpass_1khz(sr: int) -> np.ndarray:
    """Second-order sections of the 4th-order Butterworth low-pass at 1 kHz :func:`periodicity` uses."""
    from scipy.signal import butter

    return butter(4, 1000.0, fs=sr, output="sos")


def subtract_noise_floor(wave: np.ndarray, over: float = 1.5, gain_floor: float = 0.03,
                         quiet_share: float = 0.1) -> np.ndarray:
    """``wave`` with its steady noise floor taken out by spectral subtraction: the noise spectrum is
    the mean power of the quietest ``quiet_share`` of its frames; ``over`` times it comes off the
    power around each bin (3 bins by 5 frames, which steadies the estimate and keeps the residual
    "musical" noise low), and no bin loses more than ``1 - gain_floor`` of its power. A clean
    recording passes almost unchanged; a noisier room's pauses fall about 10 dB back towards silence.
    Room noise fills the pauses and flattens the level and MFCC contours: it moves the descriptors of
    a noisier corpus (CREMA-D against RAVDESS) by 1.0 standard deviations on average, and 0.55 after
    this subtraction (yet models trained on those descriptors scored lower on CREMA-D; see README).
    """
    import librosa
    from scipy.ndimage import uniform_filter

    n_fft, hop = 512, 128
    if len(wave) < n_fft:
        return wave
    spec = librosa.stft(np.asarray(wave, dtype=np.float32), n_fft=n_fft, hop_length=hop)
    power = np.abs(spec) ** 2
    energy = power.sum(0)
    noise = power[:, energy <= np.percentile(energy, 100 * quiet_share)].mean(1, keepdims=True)
    around = uniform_filter(power, size=(3, 5), mode="nearest")
    gain = np.sqrt(np.maximum(1.0 - over * noise / np.maximum(around, 1e-20), gain_floor))
    return librosa.istft(spec * gain, hop_length=hop, length=len(wave)).astype(np.float32)


def active_frames(rms_db: np.ndarray, range_db: float = 35.0, above_floor_db: float = 12.0) -> np.ndarray:
    """Frames that carry speech: within ``range_db`` of the loudest frame and clearly above the
    noise floor (the 10th percentile level)."""
    floor = np.percentile(rms_db, 10)
    active = rms_db > max(rms_db.max() - range_db, floor + above_floor_db)
    return active if active.any() else rms_db >= rms_db.max() - range_db  # a flat signal: all of it


def clip_statistics(wave: np.ndarray, sr: int = SAMPLE_RATE, version: int = 2) -> dict[str, float]:
    """Clip-level descriptors of a classic SER baseline: MFCC, pitch, energy, timing and spectral shape.

    Version 2 (the default) describes the speech only: MFCC and spectral statistics over the frames
    that are loud or voiced (:func:`active_frames`, :func:`periodicity`), never the pauses and noise
    floor between words, so a quieter or noisier room changes them less; the voiced fraction is a
    fraction of those frames. Version 1 (zero-crossing voicing, MFCC over every frame) is kept so
    models trained with it predict as they were trained. Version 3 is version 2 of the clip with its
    noise floor subtracted (:func:`subtract_noise_floor`).
    """
    import librosa

    if version not in DESCRIPTOR_VERSIONS:
        raise ValueError(f"unknown descriptor version {version}; this ser_lib computes {DESCRIPTOR_VERSIONS}")
    if version == 3:
        wave, version = subtract_noise_floor(wave), 2
    p = prosody(wave, sr, voicing="zcr" if version == 1 else "periodicity")
    active = active_frames(p.rms_db)
    speech = active if version == 1 else active | p.voiced
    feats: dict[str, float] = {}
    m = mfcc(wave, sr, n_mfcc=13)
    d = librosa.feature.delta(m)
    if version >= 2:
        keep = np.zeros(m.shape[1], dtype=bool)
        keep[: min(len(speech), m.shape[1])] = speech[: m.shape[1]]
        m, d = (m[:, keep], d[:, keep]) if keep.sum() >= 3 else (m, d)
    for i in range(m.shape[0]):
        feats[f"mfcc{i}_mean"] = float(m[i].mean())
        feats[f"mfcc{i}_std"] = float(m[i].std())
        feats[f"dmfcc{i}_std"] = float(d[i].std())

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
    level = p.rms_db[active]
    voiced = p.voiced if version == 1 else p.voiced & speech
    feats.update(
        rms_mean=float(level.mean()), rms_std=float(level.std()), rms_max=float(p.rms_db.max()),
        voiced_fraction=float(voiced.sum() / max(1, speech.sum())),
        active_seconds=float(active.sum() * 0.01),
    )
    spec = np.abs(librosa.stft(wave, n_fft=512, hop_length=int(0.01 * sr))) ** 2
    freqs = librosa.fft_frequencies(sr=sr, n_fft=512)
    frames = spec[:, : len(speech)][:, speech[: spec.shape[1]]]
    # energy above 1 kHz over energy below it (eGeMAPS's alpha ratio: 50-1000 Hz over 1-5 kHz, the other way up)
    low, high = frames[freqs < 1000].sum(), frames[freqs >= 1000].sum()
    feats["alpha_ratio_db"] = float(10 * np.log10((high + 1e-12) / (low + 1e-12)))
    centroid = (freqs[:, None] * frames).sum(0) / (frames.sum(0) + 1e-12)
    feats["centroid_mean"] = float(centroid.mean()) if centroid.size else 0.0
    return feats


# ----------------------------------------------------------------------------------------------
# Clip descriptors: the model's view of clip_statistics
# ----------------------------------------------------------------------------------------------
#: The descriptors new models are trained with (see :func:`clip_statistics`); a checkpoint stores its own.
DESCRIPTOR_VERSION = 2
#: Every version :func:`clip_statistics` computes (checkpoints name theirs).
DESCRIPTOR_VERSIONS = (1, 2, 3)
#: The versions a new run may train with (version 1 is kept for the checkpoints that used it).
TRAINABLE_DESCRIPTOR_VERSIONS = DESCRIPTOR_VERSIONS[1:]
#: Which descriptors feed the model: ``ser`` (this module's :func:`clip_statistics`), ``egemaps``
#: (openSMILE's 88 eGeMAPS functionals, :mod:`.egemaps`), ``voice`` (a pretrained voice encoder's layer
#: statistics, :mod:`.voice`), or the project's own beside one of the others.
DESCRIPTOR_SETS = ("ser", "egemaps", "ser+egemaps", "voice", "ser+voice")


def part_version(part: str) -> str:
    """The version of an external descriptor part (``egemaps``: openSMILE's; ``voice``: the encoder's weights)."""
    if part == "voice":
        from . import voice

        return voice.version()
    if part == "egemaps":
        from . import egemaps

        return egemaps.version()
    raise ValueError(f"{part!r} is not an external descriptor part (egemaps, voice)")


def _parts(descriptor_set: str) -> list[str]:
    if descriptor_set not in DESCRIPTOR_SETS:
        raise ValueError(f"unknown descriptor set {descriptor_set!r}; use one of {', '.join(DESCRIPTOR_SETS)}")
    return descriptor_set.split("+")


@lru_cache(maxsize=None)
def descriptor_names(descriptor_set: str = "ser") -> tuple[str, ...]:
    """Names of the clip descriptors, in the model's input order (the same in every version)."""
    names: tuple[str, ...] = ()
    for part in _parts(descriptor_set):
        if part == "ser":
            names += tuple(clip_statistics(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)))
        elif part == "voice":
            from . import voice

            names += voice.names()
        else:
            from . import egemaps

            names += tuple(f"egemaps_{name}" for name in egemaps.names())
    return names


@lru_cache(maxsize=1)
def _voice_thread(pid: int) -> ThreadPoolExecutor:
    """A thread for the voice encoder, one per process (a forked child gets its own)."""
    return ThreadPoolExecutor(1, thread_name_prefix=f"voice-encoder-{pid}")


def _describe(wave: np.ndarray, version: int = DESCRIPTOR_VERSION, descriptor_set: str = "ser",
              sr: int = SAMPLE_RATE) -> list[float]:
    from . import voice

    parts = _parts(descriptor_set)
    pending = None
    if "voice" in parts and len(parts) > 1:  # the encoder's LSTM leaves Python's lock: it runs beside the rest
        pending = _voice_thread(os.getpid()).submit(voice.statistics, wave, sr)
    values: list[float] = []
    for part in parts:
        if part == "ser":
            values += list(clip_statistics(wave, sr, version=version).values())
        elif part == "voice":
            values += (pending.result() if pending else voice.statistics(wave, sr)).tolist()
        else:
            from . import egemaps

            values += egemaps.functionals(wave, sr).tolist()
    return values


def _finite(table) -> np.ndarray:
    return np.nan_to_num(np.asarray(table, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def clip_descriptors(wave: np.ndarray, settings: AudioSettings, version: int = DESCRIPTOR_VERSION,
                     descriptor_set: str = "ser") -> np.ndarray:
    """The descriptors of one prepared (trimmed) clip, on the centre crop the model sees."""
    return _finite(_describe(settings.center_crop(wave), version, descriptor_set, settings.sample_rate))


def descriptor_matrix(paths_: Sequence[str | Path], waves: Sequence[np.ndarray], settings: AudioSettings,
                      workers: int | None = None, version: int = DESCRIPTOR_VERSION,
                      descriptor_set: str = "ser", tag: dict | None = None) -> np.ndarray:
    """Descriptors of many prepared clips ``(clips, descriptors)``, cached on disk by file and settings
    (each part of a combined set separately, so ``ser+egemaps`` reuses both); ``tag`` names waves
    that are not the files' own (a noisy copy) in the cache key."""
    store = FeatureCache(paths.cache_dir() / "descriptors")
    crops = [settings.center_crop(wave) for wave in waves]  # views: no copies
    blocks = []
    for part in _parts(descriptor_set):
        params = {"version": version, **settings.cache_params(), **(tag or {})}
        if part != "ser":
            params = {**params, "version": part_version(part)}
        describe = partial(_describe, version=version, descriptor_set=part, sr=settings.sample_rate)
        blocks.append(_finite(store.get_many(paths_, "descriptors" if part == "ser" else part, params, describe,
                                             crops, workers)))
    return np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
