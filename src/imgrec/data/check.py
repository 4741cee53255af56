"""Dataset checks: counts, unreadable files, duplicates (and split leakage), imbalance, sizes.

Detection datasets also get their label files checked (``check_boxes``): boxes outside the
image or with zero area, duplicate boxes, lines that do not parse, unknown classes, labels
without an image and images without labels, per-class instance counts.

Segmentation datasets get every checked mask decoded once (``check_masks``): masks whose
size differs from their image, values that are no class, colours outside the colour map,
empty masks, images without masks and masks without images; per-class pixel and image counts.

Every item is decoded through ``ImageDataset.load`` (the one safe decode path) in a thread
pool; the report is a dataclass whose ``to_dict()`` is JSON-able.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from imgrec.data.check_boxes import box_issues
from imgrec.data.check_masks import mask_stats
from imgrec.data.check_problems import problems
from imgrec.data.dataset import ImageDataset
from imgrec.data.dedup import THUMB, exact_groups, group_pairs, near_pairs, thumbnail, thumbnails
from imgrec.data.split import Splits
from imgrec.errors import DatasetError, ImgrecError

IMBALANCE_WARN = 3.0
BAD_FRACTION_ERROR = 0.05


@dataclass
class CheckReport:
    """What ``check_dataset`` found; sources are the dataset's source strings.

    Attributes:
        problems: ``{"severity": "error"|"warning"|"info", "code", "message"}`` per finding.
        unreadable: ``{"source", "code", "message"}`` per file that failed to decode.
        exact_duplicates: groups of sources with identical bytes.
        near_duplicates: ``{"sources", "distance"}`` groups of perceptually equal images.
        leaks: duplicate groups spanning more than one split (``kind``, ``sources``, ``splits``).
        tiny: ``{"source", "width", "height"}`` of images with a side under ``min_side``.
        task: the dataset's task; for ``"detect"``, ``class_counts`` counts images holding
            each class and ``instance_counts`` its boxes (imbalance is judged on boxes).
        label_issues: ``{"code", "message", "file", "line", "image"}`` per label-file finding.
        pixel_counts: for ``"segment"``, the pixels of each class in the decoded masks (then
            ``class_counts`` counts the decoded masks holding each class).
    """

    name: str
    root: str
    num_items: int
    num_checked: int
    classes: list[str]
    class_counts: dict[str, int]
    min_side: int = 16
    near_dup_distance: int = 4
    split_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    exact_duplicates: list[list[str]] = field(default_factory=list)
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    label_conflicts: list[dict[str, Any]] = field(default_factory=list)
    tiny: list[dict[str, Any]] = field(default_factory=list)
    size_stats: dict[str, Any] = field(default_factory=dict)
    imbalance_ratio: float | None = None
    empty_classes: list[str] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    task: str = "classify"
    instance_counts: dict[str, int] = field(default_factory=dict)
    num_boxes: int = 0
    label_issues: list[dict[str, Any]] = field(default_factory=list)
    pixel_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no problem has severity ``error``."""
        return not any(p["severity"] == "error" for p in self.problems)

    @property
    def bad_sources(self) -> list[str]:
        """Sources of the unreadable items (for :func:`validate_trainable`)."""
        return [u["source"] for u in self.unreadable]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of everything."""
        return {**asdict(self), "ok": self.ok}


@dataclass
class _Scan:
    """Per-item results of decoding the checked items (positions index ``checked``)."""

    checked: np.ndarray
    digests: list[bytes | None]
    thumbs: np.ndarray  # (n, 16, 16) uint8 gray thumbnails (zeros when unreadable)
    sizes: np.ndarray  # (n, 2) height, width; -1 when unreadable
    errors: dict[int, tuple[str, str]]


def check_dataset(
    ds: ImageDataset,
    *,
    min_side: int = 16,
    near_dup_distance: int = 4,
    splits: Splits | Sequence[str] | np.ndarray | None = None,
    max_items: int | None = None,
    workers: int = 4,
) -> CheckReport:
    """Decode every item and report what would hurt training or evaluation.

    Args:
        ds: the dataset.
        min_side: images with a side under this many pixels are reported as tiny.
        near_dup_distance: largest Hamming distance between 64-bit dHashes counted as a
            near duplicate (negative: no near-duplicate search).
        splits: a :class:`Splits` of ``ds`` or a split name per item; duplicates across
            splits are flagged as leakage (``ds.splits`` is used when this is None).
        max_items: check a seeded random sample of at most this many items.
        workers: decoding threads.

    Example:
        >>> import numpy as np
        >>> ds = ImageDataset.from_arrays(np.zeros((4, 20, 20), np.uint8), [0, 0, 1, 1], ["a", "b"])
        >>> [p["code"] for p in check_dataset(ds).problems]
        ['exact_duplicates', 'label_conflicts']
    """
    started = time.perf_counter()
    item_splits = _item_splits(ds, splits)
    scan = _scan(ds, _sample(len(ds), max_items), workers)
    report = CheckReport(
        name=ds.name,
        root=ds.root,
        num_items=len(ds),
        num_checked=len(scan.checked),
        classes=list(ds.classes),
        class_counts=ds.class_counts(),
        min_side=min_side,
        near_dup_distance=near_dup_distance,
        split_counts=_split_counts(ds, item_splits),
        task=ds.task,
        instance_counts=ds.instance_counts(),
    )
    _fill_items(report, ds, scan, min_side)
    _fill_duplicates(report, ds, scan, near_dup_distance, item_splits)
    _fill_labels(report, ds, scan, workers)
    _fill_classes(report)
    report.problems = problems(report, ds.relative, imbalance_warn=IMBALANCE_WARN, bad_error=BAD_FRACTION_ERROR)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _item_splits(ds: ImageDataset, splits: Splits | Sequence[str] | np.ndarray | None) -> np.ndarray | None:
    if splits is None:
        return None if ds.splits is None else np.asarray(ds.splits).astype(str)
    arr = splits.item_splits() if isinstance(splits, Splits) else np.asarray(splits).astype(str)
    if len(arr) != len(ds):
        raise DatasetError(f"The splits cover {len(arr)} items but the dataset has {len(ds)}.")
    return arr


def _sample(n: int, max_items: int | None) -> np.ndarray:
    if max_items is None or max_items >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=max(0, max_items), replace=False))


def _scan(ds: ImageDataset, checked: np.ndarray, workers: int) -> _Scan:
    if ds.arrays is not None:
        return _scan_arrays(ds.arrays, checked)
    idx = checked.tolist()
    if workers <= 1 or len(idx) < 64:
        results = [_inspect(ds, i) for i in idx]
    else:
        chunks = [idx[k : k + 256] for k in range(0, len(idx), 256)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = [r for part in pool.map(lambda c: [_inspect(ds, i) for i in c], chunks) for r in part]
    errors = {k: r[3] for k, r in enumerate(results) if r[3] is not None}
    return _Scan(
        checked=checked,
        digests=[r[0] for r in results],
        thumbs=np.array([r[1] for r in results], dtype=np.uint8).reshape(-1, THUMB, THUMB),
        sizes=np.array([r[2] for r in results], dtype=np.int64).reshape(-1, 2),
        errors=errors,
    )


def _scan_arrays(arrays: np.ndarray, checked: np.ndarray) -> _Scan:
    """In-memory items: nothing to decode, thumbnails in one vectorized pass."""
    items = arrays[checked]
    digests: list[bytes | None] = [hashlib.sha256(a.tobytes()).digest() for a in items]
    sizes = np.tile(np.array(items.shape[1:3], dtype=np.int64), (len(items), 1))
    return _Scan(checked, digests, thumbnails(items), sizes, {})


_Inspected = tuple[bytes | None, np.ndarray, tuple[int, int], tuple[str, str] | None]
_NO_THUMB = np.zeros((THUMB, THUMB), np.uint8)


def _inspect(ds: ImageDataset, i: int) -> _Inspected:
    """Digest, thumbnail, (height, width) and error of one item."""
    try:
        digest = hashlib.sha256(ds.read_bytes(i)).digest()
        img = ds.load(i)
    except ImgrecError as exc:
        return None, _NO_THUMB, (-1, -1), (exc.code, str(exc))
    except MemoryError:
        raise
    except Exception as exc:  # a reader bug must not stop the check
        return None, _NO_THUMB, (-1, -1), ("unreadable", f"{type(exc).__name__}: {exc}")
    return digest, thumbnail(img), (int(img.shape[0]), int(img.shape[1])), None


def _fill_items(report: CheckReport, ds: ImageDataset, scan: _Scan, min_side: int) -> None:
    src = [ds.sources[i] for i in scan.checked.tolist()]
    report.unreadable = [{"source": src[k], "code": c, "message": m} for k, (c, m) in sorted(scan.errors.items())]
    ok = scan.sizes[:, 0] >= 0
    h, w = scan.sizes[ok, 0], scan.sizes[ok, 1]
    tiny = np.flatnonzero(ok & (np.minimum(scan.sizes[:, 0], scan.sizes[:, 1]) < min_side))
    report.tiny = [{"source": src[k], "width": int(scan.sizes[k, 1]), "height": int(scan.sizes[k, 0])} for k in tiny]
    report.size_stats = _size_stats(h, w)


def _size_stats(h: np.ndarray, w: np.ndarray) -> dict[str, Any]:
    if not len(h):
        return {}
    sizes, counts = np.unique(np.stack([w, h], axis=1), axis=0, return_counts=True)
    top = np.argsort(-counts, kind="stable")[:5]
    return {
        "width": {"min": int(w.min()), "median": float(np.median(w)), "max": int(w.max())},
        "height": {"min": int(h.min()), "median": float(np.median(h)), "max": int(h.max())},
        "distinct_sizes": len(sizes),
        "common_sizes": [[f"{sizes[k][0]}x{sizes[k][1]}", int(counts[k])] for k in top],
    }


def _fill_duplicates(
    report: CheckReport,
    ds: ImageDataset,
    scan: _Scan,
    distance: int,
    item_splits: np.ndarray | None,
) -> None:
    pos = scan.checked
    exact = [[int(pos[k]) for k in g] for g in exact_groups(scan.digests)]
    report.exact_duplicates = [[ds.sources[i] for i in g] for g in exact]
    report.label_conflicts = [
        {"sources": [ds.sources[i] for i in g], "labels": [ds.classes[ds.labels[i]] for i in g]}
        for g in exact
        if ds.targets is None and len({int(ds.labels[i]) for i in g}) > 1
    ]
    near = _near_groups(scan, distance)
    report.near_duplicates = [{"sources": [ds.sources[i] for i in g], "distance": d} for g, d in near]
    if item_splits is not None:
        groups = [("exact", g) for g in exact] + [("near", g) for g, _ in near]
        report.leaks = [_leak(ds, kind, g, item_splits) for kind, g in groups]
        report.leaks = [leak for leak in report.leaks if len(set(leak["splits"]) - {""}) > 1]


def _leak(ds: ImageDataset, kind: str, group: list[int], item_splits: np.ndarray) -> dict[str, Any]:
    return {
        "kind": kind,
        "sources": [ds.sources[i] for i in group],
        "splits": [str(item_splits[i]) for i in group],
    }


def _near_groups(scan: _Scan, distance: int) -> list[tuple[list[int], int]]:
    """Near-duplicate groups (dataset indices) whose members are not all byte-identical."""
    if distance < 0:
        return []
    valid = np.flatnonzero(scan.sizes[:, 0] >= 0)
    pairs = near_pairs(scan.thumbs[valid], distance)
    if not len(pairs):
        return []
    a, b = valid[pairs[:, 0]], valid[pairs[:, 1]]
    differ = np.array([scan.digests[i] != scan.digests[j] for i, j in zip(a, b, strict=True)], dtype=bool)
    a, b, dist = a[differ], b[differ], pairs[differ, 2]
    groups = group_pairs(np.stack([a, b], axis=1))
    group_of = {k: n for n, g in enumerate(groups) for k in g}
    worst = [0] * len(groups)
    for i, d in zip(a.tolist(), dist.tolist(), strict=True):
        worst[group_of[i]] = max(worst[group_of[i]], d)
    return [([int(scan.checked[k]) for k in g], worst[n]) for n, g in enumerate(groups)]


def _fill_labels(report: CheckReport, ds: ImageDataset, scan: _Scan, workers: int = 4) -> None:
    if ds.targets is None and ds.masks is None:
        return
    ok = scan.sizes[:, 0] >= 0
    sizes = {int(i): (int(s[1]), int(s[0])) for i, s, good in zip(scan.checked, scan.sizes, ok, strict=True) if good}
    if ds.masks is not None:
        stats = mask_stats(ds, scan.checked, sizes, workers)
        report.pixel_counts = {c: int(n) for c, n in zip(ds.classes, stats.pixels, strict=True)}
        report.class_counts = {c: int(n) for c, n in zip(ds.classes, stats.images, strict=True)}
        report.label_issues = [asdict(x) for x in [*ds.issues, *stats.issues]]
        return
    assert ds.targets is not None
    found = [*ds.issues, *box_issues(ds, sizes)]
    report.label_issues = [asdict(x) for x in found]
    report.num_boxes = sum(len(t) for t in ds.targets)


def _fill_classes(report: CheckReport) -> None:
    counts = report.instance_counts if report.task in ("detect", "instance") else report.class_counts
    if report.task == "segment":  # background is in nearly every mask: not a class to balance
        counts = {c: n for c, n in counts.items() if c.lower() != "background"}
    report.empty_classes = [c for c, n in counts.items() if n == 0]
    nonzero = [n for n in counts.values() if n > 0]
    if len(nonzero) >= 2:
        report.imbalance_ratio = round(max(nonzero) / min(nonzero), 3)


def _split_counts(ds: ImageDataset, item_splits: np.ndarray | None) -> dict[str, dict[str, int]]:
    if item_splits is None:
        return {}
    return {
        name: ds.subset(np.flatnonzero(item_splits == name)).class_counts()
        for name in sorted(set(item_splits.tolist()) - {""})
    }


def validate_trainable(ds: ImageDataset, bad_sources: Sequence[str], *, max_bad_fraction: float = 0.05) -> None:
    """Raise DatasetError when ``ds`` cannot be trained on.

    It cannot when it has fewer than two classes, a class without readable images, or
    more than ``max_bad_fraction`` of its files unreadable (``bad_sources``).

    Example:
        >>> import numpy as np
        >>> ds = ImageDataset.from_arrays(np.zeros((4, 8, 8), np.uint8), [0, 1, 0, 1], ["a", "b"])
        >>> validate_trainable(ds, [])
    """
    if ds.task != "classify":
        _check_bad_fraction(ds, set(bad_sources), max_bad_fraction)
        return
    if ds.num_classes < 2:
        raise DatasetError(
            f"Training needs at least 2 classes; {ds.name} has {ds.num_classes} "
            f"({', '.join(ds.classes) or 'none'}). Expected one sub-folder per class."
        )
    bad = set(bad_sources)
    usable = np.array([s not in bad for s in ds.sources], dtype=bool)
    counts = np.bincount(ds.labels[usable], minlength=ds.num_classes)
    empty = [c for c, n in zip(ds.classes, counts, strict=True) if n == 0]
    if empty:
        raise DatasetError(
            f"These classes have no readable images: {', '.join(empty)}. Add images to them or remove their folders."
        )
    _check_bad_fraction(ds, bad, max_bad_fraction)


def _check_bad_fraction(ds: ImageDataset, bad: set[str], max_bad_fraction: float) -> None:
    usable = np.array([s not in bad for s in ds.sources], dtype=bool)
    n_bad = int((~usable).sum())
    bad_in_order = [ds.sources[i] for i in np.flatnonzero(~usable)]
    if len(ds) and n_bad / len(ds) > max_bad_fraction:
        raise DatasetError(
            f"{n_bad} of {len(ds)} files ({n_bad / len(ds):.1%}) are unreadable, over the "
            f"allowed {max_bad_fraction:.1%}: {_name_files(bad_in_order)}. Fix or remove them, "
            "or raise max_bad_fraction."
        )


def _name_files(sources: list[str], n: int = 10) -> str:
    more = f" and {len(sources) - n} more" if len(sources) > n else ""
    return ", ".join(sources[:n]) + more
