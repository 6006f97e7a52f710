"""Recording channels: a channel changes the recording, not the speakers or labels, and its profile shows it."""
import numpy as np
import pandas as pd

from ser_lib.data import audio, channel, corpora


def test_a_channel_changes_level_band_and_noise_as_asked():
    sr = 16000
    t = np.arange(sr) / sr
    wave = (0.01 * sum(np.sin(2 * np.pi * f * t) for f in (100.0, 1000.0, 5000.0))).astype(np.float32)
    phone = channel.Channel(gain_db=-6.0, band_hz=(300.0, 3400.0)).apply(wave, sr)
    spectrum = np.abs(np.fft.rfft(phone)) / np.abs(np.fft.rfft(wave)).max()
    assert spectrum[1000] > 0.3 and spectrum[100] < 0.05 and spectrum[5000] < 0.05  # 1 Hz bins
    assert abs(20 * np.log10(spectrum[1000]) + 6.0) < 1.0
    noisy = channel.Channel(snr_db=10.0).apply(wave, sr, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(wave ** 2) / np.mean((noisy - wave) ** 2))
    assert abs(snr - 10.0) < 0.5
    darker = channel.Channel(tilt=-6.0).apply(wave, sr)
    ratio = np.abs(np.fft.rfft(darker))[[100, 1000, 5000]] / np.abs(np.fft.rfft(wave))[[100, 1000, 5000]]
    assert np.allclose(20 * np.log10(ratio), [6 * np.log2(10), 0.0, -6 * np.log2(5)], atol=0.5)


def test_rerecorded_clips_are_a_folder_corpus_with_the_same_speakers_and_labels(corpus8, tmp_path):
    clips = corpora.index(corpus8, "ravdess")
    clips = clips[clips["speaker"].isin(["ravdess:07", "ravdess:08"])].groupby("speaker").head(12)
    table = channel.rerecord(clips, tmp_path / "phone", channel.CHANNELS["phone"], progress=False)
    copied = corpora.index(table, "folder")
    assert len(copied) == len(clips)
    assert sorted(copied["speaker"].unique()) == ["folder:07", "folder:08"]
    assert channel.rerecorded_speakers(["ravdess:07", "ravdess:08"]) == ["folder:07", "folder:08"]
    assert sorted(copied["emotion"]) == sorted(clips["emotion"])
    assert dict(zip(copied["speaker"], copied["gender"])) == {
        s.replace("ravdess", "folder"): g for s, g in zip(clips["speaker"], clips["gender"])}
    before, after = channel.profile(clips, n=24), channel.profile(copied, n=24)
    assert np.median(after.level_db) < np.median(before.level_db) - 2  # the phone preset is 4 dB quieter
    high = before.freqs > 4500
    assert after.ltas_db[high].mean() < before.ltas_db[high].mean() - 20  # and stops at 3.4 kHz
    assert isinstance(copied, pd.DataFrame) and audio.load(copied["path"].iloc[0]).dtype == np.float32


def test_random_tilt_augmentation_colours_within_its_range_and_reaches_the_cold_start_copies():
    from ser_lib.data.augment import WaveAugment, noisy_copy

    sr = 16000
    t = np.arange(sr) / sr
    wave = (0.05 * sum(np.sin(2 * np.pi * f * t) for f in (250.0, 1000.0, 4000.0))).astype(np.float32)
    only_tilt = WaveAugment(p=1.0, gain_db=0.0, snr_db=(), speeds=(), shift_seconds=0.0, tilt_db=3.0)
    slopes = []
    for seed in range(12):
        out = only_tilt(wave, np.random.default_rng(seed))
        gain = 20 * np.log10(np.abs(np.fft.rfft(out))[[250, 1000, 4000]] / np.abs(np.fft.rfft(wave))[[250, 1000, 4000]])
        assert abs(gain[1]) < 0.2  # 1 kHz keeps its level
        assert abs(gain[2] + gain[0]) < 0.3  # the same slope two octaves up and down
        slopes.append(gain[2] / 2)
    assert max(map(abs, slopes)) <= 3.05 and min(slopes) < -0.5 < 0.5 < max(slopes)  # darker and brighter draws
    np.testing.assert_array_equal(WaveAugment(p=1.0, gain_db=0.0, snr_db=(), speeds=(), shift_seconds=0.0)(
        wave, np.random.default_rng(0)), wave)  # off by default
    plain, tilted = noisy_copy(wave, "a.wav", (30.0, 30.0)), noisy_copy(wave, "a.wav", (30.0, 30.0), tilt_db=3.0)
    np.testing.assert_array_equal(tilted, noisy_copy(wave, "a.wav", (30.0, 30.0), tilt_db=3.0))
    ratio = np.abs(np.fft.rfft(tilted))[4000] / np.abs(np.fft.rfft(plain))[4000]
    assert abs(20 * np.log10(ratio)) > 0.1
