"""eGeMAPS through openSMILE: the functionals, the baseline on them, and the model's descriptor sets."""
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser_lib.data import egemaps, features
from ser_lib.data.audio import AudioSettings
from ser_lib.training import baseline
from conftest import descriptors_match_clip_by_clip

SR = 16000


def _voice(f0: float, seconds: float = 1.5, sr: int = SR) -> np.ndarray:
    """A steady voiced sound: harmonics of ``f0`` with a falling spectrum, and a little noise."""
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 20) if f0 * k < sr / 2)
    rng = np.random.default_rng(0)
    return (0.1 * wave / np.abs(wave).max() + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


def test_functionals_are_the_88_egemaps_values_and_follow_the_pitch():
    names = egemaps.names()
    assert len(names) == 88 and names[0] == "F0semitoneFrom27.5Hz_sma3nz_amean"
    low, high = egemaps.functionals(_voice(120.0), SR), egemaps.functionals(_voice(240.0), SR)
    assert low.shape == (88,) and np.isfinite(low).all()
    semitones = lambda f0: 12 * np.log2(f0 / 27.5)  # noqa: E731  (openSMILE's F0 scale)
    assert abs(low[0] - semitones(120.0)) < 1.0 and abs(high[0] - semitones(240.0)) < 1.0
    # any rate, and clips too short for openSMILE's frames still give 88 finite values
    at44 = egemaps.functionals(_voice(120.0, sr=44100), 44100)
    assert abs(at44[0] - low[0]) < 0.5
    short = egemaps.functionals(_voice(120.0, seconds=0.02), SR)
    assert short.shape == (88,) and np.isfinite(short).all()


def test_feature_table_of_egemaps_is_cached_and_reads_the_file_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    rows = []
    for k, (f0, sr) in enumerate([(110.0, 16000), (220.0, 48000)]):
        path = tmp_path / f"clip{k}.wav"
        sf.write(str(path), _voice(f0, sr=sr), sr)
        rows.append({"path": str(path), "speaker": "folder:a", "emotion": "neutral"})
    clips = pd.DataFrame(rows)
    table = baseline.feature_table(clips, feature_set="egemaps")
    assert list(table.columns) == list(egemaps.names()) and len(table) == 2
    assert table.iloc[1, 0] - table.iloc[0, 0] == pytest.approx(12.0, abs=1.0)  # one octave apart
    calls = []
    monkeypatch.setattr(baseline, "_clip_egemaps", lambda path: calls.append(path))
    again = baseline.feature_table(clips, feature_set="egemaps")
    assert calls == [] and np.allclose(again.to_numpy(), table.to_numpy())  # from the cache
    with pytest.raises(ValueError, match="unknown feature set"):
        baseline.feature_table(clips, feature_set="compare2016")


def test_svm_with_c_chosen_inside_the_training_speakers():
    rng = np.random.default_rng(0)
    rows, clips = [], []
    for actor in range(1, 7):
        for emotion in ("neutral", "angry"):
            for _ in range(6):
                shift = 2.0 if emotion == "angry" else 0.0
                rows.append({"a": shift + rng.normal(), "b": rng.normal()})
                clips.append({"speaker": f"ravdess:{actor:02d}", "emotion": emotion})
    table, clips = pd.DataFrame(rows), pd.DataFrame(clips)
    result = baseline.cross_validate(table, clips, folds=3, C=None, classifier="svm")
    assert result["uar"] > 0.8 and len(result["chosen_C"]) == 3
    assert set(result["chosen_C"]) <= set(baseline.C_GRID)
    fixed = baseline.cross_validate(table, clips, folds=3, C=0.5, classifier="logistic")
    assert fixed["chosen_C"] == [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="unknown classifier"):
        baseline.cross_validate(table, clips, folds=3, classifier="forest")


def test_descriptor_sets_concatenate_and_match_one_clip(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    ser, gemaps = features.descriptor_names("ser"), features.descriptor_names("egemaps")
    both = features.descriptor_names("ser+egemaps")
    assert len(gemaps) == 88 and both == ser + gemaps and not set(ser) & set(gemaps)
    waves = [_voice(150.0, 2.0), _voice(200.0, 2.5)]
    matrix, paths = descriptors_match_clip_by_clip(waves, tmp_path, "ser+egemaps", rtol=1e-5)
    alone = features.descriptor_matrix(paths, waves, AudioSettings(), workers=1, descriptor_set="egemaps")
    np.testing.assert_allclose(matrix[:, len(ser):], alone)
    with pytest.raises(ValueError, match="unknown descriptor set"):
        features.descriptor_names("mfcc")


def test_model_trains_on_egemaps_descriptors_and_its_checkpoint_says_so(corpus8, tmp_path):
    from conftest import small_train_config

    from ser_lib import training
    from ser_lib.inference import Predictor
    from ser_lib.model import checkpoint as ckpt_io

    out = tmp_path / "run"
    training.train(small_train_config(corpus8, out, epochs=1, descriptor_set="egemaps"))
    loaded = ckpt_io.load(out / "best_model.pt")
    assert loaded.model.config.descriptor_dim == 88
    assert loaded.normalizer.descriptor_set == "egemaps"
    assert loaded.normalizer.descriptor_names == features.descriptor_names("egemaps")
    predictor = Predictor.from_checkpoint(out / "best_model.pt", device="cpu")
    clip = sorted((corpus8 / "Actor_08").glob("*.wav"))[0]
    prediction = predictor.predict_file(clip)
    assert prediction.probs.shape == (4,) and abs(prediction.probs.sum() - 1) < 1e-5
    data = ckpt_io.read(out / "best_model.pt")
    data["normalizer"].pop("descriptor_set")  # a checkpoint from before descriptor sets: the project's descriptors
    from ser_lib.errors import CheckpointError
    from ser_lib.model.normalizer import InputNormalizer

    with pytest.raises(CheckpointError, match="not the ones this ser_lib computes"):
        InputNormalizer.from_dict(data["normalizer"], loaded.model.config.mel, loaded.audio)


def test_a_checkpoint_from_before_descriptor_sets_loads_with_the_project_descriptors(corpus8, tmp_path):
    from conftest import small_train_config

    from ser_lib import training
    from ser_lib.model import checkpoint as ckpt_io
    from ser_lib.model.normalizer import InputNormalizer

    training.train(small_train_config(corpus8, tmp_path, epochs=1, descriptor_set="ser"))
    data = ckpt_io.read(tmp_path / "best_model.pt")
    assert data["normalizer"].pop("descriptor_set") == "ser"
    loaded = ckpt_io.load(tmp_path / "best_model.pt")
    old = InputNormalizer.from_dict(data["normalizer"], loaded.model.config.mel, loaded.audio)
    assert old.descriptor_set == "ser" and old.descriptor_names == features.descriptor_names("ser")
