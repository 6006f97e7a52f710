import itertools
import random

import pytest

from ser_lib.data import splits
from ser_lib.data.corpora.ravdess import gender_of
from ser_lib.errors import SplitError


def rav(actors, corpus="ravdess"):
    return [f"{corpus}:{a:02d}" for a in actors]


def genders(speakers):
    """RAVDESS's rule for any numbered speaker here (odd male, even female)."""
    return {s: gender_of(int(s.split(":")[1])) for s in speakers}


ALL24 = rav(range(1, 25))


def kfold(speakers, k=None, n_val=2):
    return splits.kfold_splits(speakers, genders(speakers), k, n_val)


def assert_disjoint_and_complete(split: splits.Split, speakers) -> None:
    parts = [set(split.train), set(split.val), set(split.test)]
    for a, b in itertools.combinations(parts, 2):
        assert not a & b, f"{split.describe()} shares speakers"
    assert set().union(*parts) == set(speakers)


def test_fixed_split_defaults():
    split = splits.fixed_split(ALL24)
    assert split.test == tuple(rav((21, 22, 23, 24))) and split.val == tuple(rav((19, 20)))
    assert split.train == tuple(rav(range(1, 19)))
    assert_disjoint_and_complete(split, ALL24)


def test_fixed_split_with_other_speakers_and_errors():
    split = splits.fixed_split(rav(range(1, 21)), test=("17", "18", "19", "20"), val=("ravdess:15", "16"))
    assert split.train == tuple(rav(range(1, 15)))
    with pytest.raises(SplitError, match="test speakers 21, 22, 23, 24 are not in the data.*--folds"):
        splits.fixed_split(rav(range(1, 21)))
    with pytest.raises(SplitError, match="in both"):
        splits.Split(train=("a:1", "a:2"), val=("a:3",), test=("a:3", "a:4"))
    with pytest.raises(SplitError, match="no training speakers"):
        splits.fixed_split(rav((1, 2)), test=("1",), val=("2",))
    # a bare number is ambiguous when two corpora have that speaker
    both = rav((1, 2, 3)) + rav((1, 2, 3), "synthetic")
    with pytest.raises(SplitError, match="test speakers 3 is in several corpora .*say which"):
        splits.fixed_split(both, test=("3",), val=())
    assert splits.fixed_split(both, test=("synthetic:03",), val=()).test == ("synthetic:03",)


def test_kfold_on_all_24_actors_is_emobox():
    folds = kfold(ALL24)
    assert [f.test for f in folds] == [tuple(rav(sorted(g))) for g in splits.EMOBOX_FOLDS]
    assert sorted(s for f in folds for s in f.test) == sorted(ALL24)  # every actor tested once


def test_kfold_on_20_actors_is_consecutive_groups_of_four():
    folds = kfold(rav(range(1, 21)), k=5)
    assert [f.test for f in folds] == [tuple(rav(range(i, i + 4))) for i in (1, 5, 9, 13, 17)]
    for fold in folds:
        assert len(fold.val) == 2
        assert {gender_of(int(s.split(":")[1])) for s in fold.val} == {"male", "female"}


def test_kfold_over_two_corpora_tests_a_part_of_each_in_every_fold():
    speakers = rav(range(1, 11)) + [f"cremad:{n}" for n in range(1001, 1016)]
    folds = kfold(speakers, k=5)
    for fold in folds:
        assert_disjoint_and_complete(fold, speakers)
        assert len([s for s in fold.test if s.startswith("ravdess:")]) == 2
        assert len([s for s in fold.test if s.startswith("cremad:")]) == 3
        assert {s.split(":")[0] for s in fold.val} == {"ravdess", "cremad"} and len(fold.val) == 4
    assert sorted(s for f in folds for s in f.test) == sorted(speakers)


def test_a_held_out_corpus_tests_on_all_its_speakers():
    speakers = rav(range(1, 9)) + [f"cremad:{n}" for n in range(1001, 1005)]
    split = splits.corpus_split(speakers, genders(speakers), "cremad")
    assert split.test == tuple(f"cremad:{n}" for n in range(1001, 1005)) and split.name == "test-cremad"
    assert len(split.val) == 2 and all(s.startswith("ravdess:") for s in split.val + split.train)
    assert_disjoint_and_complete(split, speakers)
    with pytest.raises(SplitError, match="only corpus"):
        splits.corpus_split(rav(range(1, 9)), genders(rav(range(1, 9))), "ravdess")
    with pytest.raises(SplitError, match="no speakers of tess"):
        splits.corpus_split(speakers, genders(speakers), "tess")


def test_no_speaker_ever_in_two_parts_of_any_split():
    rng = random.Random(0)
    cases = [(ALL24, k) for k in (None, 2, 3, 4, 6, 8, 12)]
    for _ in range(40):
        n = rng.randint(4, 24)
        speakers = rav(sorted(rng.sample(range(1, 25), n)))
        cases.append((speakers, rng.randint(2, n)))
    for speakers, k in cases:
        tested = []
        for fold in kfold(speakers, k):
            assert_disjoint_and_complete(fold, speakers)
            tested += fold.test
        assert sorted(tested) == sorted(speakers)


def test_kfold_errors():
    with pytest.raises(SplitError, match="at least 2 folds"):
        kfold(rav(range(1, 10)), k=1)
    with pytest.raises(SplitError, match="need at least"):
        kfold(rav(range(1, 4)), k=4)
    loso = kfold(rav(range(1, 4)), k=3)  # leave one speaker out still trains on one speaker
    assert [f.test for f in loso] == [(s,) for s in rav(range(1, 4))] and all(len(f.train) == 1 for f in loso)


def test_split_round_trips_through_a_dict():
    split = kfold(ALL24)[2]
    assert splits.Split.from_dict(split.to_dict()) == split
