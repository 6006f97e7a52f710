"""Clip descriptors: version 2 describes the voice, not the room it was recorded in."""
import numpy as np
import pytest

from ser_lib.data import features
from ser_lib.data.audio import AudioSettings

SR = 16000


def vowel(seconds: float, f0: float = 140.0, brightness: float = 1.0, seed: int = 0) -> np.ndarray:
    """A sustained voiced sound: 40 harmonics of ``f0`` whose amplitude falls as ``k ** -1/brightness``,
    with a slow pitch drift."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / SR
    wave = sum(k ** (-1.0 / brightness) * np.sin(k * phase) for k in range(1, 41))
    wave += np.random.default_rng(seed).normal(0, 1e-3, len(t))
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


def test_periodicity_tells_a_voice_from_noise():
    rng = np.random.default_rng(1)
    voice, noise = vowel(1.0), rng.normal(0, 0.1, SR).astype(np.float32)
    f0 = np.full(101, 140.0)
    assert np.median(features.periodicity(voice, f0, SR, 1024, 160)[5:-5]) > 0.9
    assert np.median(features.periodicity(noise, f0, SR, 1024, 160)[5:-5]) < 0.2


@pytest.mark.parametrize("sr, frame", [(16000, 1024), (8000, 512)])
def test_yin_gives_librosas_numbers(sr, frame):
    """The frame-major YIN is librosa's, bit for bit, on voices, gliding pitch, noise and silence."""
    import librosa

    rng = np.random.default_rng(2)
    t = np.arange(sr) / sr
    glide = np.sin(2 * np.pi * np.cumsum(np.linspace(90, 400, sr)) / sr) * np.exp(-t)
    signals = [vowel(1.2, f0=110.0), vowel(0.7, f0=310.0, brightness=3.0, seed=4), glide.astype(np.float32),
               rng.normal(0, 0.1, sr).astype(np.float32), np.zeros(sr // 2, np.float32),
               np.concatenate([vowel(0.5), rng.normal(0, 0.01, 3000).astype(np.float32), vowel(0.4, 200.0)])]
    for wave in signals:
        expected = librosa.yin(wave, fmin=60, fmax=500, sr=sr, frame_length=frame, hop_length=sr // 100)
        got = features.yin(wave, sr, 60, 500, frame, sr // 100)
        np.testing.assert_array_equal(got, expected)
    assert abs(np.median(features.yin(vowel(1.0, f0=140.0), SR, 60, 500, 1024, 160)) - 140) < 5


def test_periodicity_is_the_normalised_autocorrelation_at_the_period():
    """Each frame's value, computed here the slow way from its definition."""
    from scipy.signal import sosfiltfilt

    wave = np.concatenate([vowel(0.4, f0=180.0), np.random.default_rng(3).normal(0, 0.05, 2000)]).astype(np.float32)
    f0 = features.yin(wave, SR, 60, 500, 1024, 160)
    f0[::7] = np.nan  # unvoiced frames: the shortest lag
    got = features.periodicity(wave, f0, SR, 1024, 160)
    low = np.pad(sosfiltfilt(features._lowpass_1khz(SR), wave.astype(np.float64)), 512)
    for t in range(0, len(f0), 5):
        head = low[t * 160: t * 160 + 512]
        period = SR / (f0[t] if np.isfinite(f0[t]) else SR / 2)
        scores = []
        for lag in (int(np.floor(period)), int(np.ceil(period))):
            tail = low[t * 160 + lag: t * 160 + lag + 512]
            energy = np.sqrt((head @ head) * (tail @ tail))
            scores.append(head @ tail / energy if energy > 0 else 0.0)
        assert got[t] == pytest.approx(max(0.0, *scores), abs=1e-9)


def test_bright_loud_voicing_is_voiced_in_version_2_only():
    """The zero-crossing rule of version 1 calls a voice with strong high harmonics unvoiced."""
    bright = vowel(1.5, f0=220.0, brightness=4.0)
    v1 = features.clip_statistics(bright, version=1)
    v2 = features.clip_statistics(bright, version=2)
    assert v2["voiced_fraction"] > 0.9
    assert v1["voiced_fraction"] < 0.5
    assert 0.0 <= v2["voiced_fraction"] <= 1.0


def test_pauses_and_noise_floor_leave_version_2_spectra_alone():
    """One second of room noise around the same voice moves version 1's MFCC statistics, not version 2's."""
    voice = vowel(1.0)
    room = np.random.default_rng(2).normal(0, 3e-3, SR // 2).astype(np.float32)
    padded = np.concatenate([room, voice, room])
    keys = [f"mfcc{i}_mean" for i in range(1, 13)] + [f"mfcc{i}_std" for i in range(1, 13)]

    def shift(version: int) -> float:
        a = features.clip_statistics(voice, version=version)
        b = features.clip_statistics(padded, version=version)
        return float(np.mean([abs(a[k] - b[k]) for k in keys]))

    assert shift(2) < 0.25 * shift(1)


def test_the_descriptor_cache_keeps_versions_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    wave = vowel(1.5, f0=220.0, brightness=4.0)
    path = tmp_path / "clip.wav"
    path.write_bytes(b"stands for the clip in the cache key")
    settings = AudioSettings()
    tables = {v: features.descriptor_matrix([path], [wave], settings, workers=1, version=v) for v in (1, 2, 3)}
    for version, table in tables.items():
        np.testing.assert_allclose(table[0], features.clip_descriptors(wave, settings, version), rtol=1e-6)
    assert not np.allclose(tables[1], tables[2])
    assert not np.allclose(tables[2], tables[3])
    with pytest.raises(ValueError, match="unknown descriptor version 4"):
        features.clip_statistics(wave, version=4)


def syllables(noise: float, seed: int = 0) -> np.ndarray:
    """Five voiced syllables with a rising and falling level, 0.15 s pauses between them, in a room
    whose steady white noise has standard deviation ``noise``."""
    parts = []
    for k in range(5):
        voice = vowel(0.25, f0=120.0 + 15 * k, seed=k) * np.hanning(int(0.25 * SR)).astype(np.float32)
        parts += [voice * (0.3 + 0.15 * k), np.zeros(int(0.15 * SR), np.float32)]
    wave = np.concatenate(parts)
    return (wave + np.random.default_rng(seed).normal(0, noise, len(wave))).astype(np.float32)


def test_subtracting_the_noise_floor_quietens_the_pauses_not_the_voice():
    clean, noisy = syllables(1e-5), syllables(0.01)
    cleaned = features.subtract_noise_floor(noisy)
    pause = slice(int(0.27 * SR), int(0.38 * SR))  # inside the first pause
    voice = slice(int(1.66 * SR), int(1.84 * SR))  # the middle of the loudest syllable

    def level(wave: np.ndarray, part: slice) -> float:
        return float(10 * np.log10(np.mean(wave[part].astype(np.float64) ** 2)))

    assert level(cleaned, pause) < level(noisy, pause) - 8
    assert abs(level(cleaned, voice) - level(noisy, voice)) < 1.0
    assert np.abs(features.subtract_noise_floor(clean) - clean).max() < 0.02 * np.abs(clean).max()
    short = np.ones(100, np.float32)
    assert features.subtract_noise_floor(short) is short


def test_version_3_describes_a_noisy_room_more_like_a_quiet_one():
    """Room noise narrows the level contour (``rms_std``) and the MFCC spread; version 3 undoes
    a good part of it."""
    clean, noisy = syllables(1e-5), syllables(0.01)
    keys = ["rms_std", "mfcc0_std", "dmfcc0_std", "mfcc1_std"]

    def shift(version: int) -> np.ndarray:
        a = features.clip_statistics(clean, version=version)
        b = features.clip_statistics(noisy, version=version)
        return np.array([abs(a[k] - b[k]) / max(abs(a[k]), 1e-6) for k in keys])

    assert shift(3).mean() < 0.75 * shift(2).mean()


def test_mel_band_centres_match_the_front_ends_filters():
    import torchaudio

    settings = features.MelSettings()
    centres = features.mel_band_hz(settings)
    bank = torchaudio.functional.melscale_fbanks(settings.n_fft // 2 + 1, settings.f_min, settings.sample_rate / 2,
                                                 settings.n_mels, settings.sample_rate)
    peaks = bank.argmax(0).numpy() * settings.sample_rate / settings.n_fft  # each filter's strongest FFT bin
    assert len(centres) == settings.n_mels and np.all(np.diff(centres) > 0)
    assert np.all(np.abs(peaks - centres) <= settings.sample_rate / settings.n_fft)  # within one FFT bin


def test_a_normaliser_keeps_the_descriptor_version_it_was_fitted_with(tmp_path, monkeypatch):
    from ser_lib.model.normalizer import InputNormalizer

    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    waves = [syllables(0.01, seed=k) for k in range(3)]
    paths = []
    for k in range(3):
        paths.append(tmp_path / f"clip{k}.wav")
        paths[-1].write_bytes(f"clip {k}".encode())
    settings, mel = AudioSettings(), features.MelSettings()
    fitted = InputNormalizer.fit(waves, paths, mel_settings=mel, audio=settings, speaker_norm=True,
                                 spectrogram=False, descriptors=True, descriptor_version=3)
    loaded = InputNormalizer.from_dict(fitted.to_dict(), mel, settings)
    assert loaded.descriptor_version == 3
    np.testing.assert_allclose(loaded.describe(waves[0]), features.clip_descriptors(waves[0], settings, 3), rtol=1e-6)
    table = features.descriptor_matrix(paths, waves, settings, workers=1, version=3)
    np.testing.assert_allclose(fitted.descriptors.mean, table.mean(0), rtol=1e-4, atol=1e-4)
