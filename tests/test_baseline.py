import numpy as np
import pandas as pd

from ser_lib.training import baseline


def _table(actors: int = 6, per_class: int = 6):
    rng = np.random.default_rng(0)
    rows, clips = [], []
    for actor in range(1, actors + 1):
        for emotion in ("neutral", "angry"):
            for _ in range(per_class):
                shift = 3.0 if emotion == "angry" else 0.0
                rows.append({"f0": shift + rng.normal(), "rms": shift + rng.normal()})
                clips.append({"speaker": f"ravdess:{actor:02d}", "emotion": emotion})
    return pd.DataFrame(rows), pd.DataFrame(clips)


def test_speaker_cross_validation_reports_each_folds_test_speakers():
    table, clips = _table()
    result = baseline.cross_validate(table, clips, split="speaker", folds=3)
    assert result["test_speakers"] == [["ravdess:01", "ravdess:02"], ["ravdess:03", "ravdess:04"],
                                       ["ravdess:05", "ravdess:06"]]
    assert len(result["per_fold_uar"]) == 3 and result["uar"] > 0.9  # the classes are well apart
    assert result["confusion"].sum() == len(clips)
    assert baseline.cross_validate(table, clips, split="random", folds=3)["test_speakers"] is None


def test_transfer_scores_another_corpus_cold_and_adapted_over_the_emotions_training_has():
    rng = np.random.default_rng(1)

    def corpus(name: str, speakers: int, offset: float, emotions: tuple[str, ...]):
        rows, clips = [], []
        for s in range(speakers):
            voice = rng.normal(0, 1.5, 2) + offset  # each speaker's own level and pitch, and the room's offset
            for emotion in emotions:
                for _ in range(8):
                    shift = 1.5 if emotion == "angry" else 0.0
                    rows.append(dict(zip(("f0", "rms"), voice + shift + rng.normal(0, 0.4, 2))))
                    clips.append({"speaker": f"{name}:{s}", "emotion": emotion})
        return pd.DataFrame(rows), pd.DataFrame(clips)

    train_table, train_clips = corpus("ravdess", 8, 0.0, ("neutral", "angry"))
    test_table, test_clips = corpus("cremad", 6, 4.0, ("neutral", "angry", "disgust"))
    result = baseline.transfer(train_table, train_clips, test_table, test_clips, C=1.0)
    for protocol in ("cold_start", "adapted"):
        assert set(result[protocol]["recall"]) == {"neutral", "angry"}  # disgust, unknown to training, left out
    # the other room's offset pushes every clip to one side at a cold start; each speaker's statistics remove it
    assert result["adapted"]["uar"] > 0.9 and result["cold_start"]["uar"] < 0.7
    chosen = baseline.transfer(train_table, train_clips, test_table, test_clips)
    assert chosen["adapted"]["C"] in baseline.C_GRID
    none = test_clips.assign(emotion="sad")
    import pytest

    with pytest.raises(ValueError, match="share no emotion"):
        baseline.transfer(train_table, train_clips, test_table, none)
