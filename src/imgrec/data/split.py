"""Stratified, seeded train/val/test splits and their JSON manifest."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.data.dataset import ImageDataset
from imgrec.data.mask_scan import scan_mask_classes
from imgrec.data.masks import mask_stratify_labels
from imgrec.data.split_cover import cover_rare
from imgrec.errors import DatasetError, MissingInputError, UsageError
from imgrec.files import write_json_atomic

SPLIT_NAMES = ("train", "val", "test")
MANIFEST_FORMAT = "imgrec-splits"
MANIFEST_VERSION = 1
COVER = "every class has an image in train, and every class held by two or more images one in val"
EMPTY = {
    "val": "training has no validation images (no model selection, no early stopping)",
    "test": "there are no held-out test figures",
}


@dataclass(frozen=True)
class SizeNote:
    """Why a split's size is not the one its fraction asked for.

    Attributes:
        split: ``val`` or ``test``.
        text: one line: the size, the size asked, and what changed it.
        empty: the split ended up empty (worth a warning, not a note).
    """

    split: str
    text: str
    empty: bool = False

    @classmethod
    def from_record(cls, record: Any) -> SizeNote | None:
        """A note from its manifest record (``{"split", "text", "empty"}``); None when it is not one."""
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            return None
        return cls(str(record.get("split", "")), record["text"], bool(record.get("empty", False)))


@dataclass
class Splits:
    """Three views of one dataset and how they were made.

    Attributes:
        train: the training items.
        val: the validation items (model selection, early stopping).
        test: the held-out items (final figures only); may be empty.
        dataset: the dataset the indices point into.
        indices: item indices of ``dataset`` per split name.
        seed: the seed the split was drawn with.
        fractions: the requested ``val`` and ``test`` fractions.
        notes: why ``val`` or ``test`` holds more or fewer items than its fraction asked, from
            the draw (kept in the manifest; a manifest written before notes were kept has none).
    """

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    dataset: ImageDataset
    indices: dict[str, np.ndarray]
    seed: int = 0
    fractions: dict[str, float] = field(default_factory=dict)
    notes: list[SizeNote] = field(default_factory=list)

    @classmethod
    def from_indices(
        cls,
        ds: ImageDataset,
        indices: dict[str, np.ndarray],
        seed: int,
        fractions: dict[str, float],
        notes: list[SizeNote] | None = None,
    ) -> Splits:
        """Build the three subsets from per-split index arrays."""
        idx = {name: np.sort(np.asarray(indices.get(name, []), dtype=np.int64)) for name in SPLIT_NAMES}
        parts = {name: ds.subset(i) for name, i in idx.items()}
        return cls(parts["train"], parts["val"], parts["test"], ds, idx, seed, dict(fractions), list(notes or []))

    def sizes(self) -> dict[str, int]:
        """Number of items per split."""
        return {name: len(i) for name, i in self.indices.items()}

    def record(self) -> dict[str, Any]:
        """What a run's ``model.json`` says of its split: ``splits`` (the sizes) and, when there are
        any, ``split_notes`` (why val or test is not the size asked)."""
        notes = {"split_notes": [n.text for n in self.notes]} if self.notes else {}
        return {"splits": {name: len(getattr(self, name)) for name in SPLIT_NAMES}, **notes}

    def item_splits(self) -> np.ndarray:
        """The split name of every item of ``dataset`` (``""`` for items in none)."""
        out = np.full(len(self.dataset), "", dtype="<U5")
        for name, idx in self.indices.items():
            out[idx] = name
        return out

    def manifest(self) -> dict[str, Any]:
        """The JSON-able record: seed, fractions, fingerprint, classes, items per split, size notes."""
        ds = self.dataset
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "seed": self.seed,
            "fractions": self.fractions,
            "dataset": {
                "name": ds.name,
                "root": ds.root,
                "size": len(ds),
                "fingerprint": ds.fingerprint(),
            },
            "classes": list(ds.classes),
            "sizes": self.sizes(),
            "notes": [{"split": n.split, "text": n.text, "empty": n.empty} for n in self.notes],
            "splits": {name: [ds.relative(ds.sources[i]) for i in idx.tolist()] for name, idx in self.indices.items()},
        }

    def save(self, path: str | Path) -> Path:
        """Write the manifest as JSON (atomically); returns the path."""
        return _write_json(Path(path), self.manifest())


def split_dataset(
    ds: ImageDataset, *, val: float = 0.1, test: float = 0.1, seed: int = 0, workers: int = 4
) -> Splits:
    """Split stratified by class; the same seed gives the same split.

    Pre-split data (``ds.splits``) keeps its split: a validation part is carved from
    ``train`` (stratified, fraction ``val``) when there is none, and ``test`` stays empty
    when the data has none. For boxes and masks, every class keeps at least one training image,
    and every class held by two or more images has one in ``val`` too
    (:func:`~imgrec.data.split_cover.cover_rare`: a class an image holds counts, not only its split
    key); a classification split stays the stratified draw. Both can make ``val`` and ``test``
    larger or smaller than their fractions (the stratified draw keeps one item of each class in
    train): ``Splits.notes`` says by how much and why, and flags a split that ends up empty.

    Segment data whose files do not say which classes a mask holds (mask folders, Pascal VOC)
    has its masks decoded once, one at a time per worker, when a split is to be drawn
    (:func:`~imgrec.data.mask_scan.scan_mask_classes`); the classes found stay with ``ds``.

    Args:
        ds: the dataset.
        val: fraction of the items for validation.
        test: fraction of the items for the test (ignored for pre-split data).
        seed: the random seed.
        workers: threads decoding masks (segment data whose classes are not known yet).

    Example:
        >>> import numpy as np
        >>> ds = ImageDataset.from_arrays(np.zeros((20, 4, 4), np.uint8), [0, 1] * 10, ["a", "b"])
        >>> split_dataset(ds, val=0.2, test=0.2, seed=0).sizes()
        {'train': 12, 'val': 4, 'test': 4}
    """
    _check_fractions(val, test)
    rng = np.random.default_rng(seed)
    notes: list[SizeNote] = []
    if ds.splits is not None:
        indices, notes = _keep_presplit(ds, val, rng, workers)
    elif val > 0 or test > 0:
        items = np.arange(len(ds))
        drawn = _stratified(split_keys(ds, items, workers), items, {"val": val, "test": test}, rng)
        indices = _cover(ds, drawn, rng) if val > 0 else drawn
        notes = size_notes({"val": val, "test": test}, len(ds), drawn, indices)
    else:
        indices = {"train": np.arange(len(ds))}
    return Splits.from_indices(ds, indices, seed, {"val": val, "test": test}, notes)


def size_notes(
    fractions: dict[str, float], n: int, drawn: dict[str, np.ndarray], final: dict[str, np.ndarray], of: str = ""
) -> list[SizeNote]:
    """A note for each split whose final size is not ``round(n * fraction)``, with the causes, and
    for each split asked for (fraction > 0) that ended up empty.

    Args:
        fractions: the fraction asked per split.
        n: the number of items the fractions are of.
        drawn: the indices after the stratified draw; final: after :func:`cover_rare`.
        of: how the message names the items, when not the whole dataset (``" of train's 100"``).

    Example:
        >>> drawn, final = {"val": np.arange(13)}, {"val": np.arange(28)}
        >>> print(size_notes({"val": 0.1}, 128, drawn, final)[0].text)
        val: 28 images (asked 10% = 13): 15 added so that every class held by two or more images also has one in val.
    """
    out = []
    for name, frac in fractions.items():
        asked, first, got = round(float(n) * frac), len(drawn.get(name, ())), len(final.get(name, ()))
        if frac <= 0 or (got == asked and got):
            continue
        head = f"{name}: {got} image{'s' * (got != 1)} (asked {frac * 100:g}%{of} = {asked})"
        why = "; ".join(_size_reasons(name, asked, first, got))
        if got:
            out.append(SizeNote(name, f"{head}: {why}."))
            continue
        fix = "ask a larger fraction" if not asked else "give more images of each class"
        out.append(SizeNote(name, f"{head}: {why}. It is empty: {EMPTY[name]}; {fix}.", empty=True))
    return out


def _size_reasons(name: str, asked: int, first: int, got: int) -> list[str]:
    """What took a split from ``asked`` items to ``first`` (the stratified draw), then to ``got``
    (:func:`cover_rare`)."""
    parts = [] if asked or got else ["the fraction rounds to no image"]
    if first < asked:
        parts.append(f"{asked - first} fewer drawn, as the stratified draw leaves at least one image of each "
                     "class in train")  # fmt: skip
    if got > first:
        parts.append(f"{got - first} added so that every class held by two or more images also has one in val")
    elif got < first:
        to = "train or val" if name == "test" else "train"
        parts.append(f"{first - got} moved to {to} so that {COVER}")
    return parts


def _cover(ds: ImageDataset, indices: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """:func:`cover_rare` for boxes and masks, where an image holds several classes and the
    stratified draw on one key per image misses rare ones; a classification split is already
    stratified on the one label each item has (and forcing every 2-item class into val would
    make val a third of a set of 3 items per class)."""
    if ds.task == "classify":
        return indices
    return cover_rare(indices, item_classes(ds), ds.num_classes, rng)


def _check_fractions(val: float, test: float) -> None:
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise UsageError(f"val and test must be fractions in [0, 1) that sum below 1; received val={val}, test={test}.")


def _keep_presplit(
    ds: ImageDataset, val: float, rng: np.random.Generator, workers: int
) -> tuple[dict[str, np.ndarray], list[SizeNote]]:
    """The data's own split; a val part carved from train when it has none (with its size notes)."""
    assert ds.splits is not None
    given = {name: np.flatnonzero(ds.splits == name) for name in SPLIT_NAMES}
    if len(given["val"]) or val <= 0:
        return given, []
    train = given["train"]
    drawn = _stratified(split_keys(ds, train, workers), train, {"val": val}, rng)
    carved = _cover(ds, {"train": drawn["train"], "val": drawn["val"]}, rng)
    notes = size_notes({"val": val}, len(train), drawn, carved, of=f" of train's {len(train)}")
    return {"train": carved["train"], "val": carved["val"], "test": given["test"]}, notes


