import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import (accuracy_score, f1_score, precision_recall_fscore_support, recall_score,
                             roc_auc_score)

from ser_lib import training
from ser_lib.model import checkpoint
from ser_lib.reports import evaluation, metrics as report_metrics
from ser_lib.reports.predictions import Predictions
from ser_lib.errors import CheckpointError, ConfigError, SplitError
from conftest import run_cli, small_train_config

LABELS = ["neutral", "happy", "sad", "angry", "fearful"]


def fixed_predictions(seed=0, n=120):
    rng = np.random.default_rng(seed)
    y_true = rng.choice([0, 1, 2, 4], size=n)  # class 3 (angry) never appears in the test set
    logits = rng.normal(size=(n, 5))
    logits[np.arange(n), y_true] += 1.5  # better than chance, not perfect
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y_true, probs


def test_metrics_match_scikit_learn_including_an_absent_class():
    y_true, probs = fixed_predictions()
    y_pred = probs.argmax(1)
    assert 3 in set(y_pred)  # the absent class is still predicted sometimes
    m = report_metrics.compute_metrics(y_true, probs, LABELS)
    present = [0, 1, 2, 4]
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["uar"] == pytest.approx(recall_score(y_true, y_pred, labels=present, average="macro"))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=present, average="macro"))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(5), zero_division=0)
    for k, label in enumerate(LABELS):
        row = m["per_class"][label]
        assert row["support"] == s[k]
        assert row["precision"] == pytest.approx(p[k])
        if k == 3:
            assert row["recall"] is None and row["f1"] is None and row["roc_auc"] is None
        else:
            assert row["recall"] == pytest.approx(r[k]) and row["f1"] == pytest.approx(f[k])
            assert row["roc_auc"] == pytest.approx(roc_auc_score(y_true == k, probs[:, k]))
    assert m["roc_auc_macro"] == pytest.approx(np.mean([roc_auc_score(y_true == k, probs[:, k]) for k in present]))
    assert m["classes_without_test_clips"] == ["angry"]
    assert np.asarray(m["confusion_matrix"]).sum() == len(y_true)


def test_expected_calibration_error_by_hand():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    # bin of 0.9: accuracy 0.5, confidence 0.9; bin of 0.6: accuracy 1.0, confidence 0.6
    ece, table = report_metrics.expected_calibration_error(probs, y, bins=10)
    assert ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert table["count"].sum() == 4


def test_report_says_n_a_for_the_absent_class(tmp_path):
    y_true, probs = fixed_predictions()
    clips = pd.DataFrame({"file": [f"f{i}.wav" for i in range(len(y_true))], "path": "x", "corpus": "ravdess",
                          "speaker": "ravdess:21",
                          "gender": "male", "emotion": [LABELS[k] for k in y_true], "intensity": "normal",
                          "statement": 1, "repetition": 1})
    pred = Predictions(clips, probs, y_true, LABELS)
    metrics = evaluation.write_evaluation(pred, tmp_path, model_path="m.pt", datasets=["ravdess=d"],
                                          speakers=["ravdess:21"])
    report = (tmp_path / "report.md").read_text()
    assert "| angry | 0.0000 | n/a | n/a | n/a | 0 |" in report
    assert "No test clips for: angry" in report
    assert json.loads((tmp_path / "metrics.json").read_text())["per_class"]["angry"]["recall"] is None
    assert metrics["n_clips"] == 120


def _headline(report: str, name: str) -> float:
    line = next(line for line in report.splitlines() if line.startswith(f"| {name} |"))
    return float(line.split("|")[2])


