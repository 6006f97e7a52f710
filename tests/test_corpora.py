"""Corpus adapters on small copies laid out and named as the real corpora, and the shared data when present."""
import logging
from pathlib import Path

import pandas as pd
import pytest

import corpus_fixtures as fx
from ser_lib.data import corpora, labels
from ser_lib.errors import DatasetError, SplitError


def kinds(result) -> dict[str, str]:
    return {Path(p.path).name: p.kind for p in result.problems}


def test_the_common_table_has_namespaced_speakers_and_canonical_emotions(tmp_path):
    for name, make in (("cremad", fx.cremad), ("tess", fx.tess), ("savee", fx.savee), ("emodb", fx.emodb)):
        clips = corpora.get(name).scan(make(tmp_path / name)).clips
        assert list(clips.columns[: len(corpora.CLIP_COLUMNS)]) == corpora.CLIP_COLUMNS
        assert set(clips["corpus"]) == {name} and all(s.startswith(f"{name}:") for s in clips["speaker"])
        assert set(clips["emotion"]) <= set(labels.EMOTIONS) and set(clips["emotion"]) == set(
            corpora.get(name).emotions)
        assert set(clips["gender"]) <= {"male", "female"}
        assert (clips["duration"] > 0.5).all()


def test_cremad_names_levels_formats_and_demographics(tmp_path):
    result = corpora.get("cremad").scan(fx.cremad(tmp_path / "cremad"))
    clips = result.clips
    assert len(clips) == 4 * 6 * 2 and set(clips["file"].str[-4:]) == {".wav", "flac"}  # both suffixes
    assert corpora.speakers_of(clips) == ["cremad:1001", "cremad:1002", "cremad:1003", "cremad:1004"]
    assert clips.groupby("speaker")["gender"].first().to_dict() == {
        "cremad:1001": "male", "cremad:1002": "female", "cremad:1003": "male", "cremad:1004": "female"}
    assert set(clips["intensity"]) == {"unspecified", "high"} and set(clips["sentence"]) == {"DFA", "IEO"}
    assert result.problems == [] and result.notes == []  # the CSV is read, not reported


def test_cremad_without_demographics_says_so_and_reports_bad_names(tmp_path):
    root = fx.cremad(tmp_path / "cremad", demographics=False)
    fx.tone(root / "AudioWAV" / "1001_DFA_XYZ_XX.wav", "angry")
    fx.tone(root / "AudioWAV" / "take1.wav", "angry")
    result = corpora.get("cremad").scan(root)
    assert set(result.clips["gender"]) == {"unknown"}
    assert result.notes and "VideoDemographics.csv" in result.notes[0]
    assert kinds(result) == {"1001_DFA_XYZ_XX.wav": "malformed_name", "take1.wav": "malformed_name"}


@pytest.mark.parametrize("flat", [False, True])
def test_tess_in_both_layouts_survives_its_quirks(tmp_path, flat):
    result = corpora.get("tess").scan(fx.tess(tmp_path / "tess", flat=flat))
    clips = result.clips
    assert result.problems == []
    assert corpora.speakers_of(clips) == ["tess:OAF", "tess:YAF"] and set(clips["gender"]) == {"female"}
    assert len(clips) == 2 * 7 * 2 + 3
    assert clips.set_index("file").loc["OA_bite_neutral.wav", "speaker"] == "tess:OAF"  # the OA_ prefix
    assert clips.set_index("file").loc["OAF_bath_neutral.wav", "duration"] > 0.5     # AIFF named .wav
    assert set(clips["sample_rate"]) == {24414, 96000}
    by_word = clips.set_index("file")["emotion"]
    assert by_word["OAF_back_ps.wav"] == "surprised" and by_word["YAF_chain_fear.wav"] == "fearful"


@pytest.mark.parametrize("flat", [False, True])
def test_savee_original_and_flat(tmp_path, flat):
    root = fx.savee(tmp_path / "savee", flat=flat)
    fx.tone(root / ("XX_a01.wav" if flat else "AudioData/XX/a01.wav"), "angry")
    result = corpora.get("savee").scan(root)
    assert corpora.speakers_of(result.clips) == ["savee:DC", "savee:JE", "savee:JK", "savee:KL"]
    assert len(result.clips) == 4 * 7 * 2 and set(result.clips["gender"]) == {"male"}
    assert result.clips.groupby("emotion").size().to_dict()["sad"] == 8  # "sa" is sad, "su" surprise
    assert list(kinds(result).values()) == ["malformed_name"]


