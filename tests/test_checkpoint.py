"""Checkpoints: validated on loading, and the previous format still loads and predicts the same."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ser_lib.data import synth
from ser_lib.data.corpora.ravdess import ClipName
from ser_lib.errors import CheckpointError
from ser_lib.inference import Predictor
from ser_lib.model import checkpoint

DATA = Path(__file__).resolve().parent / "data"


def test_format_1_checkpoints_load_and_predict_as_before():
    """v1_checkpoint.pt was written by the previous ser_lib (mel statistics in the model's buffers,
    the label set in five places); its predictions were recorded with that version."""
    reference = json.loads((DATA / "v1_checkpoint.json").read_text())
    predictor = Predictor.from_checkpoint(DATA / "v1_checkpoint.pt", device="cpu")
    assert predictor.labels == ["neutral", "happy", "sad", "angry"]
    clips = [synth.synthesize(ClipName(3, 1, e, 1 if e == 1 else 2, 1, 1, 4), seed=0) for e in (1, 3, 4, 5)]
    np.testing.assert_allclose(predictor.predict(clips[3], 16000).probs, reference["angry_before_adapt"], atol=1e-5)
    predictor.adapt(clips, 16000)
    blended = predictor.predict(clips[3], 16000).probs
    # recorded when a speaker's statistics, once 3 s and 3 clips were heard, were their own alone
    predictor.speaker.prior_frames = predictor.speaker.prior_clips = 0
    np.testing.assert_allclose(predictor.predict(clips[3], 16000).probs, reference["angry_after_adapt"], atol=1e-4)
    assert not np.allclose(blended, reference["angry_after_adapt"], atol=1e-3)  # today they are blended


@pytest.mark.parametrize("change, message", [
    (lambda p: p.pop("labels"), "its 'labels' is missing"),
    (lambda p: p.update(labels=["neutral"]), "not a list of distinct emotion names"),
    (lambda p: p.update(labels=["neutral", "happy", "sad"]), "3 labels for a model with 4 emotion outputs"),
    (lambda p: p.update(labels=["sad", "sad", "happy", "angry"]), "not a list of distinct emotion names"),
    (lambda p: p.pop("normalizer"), "its 'normalizer' is missing"),
    (lambda p: p["normalizer"].update(descriptor_version=9), r"descriptors \(version 9\) are not ones this ser_lib"),
])
def test_a_damaged_payload_is_explained_not_a_traceback(trained_run, tmp_path, change, message):
    payload = torch.load(trained_run / "best_model.pt", weights_only=True)
    change(payload)
    damaged = tmp_path / "damaged.pt"
    torch.save(payload, damaged)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(damaged)


@pytest.mark.parametrize("content", [b"model weights, honest\n", bytes(range(256)) * 4])
def test_a_file_that_is_no_checkpoint_gets_no_unsafe_advice(tmp_path, content):
    path = tmp_path / "best_model.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load(path)
    text = str(caught.value)
    assert "is not a ser-course checkpoint: it is not a PyTorch file at all" in text
    assert "weights_only" not in text and "(101)" not in text


def test_a_truncated_checkpoint_says_so(trained_run, tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((trained_run / "best_model.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="incomplete or damaged PyTorch file"):
        checkpoint.load(truncated)


def test_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"format": checkpoint.FORMAT, "payload": Path("x")}, path)  # a class instance: needs unpickling
    with pytest.raises(CheckpointError, match="pickled Python objects, which are never loaded"):
        checkpoint.load(path)