def test_end_to_end_evaluation_is_complete_and_consistent(trained_run, tmp_path):
    out = tmp_path / "eval"
    run = run_cli("evaluate", "--model_path", str(trained_run / "best_model.pt"), "--output_dir", str(out),
                  "--no_progress")
    assert run.returncode == 0, run.stderr
    for name in ("metrics.json", "predictions.csv", "report.md", "confusion_matrix.png", "roc.png",
                 "per_class.png", "reliability.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    predictions = pd.read_csv(out / "predictions.csv")
    assert metrics["speakers"] == ["ravdess:08"] and metrics["n_clips"] == 28 == len(predictions)
    assert np.asarray(metrics["confusion_matrix"]).sum() == metrics["n_clips"]
    assert metrics["accuracy"] == pytest.approx(predictions["correct"].mean())
    report = (out / "report.md").read_text()
    assert _headline(report, "accuracy (WA)") == pytest.approx(metrics["accuracy"], abs=5e-5)
    assert _headline(report, "UAR") == pytest.approx(metrics["uar"], abs=5e-5)
    for section in ("Accuracy by intensity", "Accuracy by gender", "Accuracy by statement", "Accuracy by speaker",
                    "Most confused pairs", "Most confident mistakes", "![confusion matrix](confusion_matrix.png)"):
        assert section in report
    # the numbers agree with what training recorded for the same test speaker
    manifest = json.loads((trained_run / "manifest.json").read_text())
    assert metrics["uar"] == pytest.approx(manifest["test_metrics"]["uar"], abs=1e-6)


def test_kfold_folder_gets_a_summary_and_pooled_confusion(corpus8, tmp_path):
    run_dir = tmp_path / "cv"
    trained = training.train(small_train_config(corpus8, run_dir, folds=2, quick=True))
    summary = evaluation.evaluate_folds(run_dir, progress=False)
    assert summary["folds"] == 2 and set(summary["uar"]) == {"mean", "std"}
    assert np.asarray(summary["pooled"]["confusion_matrix"]).sum() == 8 * 28  # every speaker tested once
    # one summary.json schema: training's and evaluation's rows name the same folds and test speakers
    assert [(r["split"], r["test_speakers"]) for r in summary["per_fold"]] == \
        [(r["split"], r["test_speakers"]) for r in trained["per_fold"]]
    assert set(trained) - {"per_fold"} <= set(summary) - {"per_fold", "pooled"}
    for name in ("summary.json", "summary.csv", "summary.md", "pooled/report.md", "pooled/confusion_matrix.png",
                 "pooled/roc.png", "pooled/per_class.png"):
        assert (run_dir / "evaluation" / name).exists()
    pooled = json.loads((run_dir / "evaluation" / "pooled" / "metrics.json").read_text())
    per_fold = [json.loads((run_dir / f / "evaluation" / "metrics.json").read_text()) for f in ("fold1", "fold2")]
    assert pooled["n_clips"] == 8 * 28
    np.testing.assert_array_equal(pooled["confusion_matrix"], np.sum([m["confusion_matrix"] for m in per_fold], 0))
    assert sorted(pooled["speakers"]) == sorted(s for f in summary["per_fold"] for s in f["test_speakers"])
    assert (run_dir / "fold1" / "evaluation" / "report.md").exists()
    assert "mean ± std" in (run_dir / "evaluation" / "summary.md").read_text()


def test_bad_checkpoints_get_clear_errors(trained_run, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a ser-course checkpoint: it is not a PyTorch file at all"):
        checkpoint.load(junk)
    payload = torch.load(trained_run / "best_model.pt", weights_only=True)
    payload["format_version"] = 99
    old = tmp_path / "future.pt"
    torch.save(payload, old)
    with pytest.raises(CheckpointError, match="format version 99"):
        checkpoint.load(old)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((trained_run / "best_model.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError):
        checkpoint.load(truncated)
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "missing.pt")


def test_label_set_mismatch_and_missing_speakers(trained_run, corpus8, tmp_path):
    model = trained_run / "best_model.pt"
    with pytest.raises(CheckpointError, match="predicts 4 classes .* asks for neutral, calm"):
        evaluation.evaluate_checkpoint(model, emotion_subset="all", progress=False)
    partial = tmp_path / "partial"
    shutil.copytree(corpus8 / "Actor_01", partial / "Actor_01")
    with pytest.raises(SplitError, match="test speakers of the checkpoint's split ravdess:08 are not in the data"):
        evaluation.evaluate_checkpoint(model, [f"ravdess={partial}"], progress=False)


def test_unloadable_audio_is_listed_not_dropped_silently(trained_run, corpus8, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(corpus8 / "Actor_08", root / "Actor_08")
    broken = root / "Actor_08" / "03-01-05-02-01-01-08.wav"
    data = bytearray(broken.read_bytes())
    broken.write_bytes(bytes(data[:44]) + bytes(len(data) - 44))  # valid header, all-zero samples
    metrics = evaluation.evaluate_checkpoint(trained_run / "best_model.pt", [f"ravdess={root}"],
                                           output_dir=tmp_path / "eval", progress=False).metrics
    assert metrics["n_clips"] == 27
    assert [f["path"] for f in metrics["failed_files"]] == [str(broken.resolve())]
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "Files that could not be loaded" in report and broken.name in report


def test_evaluating_training_speakers_says_so_and_earlier_evaluations_are_kept(trained_run, tmp_path):
    model = trained_run / "best_model.pt"
    result = evaluation.evaluate_checkpoint(model, speakers=["7", "8"], progress=False)  # 7 chose the epoch
    assert result.folder == trained_run / "evaluation-speakers-07-08"  # not the test speakers' evaluation/
    report = (result.folder / "report.md").read_text()
    assert "not speaker-independent" in report and "Speakers ravdess:07 were used to train the model" in report
    assert "Speaker-independent evaluation" not in report and result.metrics["leaked_speakers"] == ["ravdess:07"]
    before = {p.name: p.read_bytes() for p in result.folder.iterdir()}
    with pytest.raises(ConfigError, match="already holds an evaluation .* or replace it with --overwrite"):
        evaluation.evaluate_checkpoint(model, speakers=["7", "8"], progress=False)
    assert {p.name: p.read_bytes() for p in result.folder.iterdir()} == before
    cli = ["evaluate", "--model_path", str(model), "--speakers", "7,8", "--no_progress"]
    refused = run_cli(*cli)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr and "Traceback" not in refused.stderr
    replaced = run_cli(*cli, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    clean = evaluation.evaluate_checkpoint(model, progress=False, output_dir=tmp_path / "own")  # its test speaker
    assert "Speaker-independent evaluation of" in (clean.folder / "report.md").read_text()


def test_an_ensemble_scores_the_mean_of_its_models_probabilities(trained_run, second_run, tmp_path):
    first = tmp_path / "seed0" / "best_model.pt"
    first.parent.mkdir()
    shutil.copy(trained_run / "best_model.pt", first)
    other = second_run
    alone = [evaluation.evaluate_checkpoint(m, progress=False, output_dir=tmp_path / f"alone{k}")
             for k, m in enumerate((first, other / "best_model.pt"))]
    assert not np.allclose(alone[0].predictions.probs, alone[1].predictions.probs)  # two different models
    # a run folder stands for its best_model.pt; --model_path may also be repeated
    run = run_cli("evaluate", "--model_path", str(first), "--model_path", str(other), "--no_progress")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ensemble of 2 models: 1 speakers, 28 clips")
    folder = first.parent / "evaluation-ensemble-2"  # beside the first model, never over its own evaluation
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["model_path"] == [str(first), str(other / "best_model.pt")]
    table = pd.read_csv(folder / "predictions.csv")
    labels = alone[0].predictions.labels
    mean = (alone[0].predictions.probs + alone[1].predictions.probs) / 2
    np.testing.assert_allclose(table[[f"p_{label}" for label in labels]].to_numpy(), mean, atol=1e-6)
    y = alone[0].predictions.y_true
    assert metrics["uar"] == pytest.approx(report_metrics.compute_metrics(y, mean, labels)["uar"])
    cold = [a.by_protocol["none"].probs for a in alone]  # every protocol is averaged, the cold start too
    cold_uar = report_metrics.compute_metrics(y, (cold[0] + cold[1]) / 2, labels)["uar"]
    assert metrics["protocols"]["cold_start"]["uar"] == pytest.approx(cold_uar)
    assert "an ensemble of 2 models (`" in (folder / "report.md").read_text()


def test_an_ensemble_of_models_with_other_classes_is_refused(trained_run, corpus8, tmp_path):
    model = trained_run / "best_model.pt"
    six = tmp_path / "six"
    training.train(small_train_config(corpus8, six, emotion_subset="basic6", quick=True))
    with pytest.raises(CheckpointError, match="an ensemble's models must share their classes"):
        evaluation.evaluate_checkpoint([model, six], progress=False, output_dir=tmp_path / "refused")
    with pytest.raises(ConfigError, match="is given twice"):
        evaluation.evaluate_checkpoint([model, trained_run], progress=False, output_dir=tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    cv = tmp_path / "cv"
    training.train(small_train_config(corpus8, cv, folds=2, quick=True))
    run = run_cli("evaluate", "--model_path", str(trained_run), str(cv), "--no_progress")
    assert run.returncode == 2 and "is a K-fold run folder" in run.stderr and "Traceback" not in run.stderr
