"""Training on several corpora at once, holding one out, and evaluating a model on another corpus."""
import json

import numpy as np
import pytest

import corpus_fixtures as fx
from ser_lib import training
from ser_lib.errors import ConfigError, SplitError
from ser_lib.inference import Predictor
from ser_lib.model import checkpoint
from ser_lib.reports import evaluation
from conftest import run_cli, small_train_config


@pytest.fixture(scope="module")
def cremad(tmp_path_factory):
    return fx.cremad(tmp_path_factory.mktemp("cremad"), actors=(1001, 1002, 1003, 1004, 1005, 1006))


def test_kfold_over_two_corpora(corpus8, cremad, tmp_path):
    config = small_train_config(corpus8, tmp_path / "cv", dataset=(f"cremad={cremad}",), emotion_subset="shared",
                                folds=2, quick=True, corpus_balance=True)
    summary = training.train(config)
    for fold in summary["per_fold"]:
        corpora_tested = {s.split(":")[0] for s in fold["test_speakers"]}
        assert corpora_tested == {"ravdess", "cremad"}  # every fold tests speakers of both corpora
    manifest = json.loads((tmp_path / "cv" / "fold1" / "manifest.json").read_text())
    assert manifest["labels"] == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    split = manifest["split"]
    assert not set(split["train"]) & set(split["test"]) and not set(split["val"]) & set(split["test"])
    assert any(s.startswith("cremad:") for s in split["val"]) and any(s.startswith("ravdess:") for s in split["val"])
    # each training corpus's own statistics stand in for a new voice of it (--corpus_stats)
    model = tmp_path / "cv" / "fold1" / "best_model.pt"
    assert set(checkpoint.load(model).normalizer.corpus_stats) == {"ravdess", "cremad"}
    result = evaluation.evaluate_checkpoint(model, progress=False)
    for protocol in ("cold_start", "adapted"):
        assert "speaker's corpus for cremad, ravdess" in result.metrics["protocols"][protocol]["description"]
    # `infer --corpus cremad` starts a voice as the evaluation's cold start does; without it, from the pooled ones
    cold = result.by_protocol["none"]
    k = int(np.flatnonzero(cold.clips["corpus"].to_numpy() == "cremad")[0])
    predictor = Predictor.from_checkpoint(model, device="cpu")
    pooled = predictor.predict_file(cold.clips["path"].iloc[k]).probs
    predictor.use_corpus("cremad")
    np.testing.assert_allclose(predictor.predict_file(cold.clips["path"].iloc[k]).probs, cold.probs[k], atol=1e-5)
    assert not np.allclose(pooled, cold.probs[k], atol=1e-3)
    with pytest.raises(ConfigError, match="no statistics of 'tess' of its own .it has cremad, ravdess"):
        predictor.use_corpus("tess")
    predictor.use_corpus(None)  # back to the pooled statistics
    np.testing.assert_allclose(predictor.predict_file(cold.clips["path"].iloc[k]).probs, pooled, atol=1e-6)


def test_an_emotion_a_corpus_lacks_is_learnt_from_the_other_with_a_warning(corpus8, cremad, tmp_path, caplog):
    run = tmp_path / "run"
    with caplog.at_level("WARNING"):
        summary = training.train(small_train_config(corpus8, run, dataset=(f"cremad={cremad}",),
                                                    emotion_subset="all", folds=2, quick=True))
    assert "cremad has no calm, surprised" in caplog.text
    manifest = json.loads((run / "fold1" / "manifest.json").read_text())
    assert manifest["labels"] == ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert len(summary["per_fold"]) == 2
    with pytest.raises(SplitError, match="asks for calm, surprised, which no dataset of the run has"):
        training.train(small_train_config(corpus8, tmp_path / "none", dataset=(f"cremad={cremad}",),
                                          dataset_root=None, emotion_subset="all", quick=True))
    assert not (tmp_path / "none").exists()


