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
