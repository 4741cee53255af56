"""Rare classes in every split that needs them: the repair after a stratified split.

A stratified split shares out each image by one key (its class, or for boxes and masks its
rarest class), so a class held by a few images can miss the validation split: two images of a
class at ``val=0.1`` give it 0.2 of an image there, which rounds to none, and a class that is
never an image's rarest follows the other classes' draws. :func:`cover_rare` then moves images,
rarest class first: every class held by at least two images gets one in ``train`` and one in
``val``, every class one in ``train``. Each move is paired, where one is found, with a swap back of
an image whose classes the receiving split holds elsewhere too, so the split sizes stay as
asked; no move takes the last image of a class out of a split that must hold it. Seeded: the
same split and seed give the same moves, and a split that needs none is left as it was.

Example:
    >>> idx = {"train": np.array([0, 1, 2, 3]), "val": np.array([4, 5]), "test": np.array([], np.int64)}
    >>> classes = [np.array([c]) for c in (0, 0, 1, 1, 0, 0)]  # class 1: two items, both in train
    >>> out = cover_rare(idx, classes, 2, np.random.default_rng(0))
    >>> len(out["train"]), sorted(int(classes[i][0]) for i in out["val"])  # one swapped for the other
    (4, [0, 1])
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "val", "test")
_NEEDS = {"train": 1, "val": 2, "test": 0}  # a split holds every class of at least this many images
SWAP_TRIES = 256  # random items looked at for a swap partner (bounds the cost of each move)


class _State:
    """Where each item is, and how many items of each class each split holds."""

    def __init__(self, indices: dict[str, np.ndarray], classes: Sequence[np.ndarray], num_classes: int) -> None:
        self.classes = classes
        self.split_of = {int(i): name for name, idx in indices.items() for i in np.asarray(idx).tolist()}
        self.items = np.asarray(sorted(self.split_of), np.int64)
        self.counts = {name: np.zeros(num_classes, np.int64) for name in SPLITS}
        self.holders: dict[int, list[int]] = defaultdict(list)
        for i, name in self.split_of.items():
            self.counts[name][classes[i]] += 1
            for c in classes[i].tolist():
                self.holders[c].append(i)
        self.total: np.ndarray = np.sum(list(self.counts.values()), axis=0)

    def can_leave(self, i: int) -> bool:
        """Whether item ``i`` can leave its split without taking a class that split must hold."""
        here, cs = self.split_of[i], self.classes[i]
        needed = self.total[cs] >= _NEEDS[here] if _NEEDS[here] else np.zeros(len(cs), bool)
        return bool(((self.counts[here][cs] > 1) | ~needed).all())

    def move(self, i: int, to: str) -> None:
        cs = self.classes[i]
        self.counts[self.split_of[i]][cs] -= 1
        self.counts[to][cs] += 1
        self.split_of[i] = to

    def indices(self) -> dict[str, np.ndarray]:
        out: dict[str, list[int]] = {name: [] for name in SPLITS}
        for i, name in self.split_of.items():
            out[name].append(i)
        return {name: np.asarray(sorted(items), np.int64) for name, items in out.items()}


def cover_rare(
    indices: dict[str, np.ndarray], classes: Sequence[np.ndarray], num_classes: int, rng: np.random.Generator,
    fixed: Sequence[str] = (),
) -> dict[str, np.ndarray]:  # fmt: skip
    """Move items so that every class of two or more items is in train and val (one item is
    enough for train).

    Args:
        indices: item indices per split name (``train``, ``val``, ``test``).
        classes: per item (indexed by item), the int array of the classes it holds.
        num_classes: the number of classes.
        rng: the split's generator (drawn from only when something moves).
        fixed: splits whose items stay where they are (a test split the data came with).
    """
    if not _anything_missing(indices, classes, num_classes, fixed):
        return indices
    state = _State(indices, classes, num_classes)
    for c in np.argsort(state.total, kind="stable").tolist():
        for need in ("train", "val"):
            if state.total[c] >= _NEEDS[need] and not state.counts[need][c] and need not in fixed:
                _bring(state, c, need, rng, fixed)
    return state.indices()


def _anything_missing(
    indices: dict[str, np.ndarray], classes: Sequence[np.ndarray], num_classes: int, fixed: Sequence[str]
) -> bool:
    """Whether a split that must hold a class lacks it (one vectorized count per split)."""
    counts = {}
    for name in SPLITS:
        idx = np.asarray(indices.get(name, []), np.int64).tolist()
        flat = np.concatenate([classes[i] for i in idx]) if idx else np.zeros(0, np.int64)
        counts[name] = np.bincount(flat, minlength=num_classes)
    total = np.sum(list(counts.values()), axis=0)
    return any(bool(((total >= _NEEDS[n]) & (counts[n] == 0)).any()) for n in ("train", "val") if n not in fixed)


def _bring(state: _State, c: int, need: str, rng: np.random.Generator, fixed: Sequence[str]) -> None:
    """Move an item of class ``c`` into ``need`` (from train while it can spare one, else test, else val),
    and one item back in exchange."""
    for source in (s for s in ("train", "test", "val") if s != need and s not in fixed):
        found = [i for i in state.holders[c] if state.split_of[i] == source and state.can_leave(i)]
        if found:
            state.move(found[int(rng.integers(len(found)))], need)
            _swap_back(state, need, source, rng)
            return


def _swap_back(state: _State, split: str, to: str, rng: np.random.Generator) -> None:
    """Send one item of ``split`` that it can spare to ``to`` (keeps the sizes): the first of
    :data:`SWAP_TRIES` random draws among all items that is in ``split`` and can go; none else."""
    for i in rng.choice(state.items, size=min(SWAP_TRIES, len(state.items)), replace=False).tolist():
        if state.split_of[i] == split and state.can_leave(i):
            state.move(i, to)
            return
