from dataclasses import asdict

import numpy as np
import pytest
import soundfile as sf

from ser_lib.data import audio
from ser_lib.errors import AudioError
from conftest import write_tone


def dominant_frequency(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spectrum.argmax()])


@pytest.mark.parametrize("sr, channels, suffix", [
    (48000, 2, ".wav"), (44100, 1, ".wav"), (16000, 1, ".flac"), (22050, 6, ".flac"), (8000, 2, ".ogg"),
    (44100, 1, ".mp3"),
])
def test_load_returns_mono_float32_at_the_asked_rate(tmp_path, sr, channels, suffix):
    if suffix == ".mp3" and "MP3" not in sf.available_formats():
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) has no MP3: soundfile's wheels ship 1.1 or later")
    path = tmp_path / f"tone{suffix}"
    write_tone(path, sr=sr, seconds=1.0, channels=channels, freq=440.0,
               subtype={".ogg": "VORBIS", ".mp3": "MPEG_LAYER_III"}.get(suffix, "PCM_16"))
    wave = audio.load(path, sr=16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 16000) <= 1
    assert abs(dominant_frequency(wave, 16000) - 440.0) < 3.0
    assert 0.2 < np.abs(wave).max() < 0.35  # downmix averages, it does not sum


def test_downmix_averages_different_channels(tmp_path):
    left = np.full(1600, 0.5, dtype=np.float32)
    right = np.full(1600, -0.1, dtype=np.float32)
    sf.write(str(tmp_path / "lr.wav"), np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(audio.load(tmp_path / "lr.wav"), 0.2, atol=1e-6)


def test_load_keeps_rate_when_sr_is_none(tmp_path):
    write_tone(tmp_path / "a.wav", sr=22050, seconds=0.5)
    assert len(audio.load(tmp_path / "a.wav", sr=None)) == 11025


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        audio.load(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        audio.load(tmp_path / "empty.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    with pytest.raises(AudioError, match="corrupt"):
        audio.load(tmp_path / "corrupt.wav")
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(AudioError, match="unsupported audio format .mp4"):
        audio.load(tmp_path / "clip.mp4")
    sf.write(str(tmp_path / "noframes.wav"), np.zeros((0,), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="no audio samples"):
        audio.load(tmp_path / "noframes.wav")
    sf.write(str(tmp_path / "silent.wav"), np.zeros(1600, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="silence"):
        audio.load(tmp_path / "silent.wav")
    assert audio.load(tmp_path / "silent.wav", allow_silent=True).shape == (1600,)


@pytest.mark.shared_data
def test_shared_stereo_file_loads_as_mono(shared_data):
    path = shared_data / "Actor_01" / "03-01-02-01-01-02-01.wav"
    assert sf.info(str(path)).channels == 2
    wave = audio.load(path)
    assert wave.ndim == 1 and wave.dtype == np.float32
    assert abs(len(wave) - sf.info(str(path)).frames) == 0


def test_pad_crop_trim_and_normalise():
    rng = np.random.default_rng(0)
    x = np.arange(10, dtype=np.float32)
    assert audio.pad_or_crop(x, 4, mode="center").tolist() == [3, 4, 5, 6]
    assert audio.pad_or_crop(x, 4, mode="start").tolist() == [0, 1, 2, 3]
    assert audio.pad_or_crop(x, 12).tolist()[-2:] == [0, 0]
    crop = audio.pad_or_crop(x, 4, mode="random", rng=rng)
    assert len(crop) == 4 and np.all(np.diff(crop) == 1)

    sr = 16000
    speech = np.concatenate([np.zeros(sr), 0.5 * np.sin(np.arange(sr) * 0.1), np.zeros(sr)]).astype(np.float32)
    trimmed = audio.trim_silence(speech, sr)
    assert sr <= len(trimmed) <= sr + 2 * int(0.1 * sr) + 2 * 400

    assert np.isclose(np.abs(audio.peak_normalize(speech, 0.9)).max(), 0.9)
    assert abs(audio.rms_db(audio.loudness_normalize(speech, -30.0)) + 30.0) < 0.01


def test_trim_finds_speech_in_a_noisy_room():
    """Room noise 20 dB below the speech: the peak rule (40 dB) keeps all of it, the noise-floor rule
    cuts it to the speech plus its margins; a steady signal is kept whole."""
    sr, rng = 16000, np.random.default_rng(1)
    noise = 0.05 * rng.normal(size=3 * sr)
    speech = noise.copy()
    speech[sr:2 * sr] += 0.5 * np.sin(np.arange(sr) * 0.1)
    speech = speech.astype(np.float32)
    assert len(audio.trim_silence(speech, sr, floor_db=None)) == len(speech)
    trimmed = audio.trim_silence(speech, sr)
    assert sr <= len(trimmed) <= sr + 2 * int(0.1 * sr) + 2 * 400
    assert len(audio.trim_silence(noise.astype(np.float32), sr)) >= len(noise) - 400
    assert len(audio.AudioSettings().prepare(speech)) == len(trimmed)


def test_settings_saved_before_the_floor_rule_trim_as_they_did():
    old = audio.AudioSettings.from_dict({"sample_rate": 16000, "trim_db": 40.0, "max_seconds": 3.0})
    assert old.trim_floor_db is None
    assert "trim_floor_db" not in old.cache_params()
    assert audio.AudioSettings.from_dict(asdict(audio.AudioSettings())) == audio.AudioSettings()


@pytest.mark.parametrize("rate", [24414, 44100, 96000])
def test_resampling_any_rate_is_fast_and_keeps_the_tone(rate):
    """A regression guard with a generous bound: a sinc kernel rebuilt per call took 4 s at 24,414 Hz."""
    import time

    t = np.arange(2 * rate) / rate
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    start = time.perf_counter()
    out = audio.resample(wave, rate, 16000)
    assert time.perf_counter() - start < 0.5
    assert out.dtype == np.float32 and abs(len(out) - 32000) <= 1
    assert abs(dominant_frequency(out, 16000) - 440) < 5
