import numpy as np
import pandas as pd
import pytest

from ser_lib.data.audio import AudioSettings
from ser_lib.data.features import MelSettings
from ser_lib.errors import ConfigError
from ser_lib.model import normalizer
from ser_lib.model.enrolment import ALL_CLIPS, COLD_START, Enrolment
from conftest import run_cli


def _clips() -> pd.DataFrame:
    emotions = ["neutral", "neutral", "happy", "sad", "angry", "neutral"]
    return pd.DataFrame({"speaker": ["a"] * 6 + ["b"] * 6, "emotion": emotions * 2})


def test_parse_names_and_keys():
    assert Enrolment.parse("none") == COLD_START and Enrolment.parse("ALL") == ALL_CLIPS
    ten = Enrolment.parse(10)
    assert (ten.clips, ten.key, ten.name) == (10, "10", "adapted_10")
    neutral = Enrolment.parse("3", "neutral")
    assert (neutral.key, neutral.name) == ("3:neutral", "adapted_3_neutral")
    assert Enrolment.parse("all", ["neutral", "calm"]).key == "all:neutral+calm"
    assert (COLD_START.name, ALL_CLIPS.name) == ("cold_start", "adapted")
    for bad in ("some", "-2", "1.5"):
        with pytest.raises(ConfigError, match="none, all or a number"):
            Enrolment.parse(bad)
    with pytest.raises(ConfigError, match="unknown emotion"):
        Enrolment.parse("all", "joy")
    with pytest.raises(ConfigError, match="--adapt none has none"):
        Enrolment.parse("none", "neutral")


def test_draw_never_gives_a_clip_itself_keeps_to_its_speaker_and_emotions():
    clips = _clips()
    assert COLD_START.draw(clips) is None
    everything = ALL_CLIPS.draw(clips)
    assert everything[0] == [0, 1, 2, 3, 4, 5] and everything[7] == [6, 7, 8, 9, 10, 11]  # itself included
    two = Enrolment(2, seed=1).draw(clips)
    for k, chosen in enumerate(two):
        assert len(chosen) == 2 and k not in chosen and {clips.speaker[j] for j in chosen} == {clips.speaker[k]}
    assert two == Enrolment(2, seed=1).draw(clips)  # seeded
    draws = {tuple(tuple(c) for c in Enrolment(2, seed=s).draw(clips)) for s in range(5)}
    assert len(draws) > 1
    neutral = Enrolment(None, ("neutral",)).draw(clips)
    assert neutral[0] == [1, 5] and neutral[2] == [0, 1, 5] and neutral[6] == [7, 11]
    # fewer clips in the pool than asked: all of them
    assert Enrolment(10, ("neutral",)).draw(clips)[3] == [0, 1, 5]


def _normalizer(waves) -> normalizer.InputNormalizer:
    return normalizer.InputNormalizer.fit(waves, [f"clip{k}.wav" for k in range(len(waves))],
                                          mel_settings=MelSettings(), audio=AudioSettings(), speaker_norm=True,
                                          spectrogram=True, descriptors=False)


def test_running_stats_merge_equals_update():
    rng = np.random.default_rng(0)
    parts = [rng.normal(k, 1 + k, size=(50 + 10 * k, 3)) for k in range(4)]
    merged, direct = normalizer.RunningStats(3), normalizer.RunningStats(3)
    for rows in parts:
        piece = normalizer.RunningStats(3)
        piece.update(rows)
        merged.merge(piece)
        direct.update(rows)
    merged.merge(normalizer.RunningStats(3))  # nothing seen: nothing changes
    np.testing.assert_allclose(merged.mean, direct.mean, rtol=1e-12)
    np.testing.assert_allclose(merged.std, direct.std, rtol=1e-12)
    assert merged.count == direct.count


def test_normalizer_uses_exactly_the_enrolled_clips_shrunk_towards_the_training_data():
    rng = np.random.default_rng(0)
    waves = [rng.normal(0, 0.05 * (1 + k), 16000 * 4).astype(np.float32) for k in range(4)]  # 4 s each
    waves.append(rng.normal(0, 0.3, 8000).astype(np.float32))  # 0.5 s
    norm = _normalizer(waves)
    speakers = ["s"] * 5
    default = norm.inputs(waves, [""] * 5, speakers)
    explicit = norm.inputs(waves, [""] * 5, speakers, enrolment=[list(range(5))] * 5)
    np.testing.assert_allclose(default["mel_mean"], explicit["mel_mean"], rtol=1e-5)
    chosen = norm.inputs(waves, [""] * 5, speakers, enrolment=[[1, 2], [0], [4], [], [0, 1, 2, 3]])
    prior = norm.mel
    for k, members in ((0, [1, 2]), (1, [0]), (2, [4])):
        frames = np.concatenate([norm.log_mel_frames(waves[j]) for j in members])
        w = len(frames) / (len(frames) + normalizer.PRIOR_FRAMES)
        np.testing.assert_allclose(chosen["mel_mean"][k], w * frames.mean(0) + (1 - w) * prior.mean, rtol=1e-4,
                                   atol=1e-4)
        np.testing.assert_allclose(chosen["mel_std"][k], np.sqrt(w * frames.std(0) ** 2 + (1 - w) * prior.std ** 2),
                                   rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(chosen["mel_mean"][3], prior.mean)  # nothing heard: the cold start
    # half a second moves the statistics less than 8 s do
    moved = lambda k: np.abs(chosen["mel_mean"][k] - prior.mean).mean()  # noqa: E731
    assert 0 < moved(2) and not np.allclose(chosen["mel_mean"][0], chosen["mel_mean"][4])


def test_speaker_statistics_without_a_prior_are_the_speakers_own():
    rows = np.random.default_rng(1).normal(5, 2, size=(4, 3))
    prior = normalizer.Stats(np.zeros(3, np.float32), np.ones(3, np.float32))
    own = normalizer.RunningStats(3)
    own.update(rows)
    plain = normalizer.blend(own.descriptor_stats(), prior, own.count, 0)
    np.testing.assert_allclose(plain.mean, rows.mean(0), rtol=1e-5)
    half = normalizer.blend(own.descriptor_stats(), prior, own.count, own.count)
    np.testing.assert_allclose(half.mean, rows.mean(0) / 2, rtol=1e-5)
    np.testing.assert_allclose(half.std, np.sqrt((rows.std(0) ** 2 + 1) / 2), rtol=1e-4)


def test_cli_refuses_a_bad_adapt_value(tmp_path):
    run = run_cli("evaluate", "--model_path", str(tmp_path), "--adapt", "some")
    assert run.returncode == 2 and "none, all or a number of clips" in run.stderr and "Traceback" not in run.stderr


def test_cli_evaluate_with_a_few_neutral_clips(trained_run, tmp_path):
    import json

    run = run_cli("evaluate", "--model_path", str(trained_run), "--adapt", "2", "--adapt_emotions", "neutral",
                  "--output_dir", str(tmp_path), "--no_progress")
    assert run.returncode == 0, run.stderr
    assert "adapted 2 neutral: UAR" in run.stdout and "cold start: UAR" in run.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["adapt"] == "2:neutral" and metrics["uar"] == metrics["protocols"]["adapted_2_neutral"]["uar"]
    bad = run_cli("evaluate", "--model_path", str(trained_run), "--adapt_emotions", "joy", "--output_dir",
                  str(tmp_path / "bad"), "--no_progress")
    assert bad.returncode == 2 and "unknown emotion(s) joy" in bad.stderr and "Traceback" not in bad.stderr