def test_a_held_out_corpus_is_the_test_set_and_another_corpus_is_scored_on_shared_classes(corpus8, cremad, tmp_path):
    run = tmp_path / "run"
    result = training.train(small_train_config(corpus8, run, dataset=(f"cremad={cremad}",), emotion_subset="basic4",
                                               test_corpus="cremad", quick=True))
    assert result["split"] == "test-cremad" and all(s.startswith("cremad:") for s in result["test_speakers"])
    assert not checkpoint.load(run / "best_model.pt").normalizer.corpus_stats  # trained on one corpus: pooled
    # the RAVDESS-layout model of the session evaluated on CREMA-D, which has no calm nor surprise: the 8
    # classes of a model meet 6 emotions, scored over the ones they share
    model = run / "best_model.pt"
    other = evaluation.evaluate_checkpoint(model, [f"cremad={cremad}"], progress=False)
    assert other.folder == run / "evaluation"  # cremad was a training corpus here: its test speakers
    eight = tmp_path / "eight"
    training.train(small_train_config(corpus8, eight, emotion_subset="all", quick=True))
    cross = evaluation.evaluate_checkpoint(eight / "best_model.pt", [f"cremad={cremad}"], progress=False)
    metrics = cross.metrics
    assert cross.folder == eight / "evaluation-cremad" and metrics["labels"] == [
        "neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert metrics["left_out"]["model_classes_without_clips"] == ["calm", "surprised"]
    assert metrics["n_clips"] == 6 * 6 * 2 and len(metrics["speakers"]) == 6  # every CREMA-D speaker
    assert np.allclose(cross.predictions.probs.sum(1), 1.0, atol=1e-5)  # renormalised over the shared classes
    assert set(metrics["protocols"]) == {"adapted", "cold_start"}
    report = (cross.folder / "report.md").read_text()
    assert "calm, surprised have no clips in these data" in report and "cold start" in report


def test_cli_evaluate_on_another_corpus_and_a_corpus_with_no_shared_class(trained_run, tmp_path, cremad):
    run = run_cli("evaluate", "--model_path", str(trained_run), "--dataset", f"cremad={cremad}", "--adapt", "none",
                  "--no_progress")
    assert run.returncode == 0, run.stderr
    assert "4 classes" in run.stdout and "cold start: UAR" in run.stdout and "adapted: UAR" in run.stdout
    metrics = json.loads((trained_run / "evaluation-cremad" / "metrics.json").read_text())
    assert metrics["adapt"] == "none" and metrics["uar"] == metrics["protocols"]["cold_start"]["uar"]
    assert metrics["left_out"]["clips_of_other_emotions"] == {"fearful": 12, "disgust": 12}
    odd = tmp_path / "odd"
    fx.tone(odd / "calm" / "a.wav", "calm")
    fx.tone(odd / "surprised" / "b.wav", "surprised")
    run = run_cli("evaluate", "--model_path", str(trained_run), "--dataset", f"folder={odd}", "--no_progress")
    assert run.returncode == 2 and "share 0 class(es)" in run.stderr and "Traceback" not in run.stderr
    # --corpus on a model of one corpus: its own name changes nothing, another is refused with the way out
    infer = ("infer", "--model_path", str(trained_run / "best_model.pt"), "--input", str(odd / "calm" / "a.wav"),
             "--whole")
    plain, named = run_cli(*infer), run_cli(*infer, "--corpus", "ravdess")
    assert plain.returncode == named.returncode == 0 and named.stdout == plain.stdout
    run = run_cli(*infer, "--corpus", "cremad")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "it was trained on ravdess with one set of statistics" in run.stderr and "leave out --corpus" in run.stderr


def test_unknown_genders_train_without_the_gender_loss_going_wrong(tmp_path):
    data = tmp_path / "mine"
    for speaker in ("ann", "bob", "cat", "dan"):
        for emotion in ("neutral", "happy", "sad", "angry"):
            for take in range(3):
                fx.tone(data / speaker / emotion / f"{take}.wav", emotion, speaker=take)
    result = training.train(small_train_config(tmp_path, tmp_path / "run", dataset_root=None,
                                               dataset=(f"folder={data}",), test_speakers=("folder:dan",),
                                               val_speakers=("folder:cat",), epochs=2, batch_size=8))
    history = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert np.isfinite(result["loss"]) and history["status"] == "finished"
    assert "gender_accuracy" not in result  # nobody's gender is known: nothing to score
