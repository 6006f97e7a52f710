import shutil
from pathlib import Path

import pytest

from ser_lib.data import corpora, labels, splits
from ser_lib.data.corpora import ravdess
from ser_lib.errors import DatasetError, SplitError

RAVDESS = corpora.get("ravdess")
from conftest import run_cli, write_tone


def test_parse_decodes_every_field():
    name = ravdess.ClipName.parse("03-01-06-01-02-01-12.wav")
    assert (name.modality, name.channel, name.emotion, name.intensity, name.statement,
            name.repetition, name.actor) == (3, 1, 6, 1, 2, 1, 12)
    assert name.is_speech and name.gender == "female"
    assert ravdess.EMOTIONS[name.emotion] == "fearful"
    assert name.filename() == "03-01-06-01-02-01-12.wav"
    assert ravdess.ClipName.parse("03-01-05-02-01-01-07").gender == "male"


@pytest.mark.parametrize("bad, reason", [
    ("03-01-06-01-02-01.wav", "seven"),
    ("03-01-09-01-02-01-12.wav", "emotion"),
    ("03-01-01-02-01-01-12.wav", "neutral has no strong"),
    ("03-01-03-03-01-01-12.wav", "intensity"),
    ("04-01-03-01-01-01-12.wav", "modality"),
    ("03-01-03-01-03-01-12.wav", "statement"),
    ("recording.wav", "seven"),
])
def test_parse_rejects_malformed_names_with_the_reason(bad, reason):
    with pytest.raises(ValueError, match=reason):
        ravdess.ClipName.parse(bad)


def test_index_of_small_synthetic_corpus(small_corpus):
    clips = corpora.index(small_corpus, "ravdess")
    assert len(clips) == 4 * 60
    assert list(clips.columns) == corpora.CLIP_COLUMNS + list(RAVDESS.columns)
    assert sorted(clips["actor"].unique()) == [1, 2, 3, 4]
    assert corpora.speakers_of(clips) == ["ravdess:01", "ravdess:02", "ravdess:03", "ravdess:04"]
    assert clips.groupby("gender")["speaker"].nunique().to_dict() == {"female": 2, "male": 2}
    per_emotion = clips["emotion"].value_counts().to_dict()
    assert per_emotion["neutral"] == 4 * 4 and per_emotion["angry"] == 4 * 8
    assert (clips["sample_rate"] == 16000).all() and (clips["duration"] > 1.5).all()
    assert all(Path(p).is_file() for p in clips["path"])


@pytest.mark.shared_data
def test_index_of_shared_real_data(shared_data):
    result = RAVDESS.scan(shared_data)
    clips = result.clips
    assert len(clips) == 1200 and result.problems == []  # its README.md is passed over, not a problem
    assert clips["speaker"].nunique() == 20
    assert clips.groupby("gender")["speaker"].nunique().to_dict() == {"female": 10, "male": 10}
    assert int((clips["channels"] == 2).sum()) == 5


def test_missing_and_empty_roots_give_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist.*download"):
        corpora.index(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="holds no usable clips .RAVDESS; expected: Actor_01/"):
        corpora.index(tmp_path)
    (tmp_path / "Actor_01").mkdir()
    with pytest.raises(DatasetError, match="holds no usable clips .RAVDESS"):
        corpora.index(tmp_path)


def test_actor_folders_one_level_down_are_found(tmp_path, small_corpus):
    shutil.copytree(small_corpus / "Actor_01", tmp_path / "Audio_Speech_Actors_01-24" / "Actor_01")
    clips = corpora.index(tmp_path, "ravdess")  # the folder the archive was unpacked into works too
    assert len(clips) == 60 and set(clips["speaker"]) == {"ravdess:01"}


