import numpy as np
import pandas as pd
import pytest
import torch

from ser_lib import training
from ser_lib.data import audio
from ser_lib.inference import Predictor, StreamingPredictor
from ser_lib.model import normalizer
from conftest import run_cli, small_train_config


def test_running_stats_match_numpy():
    rng = np.random.default_rng(0)
    rows = rng.normal(3, 2, size=(1000, 5))
    stats = normalizer.RunningStats(5)
    for chunk in np.array_split(rows, 17):
        stats.update(chunk)
    np.testing.assert_allclose(stats.mean, rows.mean(0), rtol=1e-10)
    np.testing.assert_allclose(stats.std, rows.std(0), rtol=1e-10)


def test_a_voice_of_a_training_corpus_starts_from_that_corpus_statistics():
    from ser_lib.data.audio import AudioSettings
    from ser_lib.data.features import MelSettings

    rng = np.random.default_rng(0)
    loud, quiet, other = ([level * rng.standard_normal(16000).astype(np.float32) for _ in range(4)]
                          for level in (0.3, 0.01, 0.1))
    waves, names = loud + quiet + other[:2], ["ravdess"] * 4 + ["cremad"] * 4 + ["folder"] * 2
    settings = dict(mel_settings=MelSettings(), audio=AudioSettings(), speaker_norm=True, spectrogram=True,
                    descriptors=False)
    fitted = normalizer.InputNormalizer.fit(waves, [""] * 10, corpora=names, **settings)
    assert set(fitted.corpus_stats) == {"ravdess", "cremad"}  # any folder of recordings: the pooled statistics
    pooled = normalizer.InputNormalizer.fit(waves, [""] * 10, **settings)
    assert not pooled.corpus_stats and np.allclose(fitted.mel.mean, pooled.mel.mean)
    alone = normalizer.InputNormalizer.fit(quiet, [""] * 4, **settings)
    np.testing.assert_allclose(fitted.training_stats("cremad").mel.mean, alone.mel.mean, rtol=1e-6)
    assert fitted.training_stats("cremad").mel.mean.mean() < fitted.mel.mean.mean() - 2  # far from the pooled
    # the cold start: each clip its corpus's statistics; another corpus, or none named, the pooled ones
    cold = fitted.inputs(waves + other[2:], [""] * 12, ["s"] * 12, adapt=False, corpora=names + ["tess"] * 2)
    assert np.allclose(cold["mel_mean"][0], fitted.training_stats("ravdess").mel.mean)
    assert np.allclose(cold["mel_mean"][4], alone.mel.mean)
    assert all(np.allclose(cold["mel_mean"][k], fitted.mel.mean) for k in (8, 10))
    assert np.allclose(fitted.clip_inputs(quiet[0])["mel_mean"], fitted.mel.mean)
    # a voice heard briefly is shrunk towards its corpus's statistics
    heard = {corpus: fitted.new_speaker(corpus) for corpus in ("cremad", None)}
    for speaker in heard.values():
        speaker.update(quiet[0][:4000])
    assert np.abs(heard["cremad"].mel_stats().mean - alone.mel.mean).mean() < \
        np.abs(heard[None].mel_stats().mean - alone.mel.mean).mean()
    # kept in the checkpoint; a model without speaker statistics uses the pooled ones only
    again = normalizer.InputNormalizer.from_dict(fitted.to_dict(), MelSettings(), AudioSettings())
    np.testing.assert_allclose(again.training_stats("ravdess").mel.std, fitted.training_stats("ravdess").mel.std)
    plain = normalizer.InputNormalizer.fit(waves, [""] * 10, corpora=names, **{**settings, "speaker_norm": False})
    assert np.allclose(plain.clip_inputs(quiet[0], corpus="cremad")["mel_mean"], plain.mel.mean)


def test_normalize_by_speaker_uses_each_speakers_own_rows():
    table = np.array([[1.0, 10], [3, 30], [100, 0], [300, 2]])
    out = normalizer.normalize_by_speaker(table, [1, 1, 2, 2])
    np.testing.assert_allclose(out, [[-1, -1], [1, 1], [-1, -1], [1, 1]], atol=1e-5)


@pytest.fixture(scope="module")
def speaker_norm_run(corpus8, tmp_path_factory):
    out = tmp_path_factory.mktemp("speaker-norm-run")
    training.train(small_train_config(corpus8, out, epochs=3, speaker_norm=True, descriptors=True))
    return out