def test_emodb_leaves_boredom_out_with_the_reason(tmp_path):
    result = corpora.get("emodb").scan(fx.emodb(tmp_path / "emodb"))
    assert len(result.clips) == 4 * 6 * 2
    assert {p.kind for p in result.problems} == {"no_canonical_emotion"} and len(result.problems) == 4 * 2
    assert result.clips.groupby("speaker")["gender"].first().to_dict() == {
        "emodb:03": "male", "emodb:08": "female", "emodb:09": "female", "emodb:10": "male"}


def test_folder_of_emotions_for_one_or_several_speakers(tmp_path):
    me = tmp_path / "me"
    fx.tone(me / "angry" / "take1.wav", "angry")
    fx.tone(me / "Happiness" / "take2.wav", "happy")       # a synonym, any case
    fx.tone(me / "joyful" / "take3.wav", "happy")          # not an emotion ser_lib knows
    result = corpora.get("folder").scan(me)
    assert list(result.clips["speaker"].unique()) == ["folder:me"] and set(result.clips["gender"]) == {"unknown"}
    assert sorted(result.clips["emotion"]) == ["angry", "happy"] and kinds(result) == {"take3.wav": "no_emotion_folder"}
    group = tmp_path / "group"
    fx.tone(group / "alice" / "sad" / "a.wav", "sad")
    fx.tone(group / "bob" / "calm" / "b.wav", "calm")
    assert corpora.speakers_of(corpora.get("folder").scan(group).clips) == ["folder:alice", "folder:bob"]


def test_folder_as_a_csv(tmp_path):
    fx.tone(tmp_path / "clips" / "a.wav", "sad")
    fx.tone(tmp_path / "clips" / "b.wav", "angry")
    table = tmp_path / "labels.csv"
    table.write_text("path,emotion,speaker,gender\nclips/a.wav,Sadness,ann,female\nclips/b.wav,angry,ann,\n"
                     "clips/c.wav,angry,ann,female\nclips/b.wav,bored,ann,female\nclips,sad,ann,\n")
    result = corpora.get("folder").scan(table)
    assert result.clips[["emotion", "gender"]].values.tolist() == [["sad", "female"], ["angry", "unknown"]]
    assert {p.kind for p in result.problems} == {"missing", "unknown_emotion"}
    assert {p.message for p in result.problems if p.kind == "missing"} == {
        "listed in the CSV but not found", "listed in the CSV, a folder, not an audio file"}
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\nclips/a.wav,sad\n")
    with pytest.raises(DatasetError, match="no column path, emotion, speaker"):
        corpora.get("folder").scan(bad)
    unusable = tmp_path / "unusable.csv"
    unusable.write_text("path,emotion,speaker\nclips/zzz.wav,sad,ann\n")
    with pytest.raises(DatasetError, match=r"unusable.csv holds no usable clips \(your recordings; .*1 files were "):
        corpora.get("folder").scan(unusable)


def test_a_folder_of_another_corpus_says_which_it_looks_like(tmp_path):
    root = fx.cremad(tmp_path / "cremad")
    expected = r"no usable clips .RAVDESS; .*look like CREMA-D: give it as --dataset cremad="
    with pytest.raises(DatasetError, match=expected):
        corpora.scan([corpora.Dataset.parse(f"ravdess={root}")])
    with pytest.raises(DatasetError, match="does not exist .*CREMA-D"):
        corpora.scan([corpora.Dataset.parse(f"cremad={tmp_path / 'nowhere'}")])


def test_a_folder_that_mixes_corpora_is_refused_with_what_it_holds(tmp_path):
    root = fx.cremad(tmp_path / "mixed")
    fx.tone(root / "AudioWAV" / "03-01-05-01-01-01-07.wav", "angry")  # a RAVDESS clip
    fx.tone(root / "AudioWAV" / "DC_a01.wav", "angry")  # a SAVEE clip, flat naming
    fx.tone(root / "AudioWAV" / "take1.wav", "angry")  # no corpus's name: reported, not refused
    expected = (r"mixes corpora: beside its 48 CREMA-D clips, 1 named as RAVDESS's \(e.g. 03-01-05-01-01-01-07.wav\); "
                r"1 named as SAVEE's .*folder of its own")
    with pytest.raises(DatasetError, match=expected):
        corpora.scan([corpora.Dataset.parse(f"cremad={root}")])
    (root / "AudioWAV" / "03-01-05-01-01-01-07.wav").unlink()
    (root / "AudioWAV" / "DC_a01.wav").unlink()
    assert kinds(corpora.scan([corpora.Dataset.parse(f"cremad={root}")])) == {"take1.wav": "malformed_name"}
    ravdess = tmp_path / "ravdess"
    for name in ("03-01-05-01-01-01-01.wav", "03-01-04-01-01-01-01.wav", "1001_DFA_ANG_XX.wav"):
        fx.tone(ravdess / "Actor_01" / name, "angry")
    fx.tone(ravdess / "1002_DFA_SAD_XX.wav", "sad")  # outside any actor folder
    with pytest.raises(DatasetError, match="mixes corpora: beside its 2 RAVDESS clips, 2 named as CREMA-D's"):
        corpora.index(ravdess, "ravdess")  # the form the notebooks and benchmarks use