def split_keys(ds: ImageDataset, items: np.ndarray, workers: int = 4) -> np.ndarray:
    """The stratification key of each of ``items``: ``ds.labels``, except for segment data whose
    masks' classes were not known when it was read: then the rarest class each mask holds among
    ``items`` (the masks decoded once, see :func:`~imgrec.data.mask_scan.scan_mask_classes`)."""
    masks = ds.masks
    if masks is None or all(masks[i].present is not None for i in items.tolist()):
        return ds.labels[items]
    scan_mask_classes(ds, items, workers)
    return mask_stratify_labels([masks[i] for i in items.tolist()], ds.num_classes)


def item_classes(ds: ImageDataset) -> list[np.ndarray]:
    """Per item, the classes it is known to hold: its label; its non-crowd boxes' classes; its mask's
    classes (empty while unknown)."""
    n = ds.num_classes
    if ds.targets is not None:
        per_item = [np.unique(t.labels[~t.crowd]) for t in ds.targets]
    elif ds.masks is not None:
        per_item = [np.asarray(sorted(m.classes or ()), np.int64) for m in ds.masks]
    else:
        per_item = list(ds.labels.reshape(-1, 1))
        if ((ds.labels >= 0) & (ds.labels < n)).all():
            return per_item  # one class per item, all known (the common case: no per-item work)
    return [c[(c >= 0) & (c < n)].astype(np.int64) for c in per_item]