def test_training_with_speaker_norm_and_descriptors_records_its_normalisation(speaker_norm_run):
    raw = torch.load(speaker_norm_run / "best_model.pt", weights_only=True)
    info = raw["normalizer"]
    assert info["speaker_norm"] is True
    assert len(info["descriptor_names"]) == len(info["descriptors"]["mean"]) == raw["model_config"]["descriptor_dim"] > 40
    assert "f0_mean" in info["descriptor_names"] and len(info["mel"]["mean"]) == 64


def test_predictor_adapts_to_a_speaker(speaker_norm_run, corpus8):
    predictor = Predictor.from_checkpoint(speaker_norm_run / "best_model.pt", device="cpu")
    basic4 = ("01", "03", "04", "05")  # the model's classes: the evaluation below sees these clips
    files = [f for f in sorted((corpus8 / "Actor_08").glob("*.wav")) if f.name[6:8] in basic4]
    before = predictor.predict_file(files[0]).probs
    assert not predictor.speaker.adapted  # the training data's statistics stand in
    predictor.adapt(files)
    assert predictor.speaker.adapted
    after = predictor.predict_file(files[0]).probs
    assert not np.allclose(before, after, atol=1e-4)
    # the adapted prediction equals evaluation with the speaker's own statistics
    from ser_lib.reports import evaluation

    result = evaluation.evaluate_checkpoint(speaker_norm_run / "best_model.pt", progress=False,
                                          output_dir=speaker_norm_run / "eval")
    table = result.predictions.table().set_index("file")
    probs = table.loc[files[0].name, [f"p_{label}" for label in predictor.labels]].to_numpy(dtype=float)
    np.testing.assert_allclose(after, probs, atol=1e-4)
    # and the cold start (the training data's statistics) equals the evaluation's cold-start protocol
    assert result.by_protocol["all"] is result.predictions
    cold = result.by_protocol["none"].table().set_index("file")
    np.testing.assert_allclose(before, cold.loc[files[0].name, [f"p_{label}" for label in predictor.labels]]
                               .to_numpy(dtype=float), atol=1e-4)


def test_evaluation_enrols_each_clip_on_k_random_clips_of_its_speaker(speaker_norm_run, corpus8):
    from ser_lib.model.enrolment import Enrolment
    from ser_lib.reports import evaluation

    result = evaluation.evaluate_checkpoint(speaker_norm_run / "best_model.pt", adapt=4, adapt_emotions="neutral",
                                          adapt_seed=3, progress=False, output_dir=speaker_norm_run / "eval-k")
    metrics = result.metrics
    assert metrics["adapt"] == "4:neutral" and set(result.by_protocol) == {"4:neutral", "none", "all"}
    assert list(metrics["protocols"]) == ["adapted_4_neutral", "cold_start", "adapted"]
    assert metrics["uar"] == metrics["protocols"]["adapted_4_neutral"]["uar"]
    assert "4 random neutral clip(s)" in (result.folder / "report.md").read_text()
    # a clip's prediction is the one a predictor adapted to exactly its drawn clips gives
    clips = result.predictions.clips
    drawn = Enrolment.parse(4, "neutral", 3).draw(clips)
    k = int(np.flatnonzero(clips["emotion"] == "neutral")[0])
    assert len(drawn[k]) == 3 and k not in drawn[k]  # 4 neutral clips per actor, never the clip itself
    predictor = Predictor.from_checkpoint(speaker_norm_run / "best_model.pt", device="cpu")
    predictor.adapt(clips["path"].iloc[drawn[k]].tolist())
    expected = predictor.predict_file(clips["path"].iloc[k]).probs
    np.testing.assert_allclose(result.predictions.probs[k], expected, atol=1e-4)
    assert not np.allclose(result.predictions.probs[k], result.by_protocol["all"].probs[k], atol=1e-4)


def test_stream_builds_running_statistics(speaker_norm_run, corpus8):
    predictor = Predictor.from_checkpoint(speaker_norm_run / "best_model.pt", device="cpu")
    waves = [audio.load(p) for p in sorted((corpus8 / "Actor_08").glob("*.wav"))[:8]]
    StreamingPredictor(predictor, 16000, adapt=False).process(waves)
    assert predictor.speaker.mel.count == 0 and predictor.speaker.descriptors.count == 0
    stream = StreamingPredictor(predictor, 16000)
    results = stream.process(waves)
    assert predictor.speaker.mel.count > 0 and predictor.speaker.descriptors.count > 0
    assert any(r.speech for r in results)