@pytest.fixture
def messy_root(tmp_path, small_corpus):
    """Two good actors plus one file of every kind of problem."""
    root = tmp_path / "messy"
    for actor in ("Actor_01", "Actor_02"):
        shutil.copytree(small_corpus / actor, root / actor)
    a1 = root / "Actor_01"
    write_tone(a1 / "my-recording.wav")                       # malformed name
    write_tone(a1 / "03-01-05-01-01-01-02.wav")               # actor 02 in Actor_01
    write_tone(a1 / "03-02-05-01-01-01-01.wav")               # song
    (a1 / "01-01-05-01-01-01-01.mp4").write_bytes(b"\x00" * 64)  # video
    (a1 / "notes.txt").write_text("session notes")            # a document: passed over
    (a1 / "take.m4a").write_bytes(b"\x00" * 64)               # audio soundfile cannot read: not audio
    (a1 / "03-01-05-01-01-02-01.wav").unlink()
    (a1 / "03-01-05-01-01-02-01.wav").write_bytes(b"")        # zero bytes
    (a1 / "03-01-05-01-02-02-01.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)  # unreadable
    return root


EXPECTED_KINDS = {
    "my-recording.wav": "malformed_name",
    "03-01-05-01-01-01-02.wav": "actor_mismatch",
    "03-02-05-01-01-01-01.wav": "not_speech",
    "01-01-05-01-01-01-01.mp4": "video",
    "take.m4a": "not_audio",
    "03-01-05-01-01-02-01.wav": "empty",
    "03-01-05-01-02-02-01.wav": "unreadable",
}


def test_every_bad_file_is_reported_never_silently_dropped(messy_root):
    result = RAVDESS.scan(messy_root)
    kinds = {Path(p.path).name: p.kind for p in result.problems}
    assert kinds == EXPECTED_KINDS
    m4a = next(p.message for p in result.problems if p.path.endswith("take.m4a"))
    assert "a format ser_lib does not read (.m4a" in m4a and "ffmpeg -i in.m4a out.wav" in m4a
    # the two broken speech files are out of the table, everything good is in
    assert len(result.clips) == 120 - 2
    rejected = {str(messy_root / "Actor_01" / name) for name in EXPECTED_KINDS}
    assert {p.path for p in result.problems} == rejected
    assert not rejected & set(result.clips["path"])
    with pytest.warns(UserWarning, match="7 files .* are not in the clip table") as record:
        clips = corpora.index(messy_root)
    assert len(clips) == 118
    message = str(record[0].message)
    assert all(name in message for name in EXPECTED_KINDS)
    with pytest.raises(DatasetError, match="actor_mismatch"):
        corpora.index(messy_root, strict=True)


def test_song_files_are_kept_when_asked(messy_root):
    result = corpora.RAVDESS(speech_only=False).scan(messy_root)
    assert "03-02-05-01-01-01-01.wav" in set(result.clips["file"])


def test_cli_index_prints_summary_and_problems(messy_root):
    run = run_cli("index", "--dataset_root", str(messy_root))
    assert run.returncode == 0, run.stderr
    assert "118 clips" in run.stdout and "2 speakers (ravdess 2; 1 male, 1 female, 0 unknown)" in run.stdout
    assert "7 problems" in run.stdout and "[actor_mismatch]" in run.stdout
    strict = run_cli("index", "--dataset_root", str(messy_root), "--strict")
    assert strict.returncode == 1


def test_cli_index_missing_root_is_a_message_not_a_traceback(tmp_path):
    run = run_cli("index", "--dataset_root", str(tmp_path / "x"))
    assert run.returncode == 2
    assert run.stderr.startswith("error: dataset root") and "Traceback" not in run.stderr


def test_cli_index_refuses_a_csv_it_cannot_write_before_scanning(messy_root, tmp_path):
    (tmp_path / "notes.txt").write_text("")
    for csv, why in ((tmp_path, "is a folder: give a file name"), (tmp_path / "notes.txt" / "clips.csv",
                                                                   "notes.txt is a file, not a folder")):
        run = run_cli("index", "--dataset_root", str(messy_root), "--csv", str(csv))
        assert run.returncode == 2 and why in run.stderr and "Traceback" not in run.stderr
        assert "clips" not in run.stdout  # refused before the folder was scanned


@pytest.mark.parametrize("subset, codes", [
    ("all", {1, 2, 3, 4, 5, 6, 7, 8}),
    ("basic6", {1, 3, 4, 5, 6, 8}),
    ("basic4", {1, 3, 4, 5}),
])
def test_subsets_select_the_right_emotions(small_corpus, subset, codes):
    clips = corpora.index(small_corpus, "ravdess")
    names = labels.subset_labels(subset)
    assert names == [ravdess.EMOTIONS[c] for c in sorted(codes)]  # canonical order = RAVDESS code order
    chosen = labels.select(clips, names)
    assert set(chosen["emotion_code"]) == codes
    assert len(chosen) == int(clips["emotion_code"].isin(codes).sum())


def test_unknown_subset_is_rejected():
    with pytest.raises(SplitError, match="basic4"):
        labels.subset_labels("basic5")


def test_speaker_list_parsing():
    assert splits.parse_speakers("21,22") == ("21", "22")
    assert splits.parse_speakers("19-20,24") == ("19", "20", "24")
    assert splits.parse_speakers("ravdess:01-03,cremad:1001") == ("ravdess:01", "ravdess:02", "ravdess:03",
                                                                  "cremad:1001")
    assert splits.parse_speakers("none") == ()
    with pytest.raises(SplitError, match="cannot read speaker list"):
        splits.parse_speakers("a,b")


def test_copies_of_a_recording_count_once_and_are_reported(small_corpus, tmp_path):
    import soundfile as sf

    from ser_lib.data import audio

    root = tmp_path / "data"
    shutil.copytree(small_corpus / "Actor_01", root / "Actor_01")
    clip = root / "Actor_01" / "03-01-05-02-01-01-01.wav"
    (root / "Actor_01" / "backup").mkdir()
    shutil.copy(clip, root / "Actor_01" / "backup" / clip.name)  # a copy in a sub-folder
    other = root / "Actor_01" / "03-01-04-02-01-01-01.wav"
    sf.write(str(other.with_suffix(".ogg")), audio.load(other), 16000)  # the same clip in a second format
    result = RAVDESS.scan(root)
    assert len(result.clips) == 60  # each recording once
    copies = sorted(p.path for p in result.problems if p.kind == "duplicate")
    assert copies == [str(other.with_suffix(".ogg")), str(root / "Actor_01" / "backup" / clip.name)]
    assert {str(clip.resolve()), str(other.resolve())} <= set(result.clips["path"])  # the originals are used


def test_a_truncated_wav_is_reported_not_taken_for_a_shorter_clip(small_corpus, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(small_corpus / "Actor_01", root / "Actor_01")
    clip = root / "Actor_01" / "03-01-05-02-01-01-01.wav"
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])  # an interrupted download
    result = RAVDESS.scan(root)
    assert len(result.clips) == 59 and str(clip.resolve()) not in set(result.clips["path"])
    [problem] = [p for p in result.problems if p.kind == "truncated"]
    assert problem.path == str(clip) and "header announces" in problem.message and "incomplete download" in problem.message