def _stratified(
    labels: np.ndarray, items: np.ndarray, fractions: dict[str, float], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Share ``items`` out per class; totals follow the fractions (largest remainder)."""
    classes = np.unique(labels)
    members = [rng.permutation(items[labels == c]) for c in classes]
    sizes = np.array([len(m) for m in members])
    out: dict[str, list[np.ndarray]] = defaultdict(list)
    taken = np.zeros(len(classes), dtype=np.int64)
    for name, frac in fractions.items():
        counts = _allocate(sizes, frac, rng)
        counts = np.minimum(counts, np.maximum(sizes - taken - 1, 0))  # keep one to train on
        for k, m in enumerate(members):
            out[name].append(m[taken[k] : taken[k] + counts[k]])
        taken += counts
    out["train"] = [m[t:] for m, t in zip(members, taken, strict=True)]
    empty = np.zeros(0, np.int64)
    return {name: np.concatenate(parts) if parts else empty for name, parts in out.items()}


def _allocate(sizes: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    """Per-class counts summing to ``round(total * frac)``, proportional to class sizes."""
    exact = sizes * frac
    counts = np.floor(exact).astype(np.int64)
    missing = round(float(sizes.sum()) * frac) - int(counts.sum())
    if missing > 0:
        remainder = exact - counts + rng.random(len(sizes)) * 1e-6  # seeded tie-break
        counts[np.argsort(-remainder)[:missing]] += 1
    return counts


def load_splits(ds: ImageDataset, manifest_path: str | Path) -> Splits:
    """Re-apply a saved manifest to ``ds``.

    Raises:
        MissingInputError: the manifest file does not exist.
        DatasetError: the manifest is unreadable or does not match ``ds`` (the message
            names what differs: classes, missing or extra items, labels).
    """
    data = _read_manifest(Path(manifest_path))
    where: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(ds.sources):
        where[ds.relative(s)].append(i)
    problems = _compare(ds, data, where)
    if problems:
        raise DatasetError(
            f"The split manifest {manifest_path} does not match the dataset {ds.root or ds.name}: "
            + "; ".join(problems)
            + ". Split again (imgrec data split) or use the data it was made for."
        )
    indices = {
        name: np.asarray([where[s].pop(0) for s in data["splits"].get(name, [])], np.int64) for name in SPLIT_NAMES
    }
    fractions = {k: float(v) for k, v in data.get("fractions", {}).items()}
    notes = [n for n in map(SizeNote.from_record, data.get("notes") or []) if n is not None]  # optional (older)
    return Splits.from_indices(ds, indices, int(data.get("seed", 0)), fractions, notes)


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MissingInputError(f"Split manifest not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path} is not a readable JSON split manifest: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("splits"), dict):
        raise DatasetError(f"{path} is not an imgrec split manifest (expected format {MANIFEST_FORMAT!r}).")
    return data


def _compare(ds: ImageDataset, data: dict[str, Any], where: dict[str, list[int]]) -> list[str]:
    problems = []
    if list(data.get("classes", [])) != list(ds.classes):
        problems.append(f"classes differ (manifest {data.get('classes')}, dataset {ds.classes})")
    listed: dict[str, int] = defaultdict(int)
    for items in data["splits"].values():
        for s in items:
            listed[s] += 1
    missing = [s for s, n in listed.items() if len(where.get(s, ())) < n]
    extra = [s for s, idx in where.items() if len(idx) > listed.get(s, 0)]
    if missing:
        problems.append(f"{len(missing)} item(s) of the manifest are not in the dataset ({_few(missing)})")
    if extra:
        problems.append(f"{len(extra)} item(s) of the dataset are not in the manifest ({_few(extra)})")
    fingerprint = data.get("dataset", {}).get("fingerprint")
    if not problems and fingerprint and fingerprint != ds.fingerprint():
        problems.append("the items are the same but their labels or content changed (fingerprint differs)")
    return problems


def _few(items: list[str], n: int = 5) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    return write_json_atomic(path, data, what=f"the split manifest {path}")
