"""The baseline ladder: paired steps with their intervals, the rungs' options, one set of folds."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ser_lib.reports.metrics import paired_interval
from ser_lib.training import ladder


def test_each_rung_adds_one_idea_in_ladder_order():
    names = [r.name for r in ladder.RUNGS]
    assert names[0] == "chance" and names[-1] == "default"
    models = [r.options for r in ladder.RUNGS if r.kind == "model"]
    assert models[0] == {"speaker_norm": False, "descriptors": False, "context_layers": 0, "pooling": "mean"}
    for before, after in zip(models, models[1:]):  # every model rung changes what the one before had
        assert before != after
    assert not models[-3]["speaker_norm"] and models[-2]["speaker_norm"]
    assert models[-2]["descriptor_set"] == "ser" and models[-1]["descriptor_set"] == "ser+voice"
    from ser_lib.training import TrainConfig  # the last rung is the library's default model

    default = TrainConfig()
    assert all(getattr(default, name) == value for name, value in models[-1].items())
    with pytest.raises(KeyError, match="rungs: chance"):
        ladder.rung("transformer")


def test_steps_are_paired_differences_with_t_intervals():
    uar = pd.DataFrame({"fold1": [0.125, 0.40, 0.50], "fold2": [0.125, 0.30, 0.42],
                        "fold3": [0.125, 0.35, 0.43], "fold4": [0.125, 0.45, 0.52]}, index=["a", "b", "c"])
    table = ladder.steps(uar)
    assert np.isnan(table.loc["a", "gain"])
    diff = np.array([0.10, 0.12, 0.08, 0.07])
    assert table.loc["c", "gain"] == pytest.approx(diff.mean())
    expected = stats.ttest_1samp(diff, 0).confidence_interval(0.95)
    assert table.loc["c", "95% CI low"] == pytest.approx(expected.low)
    assert table.loc["c", "95% CI high"] == pytest.approx(expected.high)
    assert table.loc["c", "folds better"] == 4
    # the folds differ a lot more than the step does: pairing still shows the step
    unpaired = stats.ttest_ind(uar.loc["c"], uar.loc["b"], equal_var=False).confidence_interval(0.95)
    assert unpaired.low < 0 < table.loc["c", "95% CI low"]
    assert np.isnan(paired_interval([0.1])[0])


def test_a_quick_run_keeps_each_rungs_own_options(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(ladder, "train", lambda config: seen.append(config) or {})
    ladder.train_rung(ladder.rung("cnn"), f"ravdess={tmp_path}", tmp_path / "runs", folds=5, epochs=3,
                      context_layers=1, d_model=64, max_seconds=2.0)
    config = seen[0]
    assert (config.context_layers, config.pooling, config.d_model, config.max_seconds) == (0, "mean", 64, 2.0)
    # a RAVDESS folder is given as benchmarks/accuracy.py gives it, into its folder layout: the runs are shared
    assert config.dataset_root == str(tmp_path.resolve()) and config.dataset == ()
    assert Path(config.output_dir) == tmp_path / "runs" / "cnn" / "all-5folds"
    ladder.train_rung(ladder.rung("plain"), f"synthetic={tmp_path}", tmp_path / "runs")
    assert seen[1].dataset == (f"synthetic={tmp_path.resolve()}",) and seen[1].dataset_root is None


def test_ladder_scores_every_rung_on_the_same_folds(corpus8, tmp_path):
    data = f"synthetic={corpus8}"
    uar = ladder.run(data, tmp_path, subset="basic4", folds=2, epochs=1, rungs=("chance", "descriptors_lr", "cnn"),
                     progress=False, d_model=32, cnn_channels=(8, 16, 32), max_seconds=1.5)
    assert list(uar.columns) == ["fold1", "fold2"]
    assert list(uar.index) == [ladder.rung(n).label for n in ("chance", "descriptors_lr", "cnn")]
    assert np.allclose(uar.iloc[0], 0.25)
    assert ((uar.iloc[1:] >= 0) & (uar.iloc[1:] <= 1)).all().all()
    summary = json.loads((tmp_path / "cnn" / "basic4-2folds" / "summary.json").read_text())
    assert [f["test_speakers"] for f in summary["per_fold"]] == [
        ["synthetic:01", "synthetic:02", "synthetic:03", "synthetic:04"],
        ["synthetic:05", "synthetic:06", "synthetic:07", "synthetic:08"]]
    # a second ladder reuses the finished folds instead of training again
    manifest = tmp_path / "cnn" / "basic4-2folds" / "fold1" / "manifest.json"
    before = manifest.stat().st_mtime_ns
    again = ladder.run(data, tmp_path, subset="basic4", folds=2, epochs=1, rungs=("cnn",), progress=False,
                       d_model=32, cnn_channels=(8, 16, 32), max_seconds=1.5)
    assert manifest.stat().st_mtime_ns == before
    assert np.allclose(again.iloc[0], uar.iloc[2])