def test_cli_infer_adapts_to_the_speaker_of_given_clips(speaker_norm_run, corpus8):

    model = str(speaker_norm_run / "best_model.pt")
    files = sorted(str(f) for f in (corpus8 / "Actor_08").glob("03-01-0[1345]-*.wav"))
    expected = Predictor.from_checkpoint(model, device="cpu")
    expected.adapt(files)
    probs = expected.predict_file(files[0]).as_dict()

    def infer(*extra):
        return run_cli("infer", "--model_path", model, "--input", files[0], "--whole", "--device", "cpu", *extra)

    adapted = infer("--adapt", *files)
    assert adapted.returncode == 0, adapted.stderr
    assert f"adapted to the speaker of {len(files)} clip(s)" in adapted.stderr
    printed = {line.split()[0]: float(line.split()[1]) for line in adapted.stdout.splitlines()[1:]}
    assert printed == pytest.approx(probs, abs=1e-3)
    missing = infer("--adapt", str(corpus8 / "nothing.wav"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_feature_cache_computes_only_what_is_missing(tmp_path):
    from ser_lib.data.cache import FeatureCache

    files = []
    for k in range(4):
        files.append(tmp_path / f"clip{k}.bin")
        files[-1].write_bytes(bytes([k]) * 10)
    store = FeatureCache(tmp_path / "cache")
    assert store.get_many(files[:3], "len", {"v": 1}, len, ["a", "bb", "ccc"], workers=1) == [1, 2, 3]
    # stored values come back without computing (the inputs now would give other values) ...
    assert store.get_many(files[:3], "len", {"v": 1}, len, ["xxxx"] * 3, workers=1) == [1, 2, 3]
    # ... only the new file is computed, and other parameters are other entries
    assert store.get_many(files, "len", {"v": 1}, len, ["", "", "", "dddd"], workers=1) == [1, 2, 3, 4]
    assert store.get_many(files[:1], "len", {"v": 2}, len, ["eeeee"], workers=1) == [5]


def test_baseline_speaker_normalize_keeps_the_table_shape():
    import pandas as pd

    from ser_lib.training import baseline

    table = pd.DataFrame({"f0": [100.0, 120, 200, 260], "rms": [-30.0, -20, -25, -15]}, index=[7, 8, 9, 10])
    out = baseline.speaker_normalize(table, pd.Series([1, 1, 2, 2], index=table.index))
    assert list(out.columns) == ["f0", "rms"] and list(out.index) == [7, 8, 9, 10]
    np.testing.assert_allclose(out.to_numpy(), [[-1, -1], [1, 1], [-1, -1], [1, 1]], atol=1e-5)


def test_cold_start_training_gives_some_clips_the_training_statistics_each_epoch():
    from ser_lib.data.audio import AudioSettings
    from ser_lib.data.dataset import ClipDataset

    n = 400
    clips = pd.DataFrame({"path": [f"{k}.wav" for k in range(n)], "gender": "female"})
    waves = [np.zeros(16000, np.float32)] * n
    own, cold = {"descriptors": np.zeros((n, 3))}, {"descriptors": np.ones((n, 3))}

    def cold_clips(dataset, epoch):
        dataset.set_epoch(epoch)
        return {k for k in range(n) if dataset[k]["inputs"]["descriptors"][0] == 1}

    train = ClipDataset(clips, waves, [0] * n, AudioSettings(), train=True, inputs=own, variants=[(0.25, cold)])
    first, second = cold_clips(train, 0), cold_clips(train, 1)
    assert 0.18 * n < len(first) < 0.32 * n and 0.18 * n < len(second) < 0.32 * n
    assert first != second and first == cold_clips(train, 0)  # drawn anew each epoch, reproducibly
    test = ClipDataset(clips, waves, [0] * n, AudioSettings(), train=False, inputs=own, variants=[(0.25, cold)])
    assert cold_clips(test, 0) == set()  # evaluation never swaps statistics


def test_enrolment_training_shows_a_few_clips_statistics(corpus8, tmp_path, monkeypatch):
    from ser_lib.model.enrolment import TRAINING_ENROLMENTS
    from ser_lib.training import run as run_module
    from ser_lib.training.run import SplitRun
    from ser_lib.training.setup import load_run_data, make_accelerator, run_splits, scan_dataset

    from ser_lib.data.augment import WaveAugment

    config = small_train_config(corpus8, tmp_path, speaker_norm=True, cold_start_rate=0.2, enrolment_rate=0.35,
                                augment_settings=WaveAugment(tilt_db=2.0))
    root, clips, labels = scan_dataset(config)
    data = load_run_data(config, root, clips, labels)
    copied, real_copy = [], run_module.noisy_copy
    monkeypatch.setattr(run_module, "noisy_copy", lambda wave, path, *args, **kw: copied.append((path, kw))
                        or real_copy(wave, path, *args, **kw))
    run = SplitRun(config, data, run_splits(config, clips)[0], make_accelerator(config))
    train = run.sets["train"]
    assert sorted(path for path, _ in copied) == sorted(train.clips["path"])  # noisy copies of the training clips only
    assert all(kw == {"tilt_db": 2.0, "sr": 16000} for _, kw in copied)  # another microphone's colour too
    rates = [rate for rate, _ in train.variants]
    # the cold start, half of it described from noisy copies, then the enrolments
    assert len(rates) == 2 + len(TRAINING_ENROLMENTS) and rates[:2] == pytest.approx([0.1, 0.1])
    assert sum(rates[2:]) == pytest.approx(0.35)
    assert run.sets["val"].variants == []  # validation keeps each speaker's own statistics
    own, cold, noisy = train.inputs, train.variants[0][1], train.variants[1][1]
    one, neutral = train.variants[2][1], train.variants[-1][1]
    np.testing.assert_array_equal(noisy["mel_mean"], cold["mel_mean"])  # the same training statistics
    assert (np.abs(noisy["descriptors"] - cold["descriptors"]).max(1) > 1e-3).all()  # of other audio
    # a clip's statistics from one other clip of its speaker lie between the cold start and its own
    d = lambda a, b: np.abs(a["mel_mean"] - b["mel_mean"]).mean(1)  # noqa: E731
    assert (d(one, cold) > 1e-4).all() and (d(one, own) > 1e-4).all() and (d(neutral, own) > 1e-4).all()
    assert np.median(d(one, own)) < np.median(d(cold, own))
    with pytest.raises(Exception, match="enrolment_rate"):
        small_train_config(corpus8, tmp_path, cold_start_rate=0.5, enrolment_rate=0.5).validate()


def test_noisy_cold_start_copies_are_reproducible_and_cached_apart(corpus8, tmp_path, monkeypatch):
    """The cold-start clips described from a noisy copy: the same copy each time, at an SNR in range,
    and its descriptors never taken for (or from) the clean clip's in the cache."""
    from ser_lib.data import audio, features
    from ser_lib.data.augment import noisy_copy

    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path))
    settings = audio.AudioSettings()
    paths = sorted(str(p) for p in corpus8.rglob("*.wav"))[:3]
    waves = [settings.prepare(audio.load(p)) for p in paths]
    copies = [noisy_copy(w, p, (10.0, 20.0), seed=0) for w, p in zip(waves, paths)]
    np.testing.assert_array_equal(copies[0], noisy_copy(waves[0], paths[0], (10.0, 20.0), seed=0))
    assert not np.array_equal(copies[0], noisy_copy(waves[0], paths[0], (10.0, 20.0), seed=1))
    for wave, copy in zip(waves, copies):
        snr = audio.rms_db(wave) - audio.rms_db(copy - wave)
        assert 9.9 < snr < 20.1
    clean = features.descriptor_matrix(paths, waves, settings, workers=1)
    noisy = features.descriptor_matrix(paths, copies, settings, workers=1, tag={"noisy_copy": [10.0, 20.0, 0]})
    assert not np.allclose(clean, noisy)
    tilted = [noisy_copy(w, p, (10.0, 20.0), seed=0, tilt_db=3.0) for w, p in zip(waves, paths)]
    coloured = features.descriptor_matrix(paths, tilted, settings, workers=1, tag={"noisy_copy": [10.0, 20.0, 0, 3.0]})
    assert not np.allclose(coloured, noisy)  # its own cache entries, not the untilted copies'
    np.testing.assert_array_equal(features.descriptor_matrix(paths, waves, settings, workers=1), clean)
    names = features.descriptor_names()
    assert (noisy[:, names.index("rms_std")] < clean[:, names.index("rms_std")]).all()  # noise flattens dynamics
