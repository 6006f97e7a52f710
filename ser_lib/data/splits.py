"""Speaker-independent splits: every actor belongs to exactly one part of a split.

Random clip-level splits put the same voice in training and test data and inflate RAVDESS
accuracy by 10-30 points, so ser_lib only splits by actor (notebook 01 shows why).

- :func:`fixed_split`: test actors 21-24 and validation actors 19-20 by default, the rest train.
- :func:`kfold_splits`: actor-wise K-fold. With all 24 actors and K=6 the folds are those of the
  EmoBox benchmark, so results compare with the literature; otherwise K groups of consecutive
  actors. Validation actors of a fold come from its training actors.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from ..errors import SplitError
from .ravdess import gender_of

DEFAULT_TEST_ACTORS: tuple[int, ...] = (21, 22, 23, 24)
DEFAULT_VAL_ACTORS: tuple[int, ...] = (19, 20)

#: Test actors of the six EmoBox folds for RAVDESS (Ma et al., 2024).
EMOBOX_FOLDS: tuple[tuple[int, ...], ...] = (
    (1, 11, 20, 21),
    (4, 10, 12, 14),
    (8, 9, 19, 23),
    (3, 5, 7, 24),
    (2, 15, 16, 18),
    (6, 13, 17, 22),
)


@dataclass(frozen=True)
class Split:
    """Actor numbers of the three parts of a split."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    name: str = "fixed"

    def __post_init__(self) -> None:
        parts = {"train": set(self.train), "val": set(self.val), "test": set(self.test)}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = parts[a] & parts[b]
            if shared:
                raise SplitError(f"split {self.name!r}: actors {sorted(shared)} are in both {a} and {b}")
        if not self.train:
            raise SplitError(f"split {self.name!r} has no training actors")

    def part(self, clips: pd.DataFrame, name: str) -> pd.DataFrame:
        """Rows of ``clips`` whose actor is in part ``name`` (``train``, ``val`` or ``test``)."""
        actors = getattr(self, name)
        return clips[clips["actor"].isin(actors)].reset_index(drop=True)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Split":
        return cls(tuple(data["train"]), tuple(data["val"]), tuple(data["test"]), data.get("name", "fixed"))

    def describe(self) -> str:
        fmt = lambda actors: " ".join(f"{a:02d}" for a in actors) or "-"  # noqa: E731
        return f"{self.name}: train [{fmt(self.train)}] val [{fmt(self.val)}] test [{fmt(self.test)}]"


def fixed_split(actors: Iterable[int], test: Sequence[int] | None = DEFAULT_TEST_ACTORS,
                val: Sequence[int] | None = DEFAULT_VAL_ACTORS, name: str = "fixed") -> Split:
    """Test and validation actors as given, every other available actor trains.

    Raises :class:`SplitError` when an asked actor is absent, so that a dataset without actors
    21-24 (such as the development copy with actors 01-20) fails loudly instead of testing on nothing.
    """
    available = sorted(set(int(a) for a in actors))
    test = tuple(sorted(set(test or ())))
    val = tuple(sorted(set(val or ())))
    for part, option, wanted in (("test", "test", test), ("validation", "val", val)):
        require_actors(wanted, available, f"{part} actors",
                       f"Choose others with --{option}_actors, or use --folds K for actor-wise cross-validation.")
    if not test:
        raise SplitError("the split has no test actors; give some with --test_actors")
    train = tuple(a for a in available if a not in test and a not in val)
    return Split(train=train, val=val, test=test, name=name)


def require_actors(wanted: Iterable[int], available: Iterable[int], what: str, advice: str) -> None:
    """:class:`SplitError` naming the actors of ``wanted`` that are not ``available``, and what to do."""
    available = sorted(set(int(a) for a in available))
    missing = [a for a in wanted if a not in available]
    if missing:
        raise SplitError(f"{what} {_fmt(missing)} are not in the data (actors present: {_fmt(available)}). {advice}")


def kfold_groups(actors: Iterable[int], k: int | None = None) -> list[tuple[int, ...]]:
    """Test-actor groups of an actor-wise K-fold.

    All 24 RAVDESS actors with ``k`` None or 6 give the EmoBox folds; otherwise the sorted actors
    are cut into ``k`` groups of consecutive actors (default 5), as equal in size as possible.
    """
    available = sorted(set(int(a) for a in actors))
    if available == list(range(1, 25)) and k in (None, 6):
        return [tuple(sorted(g)) for g in EMOBOX_FOLDS]
    k = 5 if k is None else int(k)
    if k < 2:
        raise SplitError(f"K-fold needs at least 2 folds, got {k}")
    if k > len(available):
        raise SplitError(f"{k} folds need at least {k} actors, but only {len(available)} are present")
    size, extra = divmod(len(available), k)
    groups, start = [], 0
    for i in range(k):
        end = start + size + (1 if i < extra else 0)
        groups.append(tuple(available[start:end]))
        start = end
    return groups


def kfold_splits(actors: Iterable[int], k: int | None = None, n_val: int = 2) -> list[Split]:
    """Actor-wise K-fold splits (see :func:`kfold_groups`) with validation actors inside each fold.

    A fold's ``n_val`` validation actors are taken from its training actors, gender-balanced where
    possible, from the groups that follow it (cyclically), so each fold has a fixed, reproducible
    validation set and never looks at its own test actors for model selection. With very few
    actors, fewer validation actors are taken so that at least one actor trains.
    """
    available = sorted(set(int(a) for a in actors))
    groups = kfold_groups(available, k)
    splits = []
    for i, test in enumerate(groups):
        candidates = [a for j in range(1, len(groups)) for a in groups[(i + j) % len(groups)]]
        # keep at least one training actor when the data are small
        val = _pick_balanced(candidates, max(0, min(n_val, len(available) - len(test) - 1)))
        train = tuple(a for a in available if a not in test and a not in val)
        splits.append(Split(train=train, val=tuple(sorted(val)), test=tuple(test), name=fold_name(i + 1)))
    return splits


def fold_name(k: int) -> str:
    """The name of fold ``k`` (1-based): its folder in a K-fold run folder."""
    return f"fold{k}"


def fold_folders(run_dir: str | Path) -> list[Path]:
    """The ``fold1/``, ``fold2/``, ... folders of a K-fold run folder, in fold order (nothing else)."""
    found = [p for p in Path(run_dir).glob("fold*") if p.is_dir() and re.fullmatch(r"fold\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name[4:]))


def _pick_balanced(candidates: Sequence[int], n: int) -> list[int]:
    """First ``n`` candidates, alternating male and female while both remain."""
    males = [a for a in candidates if gender_of(a) == "male"]
    females = [a for a in candidates if gender_of(a) == "female"]
    picked: list[int] = []
    while len(picked) < n and (males or females):
        for pool in (males, females):
            if pool and len(picked) < n:
                picked.append(pool.pop(0))
    return picked


def _fmt(actors: Iterable[int]) -> str:
    return ", ".join(f"{a:02d}" for a in actors) or "none"


def parse_actor_list(text: str | Iterable[int] | None) -> tuple[int, ...] | None:
    """Turn ``"21,22"`` or ``"21-24"`` (or an iterable of ints) into a tuple of actor numbers."""
    if text is None:
        return None
    if not isinstance(text, str):
        return tuple(int(a) for a in text)
    if text.strip().lower() == "none":
        return ()
    actors: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                actors.extend(range(lo, hi + 1))
            else:
                actors.append(int(part))
        except ValueError:
            raise SplitError(f"cannot read actor list {text!r}: use numbers like 21,22 or a range 21-24") from None
    return tuple(actors)