def test_a_broken_demographics_table_is_named(tmp_path):
    root = fx.cremad(tmp_path / "cremad")
    pd.DataFrame({"ActorID": [1001], "Gender": ["Male"]}).to_csv(root / "VideoDemographics.csv", index=False)
    with pytest.raises(DatasetError, match="VideoDemographics.csv is not CREMA-D's.*ActorID .* and Sex; it has "
                                           "ActorID, Gender"):
        corpora.get("cremad").scan(root)
    (root / "VideoDemographics.csv").write_text("")
    with pytest.raises(DatasetError, match="VideoDemographics.csv cannot be read as CSV .*remove it"):
        corpora.get("cremad").scan(root)


def test_dataset_names_are_checked(tmp_path):
    with pytest.raises(DatasetError, match="unknown corpus 'iemocap'.*ravdess, synthetic, cremad"):
        corpora.Dataset.parse("iemocap=/data")
    for text in ("cremad", "cremad=", "cremad= "):  # never the built-in synthetic corpus instead
        with pytest.raises(DatasetError, match="give the folder of cremad as cremad=PATH"):
            corpora.Dataset.parse(text)
    root = fx.cremad(tmp_path / "cremad")
    with pytest.raises(DatasetError, match="given twice"):
        corpora.scan([corpora.Dataset.parse(f"cremad={root}")] * 2)


def test_several_corpora_make_one_table_and_subsets_say_what_is_missing(tmp_path, small_corpus, caplog):
    both = corpora.scan([corpora.Dataset.parse(f"ravdess={small_corpus}"),
                         corpora.Dataset.parse(f"cremad={fx.cremad(tmp_path / 'cremad')}")])
    clips = both.clips
    assert set(clips["corpus"]) == {"ravdess", "cremad"} and clips["speaker"].nunique() == 8
    assert clips[clips["corpus"] == "cremad"]["actor"].isna().all()  # RAVDESS's own columns stay its own
    with caplog.at_level(logging.WARNING):
        assert labels.for_data("all", clips) == list(labels.EMOTIONS)  # RAVDESS teaches calm and surprise
    assert "cremad has no calm, surprised" in caplog.text and "--emotion_subset shared" in caplog.text
    with pytest.raises(SplitError, match="asks for calm, surprised, which no dataset"):
        labels.for_data("all", clips[clips["corpus"] == "cremad"])
    assert labels.for_data("shared", clips) == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert labels.for_data("basic4", clips) == ["neutral", "happy", "sad", "angry"]


def test_summary_and_one_clip_per_emotion_work_for_any_corpus(tmp_path):
    result = corpora.get("cremad").scan(fx.cremad(tmp_path / "cremad"))
    text = corpora.format_summary(result, "cremad")
    assert "48 clips in cremad: 4 speakers (cremad 4; 2 male, 2 female, 0 unknown)" in text
    examples = corpora.one_per_emotion(result.clips, speaker=1002)
    assert list(examples["emotion"]) == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert set(examples["speaker"]) == {"cremad:1002"} and set(examples["intensity"]) == {"high"}


@pytest.mark.shared_data
def test_the_shared_cremad_copy(shared_cremad):
    result = corpora.get("cremad").scan(shared_cremad)
    clips = result.clips
    assert len(clips) == 2458 and clips["speaker"].nunique() == 30 and result.problems == []
    assert set(clips["gender"]) == {"male", "female"} and (clips["sample_rate"] == 16000).all()
    assert pd.Series(clips["file"]).str.endswith(".flac").all()


def test_speakers_with_fewer_than_three_clips_are_named_by_index_and_train(tmp_path, caplog):
    from ser_lib.training import TrainConfig
    from ser_lib.training.setup import scan_dataset

    group = tmp_path / "group"
    for k, emotion in enumerate(("sad", "angry", "happy")):
        fx.tone(group / "alice" / emotion / f"a{k}.wav", emotion)
    fx.tone(group / "bob" / "sad" / "b.wav", "sad")
    assert "Speakers with fewer than 3 clips (their own statistics cannot be estimated; the training data's stand " \
           "in): folder:bob\n" in corpora.format_summary(corpora.get("folder").scan(group))
    with caplog.at_level(logging.WARNING):
        _, clips, _ = scan_dataset(TrainConfig(dataset=(f"folder={group}",), emotion_subset="shared", progress=False))
    assert len(clips) == 4 and "fewer than 3 clips" in caplog.text and "folder:bob" in caplog.text
    assert "folder:alice" not in caplog.text
