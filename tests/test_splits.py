import itertools
import random

import pytest

from ser_lib.data import splits
from ser_lib.errors import SplitError
from ser_lib.data.ravdess import gender_of

ALL24 = range(1, 25)


def assert_disjoint_and_complete(split: splits.Split, actors) -> None:
    parts = [set(split.train), set(split.val), set(split.test)]
    for a, b in itertools.combinations(parts, 2):
        assert not a & b, f"{split.describe()} shares actors"
    assert set().union(*parts) == set(actors)


def test_fixed_split_defaults():
    split = splits.fixed_split(ALL24)
    assert split.test == (21, 22, 23, 24) and split.val == (19, 20)
    assert split.train == tuple(range(1, 19))
    assert_disjoint_and_complete(split, ALL24)


def test_fixed_split_with_other_actors_and_errors():
    split = splits.fixed_split(range(1, 21), test=(17, 18, 19, 20), val=(15, 16))
    assert split.train == tuple(range(1, 15))
    with pytest.raises(SplitError, match="test actors 21, 22, 23, 24 are not in the data.*--folds"):
        splits.fixed_split(range(1, 21))
    with pytest.raises(SplitError, match="in both"):
        splits.Split(train=(1, 2), val=(3,), test=(3, 4))
    with pytest.raises(SplitError, match="no training actors"):
        splits.fixed_split((1, 2), test=(1,), val=(2,))


def test_kfold_on_all_24_actors_is_emobox():
    folds = splits.kfold_splits(ALL24)
    assert [f.test for f in folds] == [tuple(sorted(g)) for g in splits.EMOBOX_FOLDS]
    assert sorted(a for f in folds for a in f.test) == list(ALL24)  # every actor tested once


def test_kfold_on_20_actors_is_consecutive_groups_of_four():
    folds = splits.kfold_splits(range(1, 21), k=5)
    assert [f.test for f in folds] == [(1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16),
                                       (17, 18, 19, 20)]
    for fold in folds:
        assert len(fold.val) == 2
        assert {gender_of(a) for a in fold.val} == {"male", "female"}


def test_no_actor_ever_in_two_parts_of_any_split():
    rng = random.Random(0)
    cases = [(list(ALL24), k) for k in (None, 2, 3, 4, 6, 8, 12)]
    for _ in range(40):
        n = rng.randint(4, 24)
        actors = sorted(rng.sample(range(1, 25), n))
        cases.append((actors, rng.randint(2, n)))
    for actors, k in cases:
        folds = splits.kfold_splits(actors, k)
        tested = []
        for fold in folds:
            assert_disjoint_and_complete(fold, actors)
            tested += fold.test
        assert sorted(tested) == sorted(actors)


def test_kfold_errors():
    with pytest.raises(SplitError, match="at least 2 folds"):
        splits.kfold_splits(range(1, 10), k=1)
    with pytest.raises(SplitError, match="need at least"):
        splits.kfold_splits(range(1, 4), k=4)
    loso = splits.kfold_splits(range(1, 4), k=3)  # leave one speaker out still trains on one actor
    assert [f.test for f in loso] == [(1,), (2,), (3,)] and all(len(f.train) == 1 for f in loso)


def test_split_round_trips_through_a_dict():
    split = splits.kfold_splits(ALL24)[2]
    assert splits.Split.from_dict(split.to_dict()) == split


def test_split_selects_rows(small_corpus):
    from ser_lib.data import ravdess

    clips = ravdess.index(small_corpus)
    split = splits.fixed_split(ravdess.actors_of(clips), test=(4,), val=(3,))
    assert set(split.part(clips, "test")["actor"]) == {4}
    assert set(split.part(clips, "train")["actor"]) == {1, 2}
