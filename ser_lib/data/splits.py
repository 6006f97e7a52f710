"""Speaker-independent splits: every speaker belongs to exactly one part of a split.

Random clip-level splits put the same voice in training and test data and inflate RAVDESS accuracy
by 10-30 points, so ser_lib only splits by speaker (notebook 01 shows why). Speakers are namespaced
by corpus (``ravdess:01``, ``cremad:1002``), so no speaker is in two parts across corpora either.

- :func:`fixed_split`: the given test and validation speakers, the rest train (RAVDESS default:
  test 21-24, validation 19-20).
- :func:`kfold_splits`: speaker-wise K-fold, within each corpus: fold k tests the k-th group of every
  corpus's speakers. For the 24 RAVDESS actors and K=6 the groups are the EmoBox benchmark's, so
  results compare with the literature; otherwise K groups of consecutive speakers. Validation speakers
  of a fold come from its training speakers, gender-balanced.
- :func:`corpus_split`: one whole corpus tests, the others train (``--test_corpus``).

Speakers are selected with :func:`parse_speakers` (``21-24``, ``ravdess:01,ravdess:02``, ``cremad:1001-1010``);
a number without a corpus means that speaker of the run's only corpus.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..errors import SplitError
from .corpora.base import natural_key

DEFAULT_TEST_SPEAKERS: tuple[str, ...] = ("21", "22", "23", "24")
DEFAULT_VAL_SPEAKERS: tuple[str, ...] = ("19", "20")

#: Test actors of the six EmoBox folds for RAVDESS (Ma et al., 2024).
EMOBOX_FOLDS: tuple[tuple[int, ...], ...] = (
    (1, 11, 20, 21),
    (4, 10, 12, 14),
    (8, 9, 19, 23),
    (3, 5, 7, 24),
    (2, 15, 16, 18),
    (6, 13, 17, 22),
)
#: Corpora in the RAVDESS layout (the synthetic corpus mimics it), whose 24 actors have EmoBox folds.
RAVDESS_LAYOUT = ("ravdess", "synthetic")


@dataclass(frozen=True)
class Split:
    """Speakers of the three parts of a split."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    name: str = "fixed"

    def __post_init__(self) -> None:
        parts = {"train": set(self.train), "val": set(self.val), "test": set(self.test)}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = parts[a] & parts[b]
            if shared:
                raise SplitError(f"split {self.name!r}: speakers {_fmt(shared)} are in both {a} and {b}")
        if not self.train:
            raise SplitError(f"split {self.name!r} has no training speakers")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Split":
        return cls(tuple(data["train"]), tuple(data["val"]), tuple(data["test"]), data.get("name", "fixed"))

    def describe(self) -> str:
        return f"{self.name}: train [{_fmt(self.train)}] val [{_fmt(self.val)}] test [{_fmt(self.test)}]"


def parse_speakers(text: str | Iterable | None) -> tuple[str, ...] | None:
    """``"21-24"``, ``"19,20"``, ``"ravdess:01-04,cremad:1001"`` or ``"none"`` as speaker selectors."""
    if text is None:
        return None
    if not isinstance(text, str):
        return tuple(str(item) for item in text)
    if text.strip().lower() in ("none", ""):
        return ()
    selected: list[str] = []
    for part in text.replace(" ", "").split(","):
        corpus, _, local = part.rpartition(":")
        prefix = f"{corpus}:" if corpus else ""
        try:
            if "-" in local:
                lo, hi = local.split("-", 1)
                width = len(lo)
                selected += [f"{prefix}{n:0{width}d}" for n in range(int(lo), int(hi) + 1)]
            elif local:
                int(local) if not corpus else None
                selected.append(f"{prefix}{local}")
        except ValueError:
            raise SplitError(f"cannot read speaker list {text!r}: use numbers like 21,22, a range 21-24, or "
                             f"corpus:speaker ids like cremad:1001") from None
    return tuple(selected)


def resolve(selectors: Iterable[str], speakers: Iterable[str], what: str, advice: str) -> tuple[str, ...]:
    """The speakers (from ``speakers``) the selectors name; :class:`SplitError` for any that is absent or,
    without a corpus, ambiguous."""
    available = sorted(set(speakers), key=natural_key)
    chosen, missing = [], []
    for selector in selectors:
        if ":" in selector:
            matches = [s for s in available if s == selector]
        else:
            matches = [s for s in available if _same_number(s.split(":", 1)[1], selector)]
        if len(matches) > 1:
            raise SplitError(f"{what} {selector} is in several corpora ({_fmt(matches)}): say which, e.g. {matches[0]}")
        (chosen if matches else missing).append(matches[0] if matches else selector)
    if missing:
        raise SplitError(f"{what} {_fmt(missing)} are not in the data (speakers present: {_fmt(available)}). {advice}")
    return tuple(sorted(set(chosen), key=natural_key))


def _same_number(local: str, selector: str) -> bool:
    return local == selector or (local.isdigit() and selector.isdigit() and int(local) == int(selector))


def fixed_split(speakers: Iterable[str], test: Sequence[str] = DEFAULT_TEST_SPEAKERS,
                val: Sequence[str] = DEFAULT_VAL_SPEAKERS, name: str = "fixed") -> Split:
    """Test and validation speakers as given (selectors, see :func:`resolve`), every other speaker trains.

    An asked speaker that is absent is an error, so that a dataset without actors 21-24 (such as the
    development copy with actors 01-20) fails loudly instead of testing on nothing.
    """
    available = set(speakers)
    test_ = resolve(test or (), available, "test speakers",
                    "Choose others with --test_speakers, or use --folds K for speaker-wise cross-validation.")
    val_ = resolve(val or (), available, "validation speakers",
                   "Choose others with --val_speakers, or use --folds K for speaker-wise cross-validation.")
    if not test_:
        raise SplitError("the split has no test speakers; give some with --test_speakers")
    train = tuple(s for s in sorted(available, key=natural_key) if s not in test_ and s not in val_)
    return Split(train=train, val=val_, test=test_, name=name)


