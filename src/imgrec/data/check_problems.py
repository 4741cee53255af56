"""Turn the findings of a dataset check into ``{severity, code, message}`` problems."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from imgrec.data.check_boxes import label_problems

if TYPE_CHECKING:
    from imgrec.data.check import CheckReport

Problem = dict[str, str]
_EXAMPLES = 3


def problems(r: CheckReport, rel: Callable[[str], str], *, imbalance_warn: float, bad_error: float) -> list[Problem]:
    """Every problem of the report, errors first.

    Args:
        r: the filled report.
        rel: shortens a source for messages (relative to the dataset root).
        imbalance_warn: largest/smallest class ratio above which imbalance is reported.
        bad_error: fraction of unreadable files above which they are an error, not a warning.
    """
    found = [
        *_classes(r),
        *_unreadable(r, rel, bad_error),
        *_leaks(r, rel),
        *_duplicates(r, rel),
        *_imbalance(r, imbalance_warn),
        *_tiny(r, rel),
        *label_problems(r, rel, bad_error),
    ]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda p: order[p["severity"]])


def _few(names: list[str], n: int = 10) -> str:
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


def _problem(severity: str, code: str, message: str) -> Problem:
    return {"severity": severity, "code": code, "message": message}


def _examples(items: list[str], rel: Callable[[str], str]) -> str:
    shown = ", ".join(rel(s) for s in items[:_EXAMPLES])
    return shown + (f" (+{len(items) - _EXAMPLES} more)" if len(items) > _EXAMPLES else "")


def _classes(r: CheckReport) -> list[Problem]:
    out = []
    detect = r.task != "classify"  # labeled objects or pixels, not one class per image
    if r.num_items == 0:
        out.append(_problem("error", "empty_dataset", "The dataset has no items."))
    if len(r.classes) < 2 and not detect:
        out.append(
            _problem(
                "error",
                "single_class",
                f"Only {len(r.classes)} class ({', '.join(r.classes)}); "
                "training needs at least 2. Expected one sub-folder per class.",
            )
        )
    if r.empty_classes:
        unit = "pixels" if r.task == "segment" else "boxes" if detect else "images"
        fix = (
            f"Add labeled {unit} of them or drop them from the class list."
            if detect
            else "Add images or remove the folders."
        )
        out.append(
            _problem(
                "warning" if detect else "error",
                "empty_classes",
                f"{len(r.empty_classes)} class(es) have no {unit}: "
                f"{_few(r.empty_classes)}. {fix}",
            )
        )
    return out


def _unreadable(r: CheckReport, rel: Callable[[str], str], bad_error: float) -> list[Problem]:
    if not r.unreadable:
        return []
    n = len(r.unreadable)
    frac = n / max(1, r.num_checked)
    severity = "error" if frac > bad_error else "warning"
    return [
        _problem(
            severity,
            "unreadable_files",
            f"{n} file(s) ({frac:.1%}) cannot be decoded and will be "
            f"skipped: {_examples([u['source'] for u in r.unreadable], rel)}. Fix or remove them.",
        )
    ]


def _leaks(r: CheckReport, rel: Callable[[str], str]) -> list[Problem]:
    if not r.leaks:
        return []
    first = r.leaks[0]
    one_per_split = dict(zip(first["splits"], first["sources"], strict=True))  # last wins
    pairs = " ~ ".join(f"{rel(src)} ({split})" for split, src in sorted(one_per_split.items()))
    return [
        _problem(
            "error",
            "split_leakage",
            f"{len(r.leaks)} group(s) of duplicate images span more than "
            f"one split, which inflates validation/test figures; e.g. {pairs}. "
            "Remove the copies or split again.",
        )
    ]


def _duplicates(r: CheckReport, rel: Callable[[str], str]) -> list[Problem]:
    out = []
    if r.exact_duplicates:
        files = sum(len(g) for g in r.exact_duplicates)
        out.append(
            _problem(
                "warning",
                "exact_duplicates",
                f"{len(r.exact_duplicates)} group(s) of identical "
                f"files ({files} files); e.g. {_examples(r.exact_duplicates[0], rel)}.",
            )
        )
    if r.label_conflicts:
        first = r.label_conflicts[0]
        out.append(
            _problem(
                "warning",
                "label_conflicts",
                f"{len(r.label_conflicts)} group(s) of identical "
                f"files carry different labels; e.g. {_examples(first['sources'], rel)} labeled "
                f"{', '.join(first['labels'])}.",
            )
        )
    if r.near_duplicates:
        files = sum(len(g["sources"]) for g in r.near_duplicates)
        out.append(
            _problem(
                "info",
                "near_duplicates",
                f"{len(r.near_duplicates)} group(s) of near-identical "
                f"images ({files} files); e.g. {_examples(r.near_duplicates[0]['sources'], rel)}.",
            )
        )
    return out


def _imbalance(r: CheckReport, warn: float) -> list[Problem]:
    if r.imbalance_ratio is None or r.imbalance_ratio <= warn:
        return []
    detect = r.task in ("detect", "instance")
    counts = {c: n for c, n in (r.instance_counts if detect else r.class_counts).items() if n > 0}
    big, small = max(counts, key=counts.__getitem__), min(counts, key=counts.__getitem__)
    unit = " boxes" if detect else ""
    fix = (
        "more labeled boxes of the small classes"
        if detect
        else "class_weights=auto or more images of the small classes"
    )
    return [
        _problem(
            "warning",
            "class_imbalance",
            f"Classes are imbalanced {r.imbalance_ratio:.1f}:1 "
            f"({big}: {counts[big]}{unit}, {small}: {counts[small]}{unit}); consider {fix}.",
        )
    ]


def _tiny(r: CheckReport, rel: Callable[[str], str]) -> list[Problem]:
    if not r.tiny:
        return []
    return [
        _problem(
            "warning",
            "tiny_images",
            f"{len(r.tiny)} image(s) have a side under {r.min_side} pixels; "
            f"e.g. {_examples([t['source'] for t in r.tiny], rel)} "
            f"({r.tiny[0]['width']}x{r.tiny[0]['height']}).",
        )
    ]
