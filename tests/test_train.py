import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from ser_lib import training
from ser_lib.model import checkpoint
from ser_lib.errors import ConfigError, DatasetError, DeviceError, SplitError, TrainingError
from ser_lib.inference import Predictor
from ser_lib.model import SERModel
from conftest import small_train_config


def test_spectrogram_model_learns_on_the_synthetic_corpus(corpus8, tmp_path):
    config = small_train_config(corpus8, tmp_path / "run", epochs=8)
    result = training.train(config)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(history) == 8
    assert history["train_loss"].iloc[-1] < 0.8 * history["train_loss"].iloc[0]
    assert history["val_uar"].max() > 0.6  # chance is 0.25 for basic4
    assert result["uar"] > 0.5 and 0 <= result["accuracy"] <= 1
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["split"]["test"] == ["ravdess:08"] and manifest["split"]["val"] == ["ravdess:07"]
    assert manifest["clips"] == {"train": 6 * 28, "val": 28, "test": 28}
    assert manifest["seed"] == 0 and "torch" in manifest["versions"] and manifest["test_metrics"]["uar"] == result["uar"]


def test_checkpoints_load_weights_only_and_rebuild_their_model(corpus8, tmp_path, tiny_backbone):
    config = small_train_config(corpus8, tmp_path / "run", backbone=str(tiny_backbone), quick=True)
    training.train(config)
    raw = torch.load(tmp_path / "run" / "best_model.pt", weights_only=True)
    assert raw["labels"] == ["neutral", "happy", "sad", "angry"]
    assert raw["split"]["test"] == ["ravdess:08"] and raw["train_config"]["emotion_subset"] == "basic4"
    assert "emotion_codes" not in raw and "emotion_subset" not in raw  # the label list is the only label set
    assert raw["model_config"]["backbone_config"]["model_type"] == "wav2vec2"
    assert raw["normalizer"]["mel"]["std"] and "test" in raw["metrics"]
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert {"optimizer", "scheduler", "epoch", "history"} <= set(last)
    shutil.rmtree(tiny_backbone.parent / "moved", ignore_errors=True)
    loaded = checkpoint.load(tmp_path / "run" / "best_model.pt")
    assert isinstance(loaded.model, SERModel) and not loaded.model.training
    assert loaded.normalizer.mel.std.min() > 0
    assert loaded.normalizer.speaker_norm and loaded.model.config.descriptor_dim > 0  # the defaults
    prediction = Predictor(loaded, torch.device("cpu")).predict(np.random.default_rng(0).normal(0, 0.1, 16000), 16000)
    assert prediction.probs.shape == (4,) and prediction.probs.sum() == pytest.approx(1, abs=1e-5)


def test_kfold_writes_a_summary(corpus8, tmp_path):
    config = small_train_config(corpus8, tmp_path / "cv", folds=2, quick=True)
    summary = training.train(config)
    assert summary["folds"] == 2 and set(summary["uar"]) == {"mean", "std"}
    assert [r["split"] for r in summary["per_fold"]] == ["fold1", "fold2"]
    assert [r["test_speakers"] for r in summary["per_fold"]] == [[f"ravdess:0{a}" for a in (1, 2, 3, 4)],
                                                                  [f"ravdess:0{a}" for a in (5, 6, 7, 8)]]
    for fold in ("fold1", "fold2"):
        assert (tmp_path / "cv" / fold / "best_model.pt").exists()
    folds = [json.loads((tmp_path / "cv" / f / "manifest.json").read_text())["split"] for f in ("fold1", "fold2")]
    assert folds == [{**f, "test": r["test_speakers"]} for f, r in zip(folds, summary["per_fold"])]
    assert json.loads((tmp_path / "cv" / "summary.json").read_text())["uar"]["mean"] == summary["uar"]["mean"]
    # --resume on finished folds trains nothing and gives back the same results, validation UAR included,
    # also for a folder whose manifest predates the recorded val_uar (read back from history.csv)
    manifest = tmp_path / "cv" / "fold2" / "manifest.json"
    old = json.loads(manifest.read_text())
    del old["val_uar"]
    manifest.write_text(json.dumps(old))
    again = training.train(dataclasses.replace(config, resume=True))
    assert again["per_fold"] == summary["per_fold"] and all(
        r["val_uar"] is not None for r in again["per_fold"])


