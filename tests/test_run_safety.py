"""Run folders under mistakes and interruptions: nothing replaced, mixed or lost by accident."""
import dataclasses
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from ser_lib import training
from ser_lib.errors import ConfigError, DatasetError, TrainingError
from ser_lib.training.run_folder import RunLock
from conftest import small_train_config


def snapshot(folder):
    """Every file below ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_run_into_a_used_folder_is_refused_and_changes_nothing(corpus8, tmp_path):
    out = tmp_path / "run"
    training.train(small_train_config(corpus8, out, quick=True))
    (out / "notes.txt").write_text("my notes")
    (out / "fold1_backup").mkdir()  # a folder of the user's that only looks like a fold
    (out / "fold1_backup" / "last.pt").write_bytes(b"a copy kept by hand")
    before = snapshot(out)
    with pytest.raises(ConfigError, match="already holds a run .*--resume.*--overwrite"):
        training.train(small_train_config(corpus8, out, quick=True, seed=1))
    assert snapshot(out) == before
    # --overwrite replaces the run's files, and only those
    training.train(small_train_config(corpus8, out, quick=True, seed=1, overwrite=True))
    assert json.loads((out / "manifest.json").read_text())["seed"] == 1
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "fold1_backup" / "last.pt").read_bytes() == b"a copy kept by hand"


def test_the_manifest_says_running_then_interrupted_and_resume_adds_up_the_time(corpus8, tmp_path, interrupted,
                                                                                  trained_run):
    out = tmp_path / "run"
    config = small_train_config(corpus8, out, epochs=3, average_epochs=0.0)  # no average: the raw weights resumed
    interrupted(config, 1)
    stopped = json.loads((out / "manifest.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["epochs_run"] == 1
    assert stopped["config"]["seed"] == 0 and stopped["split"]["test"] == ["ravdess:08"]
    assert (out / "last.pt").exists()  # the finished epoch is kept for --resume
    training.train(dataclasses.replace(config, resume=True))
    done = json.loads((out / "manifest.json").read_text())
    assert done["status"] == "finished" and done["epochs_run"] == 3 and len(done["sessions"]) == 2
    assert done["wall_seconds"] == pytest.approx(sum(s["seconds"] for s in done["sessions"]), abs=0.2)
    assert done["sessions"][0]["seconds"] == pytest.approx(stopped["wall_seconds"], abs=0.2)
    # as if never interrupted: trained_run is the same configuration in one go (its average, 3 epochs long, is
    # never saved in a 3-epoch run: tests/test_averaging.py)
    whole, resumed = (pd.read_csv(folder / "history.csv").drop(columns="seconds") for folder in (trained_run, out))
    pd.testing.assert_frame_equal(whole, resumed, atol=1e-5, rtol=1e-4)


def test_resume_refuses_options_that_change_the_run_and_records_harmless_ones(corpus8, tmp_path, interrupted):
    out = tmp_path / "run"
    config = small_train_config(corpus8, out, epochs=2)
    interrupted(config, 1)
    before = snapshot(out)
    changed = dataclasses.replace(config, resume=True, test_speakers=("7",), val_speakers=("6",), head_lr=1e-2)
    with pytest.raises(ConfigError) as caught:
        training.train(changed)
    message = str(caught.value)
    assert "--test_speakers: was ['8'], now ['7']" in message and "--val_speakers: was ['7'], now ['6']" in message
    assert "--head_lr" in message and "--epochs" in message  # what may change is listed too
    assert snapshot(out) == before
    # more epochs and another worker count are allowed: the run is extended, and the change recorded;
    # so is --corpus_stats on one corpus, where it changes nothing
    result = training.train(dataclasses.replace(config, resume=True, epochs=3, num_workers=1, corpus_stats=False,
                                                output_dir=str(out) + "/"))  # the same folder, spelt otherwise
    done = json.loads((out / "manifest.json").read_text())
    assert done["epochs_run"] == 3 and result["best_epoch"] <= 3
    assert done["sessions"][-1]["changed"] == {"epochs": {"was": 2, "now": 3}, "num_workers": {"was": 0, "now": 1},
                                               "corpus_stats": {"was": True, "now": False}}


def test_a_finished_run_resumed_reports_its_own_result(corpus8, tmp_path):
    out = tmp_path / "run"
    config = small_train_config(corpus8, out, quick=True)
    first = training.train(config)
    before = snapshot(out)
    assert training.train(dataclasses.replace(config, resume=True)) == first
    assert snapshot(out) == before


def test_without_validation_speakers_the_last_epoch_is_kept_and_no_uar_is_invented(corpus8, tmp_path):
    result = training.train(small_train_config(corpus8, tmp_path / "run", epochs=2, val_speakers=()))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert result["val_uar"] is None and manifest["val_uar"] is None
    assert result["best_epoch"] == manifest["best_epoch"] == manifest["epochs_run"] == 2


def test_a_locked_folder_is_refused(corpus8, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):  # as another training process holds it
        with pytest.raises(TrainingError, match="is in use: training process pid"):
            training.train(small_train_config(corpus8, out, quick=True))
    assert not (out / "manifest.json").exists()


def test_a_failed_start_leaves_no_folder_behind(corpus8, tmp_path):
    with pytest.raises(ConfigError, match="larger than the 168 training clips"):
        training.train(small_train_config(corpus8, tmp_path / "run", batch_size=500))
    assert not (tmp_path / "run").exists()


def test_a_missing_dataset_is_reported_before_an_unfetchable_encoder(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    run = subprocess.run([sys.executable, "-m", "ser_lib", "train", "--dataset_root", str(tmp_path / "nowhere"),
                          "--output_dir", str(tmp_path / "run"), "--backbone", "facebook/wav2vec2-base"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 2 and "dataset root" in run.stderr and "does not exist" in run.stderr
    assert "pretrained encoder" not in run.stderr and not (tmp_path / "run").exists()
    with pytest.raises(DatasetError):
        training.train(small_train_config(tmp_path / "nowhere", tmp_path / "run2"))


def test_selection_window_prefers_a_good_stretch_to_one_lucky_epoch():
    from ser_lib.training.run_folder import Progress

    curve = [0.3, 0.7, 0.5, 0.6, 0.62, 0.64, 0.6]
    single, smoothed = Progress(), Progress(window=3)
    for epoch, uar in enumerate(curve):
        single.record({"epoch": epoch, "val_uar": uar})
        smoothed.record({"epoch": epoch, "val_uar": uar})
    assert single.best_epoch == 1 and single.best_uar == 0.7
    assert smoothed.best_epoch == 5 and smoothed.best_uar == pytest.approx((0.6 + 0.62 + 0.64) / 3)
    resumed = Progress.from_dict(smoothed.to_dict(), window=3)
    assert resumed.record({"epoch": 7, "val_uar": 0.55}) is False  # (0.64 + 0.6 + 0.55) / 3 < 0.62
    assert resumed.record({"epoch": 8, "val_uar": 0.75}) is True  # (0.6 + 0.55 + 0.75) / 3 > 0.62


def test_a_run_saved_before_an_option_existed_resumes_only_with_what_it_did():
    from ser_lib.training.config import BEFORE_OPTION, TrainConfig
    from ser_lib.training.run_folder import _change_lines, _harmless

    saved = {k: v for k, v in TrainConfig().to_dict().items() if k not in BEFORE_OPTION}
    changes = TrainConfig().changes_from(saved)
    assert changes == {"trim_floor_db": (None, 12.0), "cold_start_noise": (0.0, 0.5), "bucket_by_length": (False, True),
                       "average_epochs": (0.0, 3.0), "corpus_stats": (False, True),
                       "descriptor_set": ("ser", "ser+voice")}  # not a missing raw_state_dict
    old = TrainConfig(trim_floor_db=None, cold_start_noise=0.0, bucket_by_length=False, average_epochs=0.0,
                      corpus_stats=False, descriptor_set="ser")
    assert old.changes_from(saved) == {}
    # a field added to a group of options (--augment_tilt_db) counts as what the run did before it existed
    saved["augment_settings"] = {k: v for k, v in saved["augment_settings"].items() if k != "tilt_db"}
    assert old.changes_from(saved) == {}
    tilted = dataclasses.replace(old, augment_settings=dataclasses.replace(old.augment_settings, tilt_db=3.0))
    assert list(tilted.changes_from(saved)) == ["augment_settings"]
    # the refusal names the field's own option
    assert _change_lines(tilted.changes_from(saved)) == ["--augment_tilt_db: was 0.0, now 3.0"]
    # --corpus_stats matters to a run of several corpora only
    two = TrainConfig(dataset=("ravdess=/a", "cremad=/b"))
    assert not _harmless(two, "corpus_stats") and _harmless(TrainConfig(dataset=("ravdess=/a",)), "corpus_stats")
    assert _harmless(dataclasses.replace(two, speaker_norm=False), "corpus_stats") and not _harmless(two, "seed")
    assert _harmless(dataclasses.replace(two, test_corpus="cremad"), "corpus_stats")  # trained on RAVDESS alone
    three = TrainConfig(dataset=("ravdess=/a", "cremad=/b", "tess=/c"), test_corpus="tess")
    assert not _harmless(three, "corpus_stats")
    # --descriptor_set matters to a model with descriptors only
    assert not _harmless(TrainConfig(), "descriptor_set")
    assert _harmless(TrainConfig(descriptors=False), "descriptor_set")