def by_corpus(speakers: Iterable[str]) -> dict[str, list[str]]:
    """Speakers grouped by corpus, each group sorted."""
    groups: dict[str, list[str]] = {}
    for speaker in sorted(set(speakers), key=natural_key):
        groups.setdefault(speaker.split(":", 1)[0], []).append(speaker)
    return groups


def kfold_groups(speakers: Iterable[str], k: int | None = None) -> list[tuple[str, ...]]:
    """Test-speaker groups of a speaker-wise K-fold: group k holds the k-th part of every corpus.

    A RAVDESS-layout corpus with all 24 actors and ``k`` None or 6 gives the EmoBox folds; otherwise
    each corpus's sorted speakers are cut into ``k`` groups of consecutive speakers (default 5).
    """
    corpora = by_corpus(speakers)
    emobox = k in (None, 6) and corpora and all(
        c in RAVDESS_LAYOUT and [int(s.split(":")[1]) for s in group] == list(range(1, 25))
        for c, group in corpora.items())
    k = 6 if emobox else (5 if k is None else int(k))
    if k < 2:
        raise SplitError(f"K-fold needs at least 2 folds, got {k}")
    groups: list[list[str]] = [[] for _ in range(k)]
    for corpus, members in corpora.items():
        if emobox:
            parts = [[f"{corpus}:{a:02d}" for a in fold] for fold in EMOBOX_FOLDS]
        elif k > len(members):
            raise SplitError(f"{k} folds need at least {k} speakers of each corpus, but {corpus} has {len(members)}")
        else:
            size, extra = divmod(len(members), k)
            bounds = [i * size + min(i, extra) for i in range(k + 1)]
            parts = [members[bounds[i]:bounds[i + 1]] for i in range(k)]
        for group, part in zip(groups, parts):
            group += part
    return [tuple(sorted(g, key=natural_key)) for g in groups]


def kfold_splits(speakers: Iterable[str], genders: Mapping[str, str], k: int | None = None,
                 n_val: int = 2) -> list[Split]:
    """Speaker-wise K-fold splits (see :func:`kfold_groups`) with validation speakers inside each fold.

    A fold's ``n_val`` validation speakers per corpus are taken from its training speakers,
    gender-balanced where possible, from the groups that follow it (cyclically), so each fold has a
    fixed, reproducible validation set and never looks at its own test speakers for model selection.
    With very few speakers, fewer validation speakers are taken so that at least one speaker trains.
    """
    available = sorted(set(speakers), key=natural_key)
    groups = kfold_groups(available, k)
    splits = []
    for i, test in enumerate(groups):
        val: list[str] = []
        for corpus, members in by_corpus(available).items():
            following = [s for j in range(1, len(groups)) for s in groups[(i + j) % len(groups)] if s in members]
            left = len([s for s in members if s not in test])
            val += _pick_balanced(following, max(0, min(n_val, left - 1)), genders)
        train = tuple(s for s in available if s not in test and s not in val)
        splits.append(Split(train=train, val=tuple(sorted(val, key=natural_key)), test=test, name=fold_name(i + 1)))
    return splits


def corpus_split(speakers: Iterable[str], genders: Mapping[str, str], corpus: str, n_val: int = 2) -> Split:
    """Every speaker of ``corpus`` tests; the other corpora train, each giving ``n_val`` validation speakers."""
    corpora = by_corpus(speakers)
    if corpus not in corpora:
        raise SplitError(f"--test_corpus {corpus}: no speakers of {corpus} in the data (corpora: {', '.join(corpora)})")
    if len(corpora) < 2:
        raise SplitError(f"--test_corpus {corpus} holds out the only corpus: give a second one to train on "
                         f"(--dataset NAME=PATH)")
    val = [s for c, members in corpora.items() if c != corpus
           for s in _pick_balanced(members[::-1], min(n_val, len(members) - 1), genders)]
    train = tuple(s for c, members in corpora.items() if c != corpus for s in members if s not in val)
    return Split(train=train, val=tuple(sorted(val, key=natural_key)), test=tuple(corpora[corpus]),
                 name=f"test-{corpus}")


def fold_name(k: int) -> str:
    """The name of fold ``k`` (1-based): its folder in a K-fold run folder."""
    return f"fold{k}"


def fold_folders(run_dir: str | Path) -> list[Path]:
    """The ``fold1/``, ``fold2/``, ... folders of a K-fold run folder, in fold order (nothing else)."""
    found = [p for p in Path(run_dir).glob("fold*") if p.is_dir() and re.fullmatch(r"fold\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name[4:]))


def _pick_balanced(candidates: Sequence[str], n: int, genders: Mapping[str, str]) -> list[str]:
    """First ``n`` candidates, alternating male and female while both remain."""
    pools = [[s for s in candidates if genders.get(s) == g] for g in ("male", "female")]
    pools.append([s for s in candidates if genders.get(s) not in ("male", "female")])
    picked: list[str] = []
    while len(picked) < n and any(pools):
        for pool in pools:
            if pool and len(picked) < n:
                picked.append(pool.pop(0))
    return picked


def _fmt(speakers: Iterable[str]) -> str:
    return ", ".join(sorted(map(str, speakers), key=natural_key)) or "none"