def _cli_args(root, out, epochs):
    return [sys.executable, "-m", "ser_lib", "train", "--dataset_root", str(root), "--output_dir", str(out),
            "--backbone", "none", "--emotion_subset", "basic4", "--epochs", str(epochs), "--batch_size", "4",
            "--d_model", "64", "--cnn_channels", "8,16,32", "--context_layers", "1", "--test_speakers", "8",
            "--val_speakers", "7", "--max_seconds", "2.5", "--seed", "3", "--no-progress"]


# With --average_epochs 1 the kill falls before the average is saved (from epoch 2 on): the resumed run must
# restore the raw weights, the optimiser and the unsaved average from last.pt, then save the average. (Without
# an average, resuming is the same minus the average: tests/test_run_safety.py resumes such runs in-process.)
def test_resume_after_sigkill_matches_an_uninterrupted_run(corpus8, tmp_path):
    extra = ["--average_epochs", "1"]
    epochs = 3
    reference = tmp_path / "reference"
    done = subprocess.run(_cli_args(corpus8, reference, epochs) + extra, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    run = tmp_path / "killed"
    proc = subprocess.Popen(_cli_args(corpus8, run, epochs) + extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = run / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and not (history.exists() and len(pd.read_csv(history)) >= 1):
        time.sleep(0.05)
    time.sleep(0.4)  # well inside the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    rows_at_kill = len(pd.read_csv(history))
    assert rows_at_kill < epochs and (run / "last.pt").exists()
    killed = json.loads((run / "manifest.json").read_text())
    assert killed["status"] == "running" and killed["epochs_run"] == rows_at_kill  # as it was when killed

    resumed = subprocess.run(_cli_args(corpus8, run, epochs) + extra + ["--resume"], capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    a, b = pd.read_csv(reference / "history.csv"), pd.read_csv(run / "history.csv")
    assert len(a) == len(b) == epochs
    columns = [c for c in a.columns if c != "seconds"]
    pd.testing.assert_frame_equal(a[columns], b[columns], atol=1e-5, rtol=1e-4)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and len(manifest["sessions"]) == 2
    assert manifest["wall_seconds"] >= manifest["sessions"][-1]["seconds"] + killed["wall_seconds"] - 0.2


def test_bad_inputs_get_clear_errors(corpus8, tmp_path):
    with pytest.raises(DatasetError, match="holds no usable clips .RAVDESS; expected: Actor_01"):
        training.train(small_train_config(tmp_path, tmp_path / "o1"))
    with pytest.raises(DatasetError, match="does not exist"):
        training.train(small_train_config(tmp_path / "nowhere", tmp_path / "o2"))
    with pytest.raises(ConfigError, match="larger than the 168 training clips"):
        training.train(small_train_config(corpus8, tmp_path / "o3", batch_size=500))
    with pytest.raises(ConfigError, match="--cold_start_noise is a share of the cold-start clips"):
        training.train(small_train_config(corpus8, tmp_path / "o5", cold_start_noise=1.5))
    with pytest.raises(ConfigError, match="--average_epochs must not be negative"):
        training.train(small_train_config(corpus8, tmp_path / "o7", average_epochs=-1))
    with pytest.raises(ConfigError, match="--descriptor_version must be one of 2, 3, got 1"):  # numbers as choices
        training.train(small_train_config(corpus8, tmp_path / "o6", descriptor_version=1))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot write to the output folder"):
        training.train(small_train_config(corpus8, blocker / "run"))
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            training.train(small_train_config(corpus8, tmp_path / "o4", device="cuda"))


def test_out_of_memory_names_the_fixes(corpus8, tmp_path, monkeypatch):
    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(SERModel, "forward", exhausted)
    with pytest.raises(TrainingError, match=r"(?s)out of memory.*--batch_size 8.*--max_seconds 1.5") as caught:
        training.train(small_train_config(corpus8, tmp_path / "run", mixed_precision="no"))
    assert "--mixed_precision auto" in str(caught.value) and "--freeze backbone" not in str(caught.value)


def test_a_class_without_training_clips_is_refused(corpus8, tmp_path):
    root = tmp_path / "no-sad"
    shutil.copytree(corpus8, root)
    for actor in range(1, 7):
        for wav in (root / f"Actor_{actor:02d}").glob("03-01-04-*.wav"):
            wav.unlink()
    with pytest.raises(SplitError, match="no training clips for sad"):
        training.train(small_train_config(root, tmp_path / "run"))


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(corpus8, tmp_path, monkeypatch):
    original = SERModel.forward
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if self.training:
            calls["n"] += 1
            if calls["n"] > 11:  # the first epoch (11 batches) trains normally
                return out._replace(emotion_logits=out.emotion_logits * float("nan"))
        return out

    monkeypatch.setattr(SERModel, "forward", poisoned)
    with pytest.raises(TrainingError, match="loss became nan at epoch 2"):
        training.train(small_train_config(corpus8, tmp_path / "run", epochs=3))
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert last["epoch"] == 0
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values() if t.is_floating_point())
    assert (tmp_path / "run" / "best_model.pt").exists()


def test_frozen_backbone_layers_are_cached_and_the_encoder_is_skipped(corpus8, tmp_path, tiny_backbone, monkeypatch):
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    from ser_lib.model import backbone as backbone_module

    calls = {"n": 0}
    original = backbone_module.Backbone.layers

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(backbone_module.Backbone, "layers", counting)
    config = small_train_config(corpus8, tmp_path / "run", backbone=str(tiny_backbone), freeze="backbone", epochs=2)
    training.train(config)
    cached = list((tmp_path / "cache" / "encoder-states").glob("*.npy"))
    assert len(cached) == 8 * 28  # every clip of the basic4 subset, once
    assert calls["n"] == len(cached)  # training and evaluation used the cache, not the encoder
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(history) == 2


def test_cli_stops_before_training_when_the_backbone_cannot_be_fetched(corpus8, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = tmp_path / "run"
    start = time.time()
    run = subprocess.run([sys.executable, "-m", "ser_lib", "train", "--dataset_root", str(corpus8),
                          "--output_dir", str(out), "--backbone", "facebook/wav2vec2-base", "--test_speakers", "8",
                          "--val_speakers", "7"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 2
    assert "--backbone none" in run.stderr and "Traceback" not in run.stderr
    assert time.time() - start < 60
    assert not (out / "history.csv").exists()


def test_length_buckets_batch_clips_of_similar_length_and_keep_every_clip():
    from ser_lib.data.dataset import EpochSampler

    n, batch = 203, 8
    lengths = np.random.default_rng(0).integers(8000, 48000, n)
    bucketed = EpochSampler(n, shuffle=True, seed=0, lengths=lengths, batch_size=batch)
    plain = EpochSampler(n, shuffle=True, seed=0)
    order = list(bucketed)
    assert sorted(order) == list(range(n)) and order == list(bucketed)  # every clip once, reproducibly

    def spread(order):
        return np.mean([np.ptp(lengths[order[i:i + batch]]) for i in range(0, n - n % batch, batch)])

    assert spread(order) < 0.2 * spread(list(plain))
    bucketed.set_epoch(1)
    assert list(bucketed) != order
    batches = [order[i:i + batch] for i in range(0, n, batch)]
    assert all(np.all(np.diff(lengths[b]) >= 0) for b in batches)  # each cut from a pool sorted by length
    assert len(batches[-1]) == n % batch  # the short batch stays last


def test_mixup_mixes_training_batches_only(corpus8, tmp_path, monkeypatch):
    seen = []
    forward = SERModel.forward

    def recording(self, *args, mix=None, **kwargs):
        seen.append((self.training, mix))
        return forward(self, *args, mix=mix, **kwargs)

    monkeypatch.setattr(SERModel, "forward", recording)
    training.train(small_train_config(corpus8, tmp_path / "mixed", mixup=1.0, quick=True))
    mixed = [mix for train, mix in seen if train]
    assert mixed and all(mix is not None for mix in mixed)
    assert all(sorted(order.tolist()) == list(range(len(order))) and 0 <= weight <= 1 for order, weight in mixed)
    assert len({round(weight, 6) for _, weight in mixed}) > 1  # a new weight for each batch
    assert all(mix is None for train, mix in seen if not train)  # validation and test see whole clips
    seen.clear()
    training.train(small_train_config(corpus8, tmp_path / "plain", quick=True))
    assert seen and all(mix is None for _, mix in seen)
    with pytest.raises(ConfigError, match="--mixup must not be negative"):
        training.train(small_train_config(corpus8, tmp_path / "bad", mixup=-1.0))
