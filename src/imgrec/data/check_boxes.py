"""Detection checks: box geometry against the decoded image sizes, and label-file problems.

``box_issues`` finds boxes outside their image (by more than half a pixel) or with zero
area, duplicate boxes (same class, same corners to 0.1 px) and annotation files whose
stated image size differs from the decoded one. ``label_problems`` turns those and the
readers' :class:`~imgrec.data.boxes.LabelIssue`\\ s into report problems, one per kind:
a kind that touches more than ``bad_error`` of the images is an error, else a warning
(``unlabeled_image`` and ``duplicate_boxes`` are never errors).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imgrec.data.boxes import BoxTarget, LabelIssue
from imgrec.data.check_masks import MASK_TITLES, SOFT
from imgrec.data.dataset import ImageDataset

if TYPE_CHECKING:
    from imgrec.data.check import CheckReport

Problem = dict[str, str]
OUTSIDE_TOLERANCE = 0.5  # pixels
_EXAMPLES = 3
_SOFT = {"unlabeled_image": "info", "duplicate_boxes": "warning", "size_mismatch": "warning", **SOFT}
_TITLES = {
    "outside_image": "box(es) reach outside their image",
    "zero_area_box": "box(es) have zero area",
    "duplicate_boxes": "duplicate box(es) (same class and corners)",
    "size_mismatch": "annotation(s) state an image size that differs from the image",
    "unparsable_line": "label line(s) do not parse",
    "unknown_class": "label(s) name a class that is not in the class list",
    "bad_box": "box(es) cannot be used (non-numeric, non-finite, huge or negative size)",
    "too_many_boxes": "image(s) have more boxes than the per-image cap",
    "unreadable_labels": "label file(s) cannot be read",
    "missing_image": "label(s) have no image",
    "unknown_image": "annotation(s) refer to an image that is not listed",
    "bad_image_entry": "image entries are malformed",
    "unreadable_image": "image(s) could not be measured to place their boxes",
    "unlabeled_image": "image(s) have no label file / no annotation entry (read as no objects)",
    "bad_segment": "object mask(s) cannot be used (kept as boxes without a mask)",
    **MASK_TITLES,
}


def box_issues(ds: ImageDataset, sizes: dict[int, tuple[int, int]]) -> list[LabelIssue]:
    """Geometry findings for every item with targets.

    Args:
        ds: a detection dataset.
        sizes: decoded ``(width, height)`` per item index (the stated size is used for
            items not in it).
    """
    if ds.targets is None:
        return []
    out: list[LabelIssue] = []
    for i, t in enumerate(ds.targets):
        size = sizes.get(i, t.image_size)
        out += _image_issues(ds, i, t, size)
    return out


def _image_issues(ds: ImageDataset, i: int, t: BoxTarget, size: tuple[int, int] | None) -> list[LabelIssue]:
    found: list[LabelIssue] = []
    if size is not None and t.image_size is not None and tuple(t.image_size) != tuple(size):
        found.append(
            _issue(
                ds, i, "size_mismatch", f"states {t.image_size[0]}x{t.image_size[1]}, the image is {size[0]}x{size[1]}"
            )
        )
    if not len(t):
        return found
    b = t.boxes
    zero = (b[:, 2] - b[:, 0] <= 0) | (b[:, 3] - b[:, 1] <= 0)
    for k in np.flatnonzero(zero).tolist():
        found.append(_box_issue(ds, i, t, k, "zero_area_box", "has zero area"))
    if size is not None:
        w, h = size
        tol = OUTSIDE_TOLERANCE
        out = (b[:, 0] < -tol) | (b[:, 1] < -tol) | (b[:, 2] > w + tol) | (b[:, 3] > h + tol)
        for k in np.flatnonzero(out).tolist():
            found.append(_box_issue(ds, i, t, k, "outside_image", f"reaches outside the {w}x{h} image"))
    for k in _duplicates(t):
        found.append(_box_issue(ds, i, t, k, "duplicate_boxes", "repeats an earlier box of the same class"))
    return found


def _duplicates(t: BoxTarget) -> list[int]:
    key = np.concatenate([t.labels[:, None].astype(np.float64), np.round(t.boxes.astype(np.float64), 1)], axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    return sorted(set(range(len(t))) - set(first.tolist()))


def _box_issue(ds: ImageDataset, i: int, t: BoxTarget, k: int, code: str, what: str) -> LabelIssue:
    x1, y1, x2, y2 = (float(v) for v in t.boxes[k])
    name = ds.classes[int(t.labels[k])]
    line = int(t.origins[k]) if t.origins is not None else None
    label_file = ds.label_files[i] if ds.label_files else ""
    where = _origin(label_file, line)
    msg = f"{where}box ({name} {x1:g},{y1:g},{x2:g},{y2:g}) of {Path(ds.sources[i]).name} {what}."
    yolo = label_file.endswith(".txt")
    return LabelIssue(code, msg, label_file, line if yolo else None, ds.sources[i])


def _origin(label_file: str, n: int | None) -> str:
    if n is None:
        return ""
    if label_file.endswith(".xml"):
        return f"object {n}: "
    if label_file.endswith(".json"):
        return f"annotations[{n}]: "
    return ""


def _issue(ds: ImageDataset, i: int, code: str, what: str) -> LabelIssue:
    label_file = ds.label_files[i] if ds.label_files else ""
    return LabelIssue(code, f"{Path(ds.sources[i]).name}: the annotation {what}.", label_file, None, ds.sources[i])


def label_problems(r: CheckReport, rel: Callable[[str], str], bad_error: float) -> list[Problem]:
    """One problem per kind of label issue in ``r.label_issues``, with counts and examples."""
    by_code: dict[str, list[dict[str, object]]] = defaultdict(list)
    for issue in r.label_issues:
        by_code[str(issue["code"])].append(issue)
    out = []
    for code, items in by_code.items():
        touched = len({str(x.get("image") or x.get("file")) for x in items})
        frac = touched / max(1, r.num_items)
        severity = _SOFT.get(code) or ("error" if frac > bad_error else "warning")
        out.append({"severity": severity, "code": code, "message": _message(code, items, touched, frac, rel)})
    return out


def _message(code: str, items: list[dict[str, object]], touched: int, frac: float, rel: Callable[[str], str]) -> str:
    title = _TITLES.get(code, code.replace("_", " "))
    shown = "; ".join(_where(x, rel) + str(x["message"]).rstrip(".") for x in items[:_EXAMPLES])
    more = f" (+{len(items) - _EXAMPLES} more)" if len(items) > _EXAMPLES else ""
    share = f" ({frac:.1%} of the images)" if frac <= 1 else ""  # files outside the dataset: no share of it
    return f"{len(items)} {title}, in {touched} file(s){share}; e.g. {shown}{more}"


def _where(x: dict[str, object], rel: Callable[[str], str]) -> str:
    file = str(x.get("file") or "")
    if not file:
        return ""
    line = x.get("line")
    return f"{rel(file)}:{line}: " if line is not None else f"{rel(file)}: "
