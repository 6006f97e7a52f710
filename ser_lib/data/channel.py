"""Recording channels: what a microphone, a room and a line do to a voice, and how to measure it.

A corpus is also a way of recording: its microphones, rooms, levels and noise. A model trained on one
studio learns that studio too. :class:`Channel` is a simple model of a recording chain (gain, band
limits, spectral tilt, steady noise), so a lesson can change the channel of the same voices and
nothing else; :func:`rerecord` writes clips through one as a ``folder`` corpus; :func:`profile`
measures how a set of clips was recorded (level per clip, long-term average spectrum).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import audio
from .augment import spectral_tilt
from .corpora import speaker_id
from .features import active_frames


@dataclass(frozen=True)
class Channel:
    """A recording chain: white room noise ``snr_db`` below the speech (None: none), then the
    microphone's spectral ``tilt`` in dB per octave around 1 kHz (negative: darker) and band-pass
    ``band_hz`` (low, high; None: full band), then a ``gain_db``."""

    gain_db: float = 0.0
    band_hz: tuple[float, float] | None = None
    tilt: float = 0.0
    snr_db: float | None = None

    def apply(self, wave: np.ndarray, sr: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """The clip as this channel records it (float32, clipped to [-1, 1])."""
        from scipy.signal import butter, sosfiltfilt

        x = np.asarray(wave, dtype=np.float64)
        if self.snr_db is not None:  # the room's noise reaches the microphone with the voice
            rng = rng or np.random.default_rng(0)
            speech_power = np.mean(x ** 2) + 1e-12
            x = x + rng.normal(0, np.sqrt(speech_power / 10 ** (self.snr_db / 10)), len(x))
        if self.tilt:
            x = spectral_tilt(x, self.tilt, sr)
        if self.band_hz is not None:
            low, high = self.band_hz
            x = sosfiltfilt(butter(4, [low, min(high, 0.45 * sr)], btype="band", fs=sr, output="sos"), x)
        x = x * 10 ** (self.gain_db / 20)
        return np.clip(x, -1.0, 1.0).astype(np.float32)


#: Channels for lessons: another studio (quieter, darker, a little noise) and a telephone band.
CHANNELS: dict[str, Channel] = {
    "studio B": Channel(gain_db=-8.0, band_hz=(120.0, 7000.0), tilt=-2.0, snr_db=30.0),
    "phone": Channel(gain_db=-4.0, band_hz=(300.0, 3400.0), snr_db=20.0),
}


def rerecord(clips: pd.DataFrame, out_dir: str | Path, channel: Channel, seed: int = 0,
             progress: bool = True) -> Path:
    """Write every clip of a clip table through ``channel`` into ``out_dir`` and return the path of its
    ``clips.csv`` (path, emotion, speaker, gender): a ``folder`` corpus (``folder=.../clips.csv``).

    Speakers keep their own ids. The table is written last, so an interrupted call leaves no corpus
    that looks complete; one finished with the same clips, channel and seed is reused, another replaced.
    """
    out = Path(out_dir).expanduser()
    table_path, recipe_path = out / "clips.csv", out / "channel.json"
    recipe = {"channel": asdict(channel), "seed": seed, "clips": sorted(map(str, clips["path"]))}
    recipe = json.loads(json.dumps(recipe))  # as read back (tuples become lists)
    if table_path.exists() and recipe_path.exists() and json.loads(recipe_path.read_text()) == recipe:
        return table_path
    table_path.unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for row in tqdm(clips.itertuples(), total=len(clips), desc="re-recording", disable=not progress):
        speaker = _local_id(row.speaker)
        target = out / speaker / f"{Path(row.path).stem}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        audio.save(target, channel.apply(audio.load(row.path), audio.SAMPLE_RATE, rng))
        rows.append({"path": str(target.relative_to(out)), "emotion": row.emotion, "speaker": speaker,
                     "gender": row.gender})
    recipe_path.write_text(json.dumps(recipe))
    pd.DataFrame(rows).to_csv(table_path.with_suffix(".part"), index=False)
    table_path.with_suffix(".part").replace(table_path)
    return table_path


def rerecorded_speakers(speakers: Sequence[str]) -> list[str]:
    """The ids the speakers have in a corpus :func:`rerecord` wrote (``ravdess:07`` -> ``folder:07``)."""
    return [speaker_id("folder", _local_id(s)) for s in speakers]


def _local_id(speaker: str) -> str:
    return str(speaker).split(":")[-1]


@dataclass
class Profile:
    """How a set of clips was recorded: each clip's speech level (dBFS) and the long-term average
    spectrum of the speech frames (dB, at ``freqs`` Hz)."""

    level_db: np.ndarray
    freqs: np.ndarray
    ltas_db: np.ndarray


def profile(clips: pd.DataFrame, n: int = 40, seed: int = 0) -> Profile:
    """The recording profile of ``n`` clips of a clip table drawn at random with ``seed``."""
    import librosa

    rows = clips.sample(min(n, len(clips)), random_state=seed)
    levels, power = [], []
    for path in rows["path"]:
        wave = audio.load(path)
        frames = np.abs(librosa.stft(wave, n_fft=512, hop_length=160)) ** 2
        level = 10 * np.log10(frames.sum(0) / (512 * 256) + 1e-12)  # frame power, about dBFS
        speech = active_frames(level)
        levels.append(float(10 * np.log10(frames[:, speech].sum(0).mean() / (512 * 256) + 1e-12)))
        power.append(frames[:, speech].mean(1))
    ltas = 10 * np.log10(np.mean(power, axis=0) + 1e-12)
    return Profile(np.asarray(levels), librosa.fft_frequencies(sr=audio.SAMPLE_RATE, n_fft=512), ltas)
