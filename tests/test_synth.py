import json

import numpy as np
import pytest

from ser_lib.data import corpora, features, synth
from ser_lib.data.corpora import ravdess
from ser_lib.data.corpora.ravdess import ClipName


def _bytes_of(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob("Actor_*/*.wav"))}


def test_same_seed_gives_bit_identical_files_whatever_the_worker_count(tmp_path):
    a = synth.generate(tmp_path / "a", actors=2, seed=3, workers=1, progress=False)
    b = synth.generate(tmp_path / "b", actors=2, seed=3, workers=2, progress=False)
    files_a, files_b = _bytes_of(a), _bytes_of(b)
    assert len(files_a) == 120
    assert files_a == files_b


def test_another_seed_gives_other_audio(tmp_path):
    name = ClipName(3, 1, 5, 2, 1, 1, 1)
    assert not np.array_equal(synth.synthesize(name, seed=0), synth.synthesize(name, seed=1))
    np.testing.assert_array_equal(synth.synthesize(name, seed=0), synth.synthesize(name, seed=0))


def test_layout_and_counts_match_ravdess(small_corpus):
    clips = corpora.index(small_corpus, "synthetic", strict=True)
    assert len(clips) == 240
    per_actor = clips.groupby("actor").size()
    assert (per_actor == 60).all()
    # 8 emotions x 2 intensities (neutral 1) x 2 statements x 2 repetitions
    assert clips.groupby(["emotion", "intensity"]).size().to_dict()[("neutral", "normal")] == 16
    assert ("neutral", "strong") not in clips.groupby(["emotion", "intensity"]).size().to_dict()
    assert clips["duration"].between(1.8, 5.5).all()
    manifest = json.loads((small_corpus / synth.MANIFEST).read_text())
    assert manifest["clips"] == 240 and manifest["seed"] == 0


def test_default_corpus_has_1440_clip_names():
    names = synth.clip_names(24)
    assert len(names) == 1440 and len(set(names)) == 1440
    assert sum(n.actor % 2 for n in names) == 720  # 12 male actors


def test_complete_corpus_is_not_rewritten_but_an_interrupted_one_is(tmp_path):
    root = synth.generate(tmp_path / "c", actors=1, seed=0, progress=False)
    clip = next(root.glob("Actor_01/*.wav"))
    stamp = clip.stat().st_mtime_ns
    synth.generate(root, actors=1, seed=0, progress=False)
    assert clip.stat().st_mtime_ns == stamp
    (root / synth.MANIFEST).unlink()  # as if the first run had been killed before finishing
    clip.write_bytes(b"")
    synth.generate(root, actors=1, seed=0, progress=False)
    assert clip.stat().st_size > 0 and (root / synth.MANIFEST).exists()


def _mean_stats(emotion: int, intensity: int) -> dict[str, float]:
    rows = []
    for actor in (1, 2, 3, 4):
        for statement in (1, 2):
            wave = synth.synthesize(ClipName(3, 1, emotion, intensity, statement, 1, actor), seed=0)
            stats = features.clip_statistics(wave)
            stats["rms_db"] = 20 * np.log10(np.sqrt(np.mean(wave ** 2)))
            rows.append(stats)
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def test_emotions_move_prosody_in_the_literature_directions():
    angry, sad, neutral = _mean_stats(5, 2), _mean_stats(4, 2), _mean_stats(1, 1)
    surprised, calm = _mean_stats(8, 2), _mean_stats(2, 1)
    assert angry["f0_mean"] > neutral["f0_mean"] + 2 > sad["f0_mean"] + 3  # semitones
    assert angry["rms_db"] > neutral["rms_db"] + 5 and sad["rms_db"] < neutral["rms_db"] - 3
    assert sad["active_seconds"] > neutral["active_seconds"] > angry["active_seconds"]
    assert angry["alpha_ratio_db"] > neutral["alpha_ratio_db"] > sad["alpha_ratio_db"]
    assert surprised["f0_final"] > neutral["f0_final"] + 1
    # calm is close to neutral: within 2 semitones and 4 dB
    assert abs(calm["f0_mean"] - neutral["f0_mean"]) < 2 and abs(calm["rms_db"] - neutral["rms_db"]) < 4


def test_examples_one_per_emotion(tmp_path):
    paths = synth.write_examples(tmp_path, actor=2)
    assert [p.name.split("_")[1] for p in paths] == list(ravdess.EMOTIONS.values())
    assert all(ClipName.parse(p.name.split("_")[-1]).actor == 2 for p in paths)


def test_actor_count_is_validated(tmp_path):
    with pytest.raises(ValueError, match="between 1 and 99"):
        synth.generate(tmp_path, actors=0)
