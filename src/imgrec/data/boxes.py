"""Detection targets: boxes per image, label-file findings, and the per-image split key.

A detection dataset is an :class:`~imgrec.data.dataset.ImageDataset` with ``task="detect"``
and one :class:`BoxTarget` per image. Its ``labels`` are not classes of the image (an image
holds many objects) but a *stratification key* for the seeded split: the image's rarest
class (the class present in it that the fewest images hold; ties go to the lower index),
or :data:`NO_OBJECTS` (-1) for an image without boxes. Splitting by that key shares every
class, rare ones first, across train/val/test, image by image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from imgrec.errors import DataError

NO_OBJECTS = -1
MAX_COORD = 1e7  # pixels; larger (or non-finite) coordinates are refused as bad boxes


@dataclass(frozen=True)
class BoxTarget:
    """The objects of one image.

    Attributes:
        boxes: float32 ``(K, 4)`` x1, y1, x2, y2 in pixels of the image as imgrec decodes it
            (EXIF orientation applied).
        labels: int64 ``(K,)`` indices into ``ImageDataset.classes``.
        crowd: bool ``(K,)`` COCO ``iscrowd`` (ignored in matching, like pycocotools).
        difficult: bool ``(K,)`` VOC ``difficult``.
        image_size: ``(width, height)`` the annotation file states, if any.
        truncated: bool ``(K,)`` VOC ``truncated``, when the source had it.
        origins: int64 ``(K,)`` where each box is in its label file, for messages: the line
            (YOLO), the ``<object>`` number (VOC), the ``annotations`` index (COCO).
        areas: float32 ``(K,)`` the object areas the file states (COCO ``area``: the
            segmentation's area, which decides small/medium/large in COCO evaluation), or None
            (then evaluation uses the box areas).

    Example:
        >>> t = BoxTarget.from_lists([[0, 0, 10, 5]], [2])
        >>> len(t), t.boxes.dtype.name, t.crowd.tolist()
        (1, 'float32', [False])
    """

    boxes: np.ndarray
    labels: np.ndarray
    crowd: np.ndarray
    difficult: np.ndarray
    image_size: tuple[int, int] | None = None
    truncated: np.ndarray | None = None
    origins: np.ndarray | None = None
    areas: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        k = len(boxes)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", _column(self.labels, np.int64, k, "labels"))
        object.__setattr__(self, "crowd", _column(self.crowd, np.bool_, k, "crowd"))
        object.__setattr__(self, "difficult", _column(self.difficult, np.bool_, k, "difficult"))
        if self.truncated is not None:
            object.__setattr__(self, "truncated", _column(self.truncated, np.bool_, k, "truncated"))
        if self.origins is not None:
            object.__setattr__(self, "origins", _column(self.origins, np.int64, k, "origins"))
        if self.areas is not None:
            object.__setattr__(self, "areas", _column(self.areas, np.float32, k, "areas"))

    @classmethod
    def from_lists(
        cls,
        boxes: Sequence[Sequence[float]],
        labels: Sequence[int],
        *,
        crowd: Sequence[bool] | None = None,
        difficult: Sequence[bool] | None = None,
        image_size: tuple[int, int] | None = None,
        truncated: Sequence[bool] | None = None,
        origins: Sequence[int] | None = None,
        areas: Sequence[float] | None = None,
    ) -> BoxTarget:
        """Build from plain lists; missing flags are all False."""
        k = len(labels)
        return cls(
            boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            labels=np.asarray(labels, dtype=np.int64),
            crowd=np.zeros(k, bool) if crowd is None else np.asarray(crowd, bool),
            difficult=np.zeros(k, bool) if difficult is None else np.asarray(difficult, bool),
            image_size=image_size,
            truncated=None if truncated is None else np.asarray(truncated, bool),
            origins=None if origins is None else np.asarray(origins, np.int64),
            areas=None if areas is None else np.asarray(areas, np.float32),
        )

    @classmethod
    def empty(cls, image_size: tuple[int, int] | None = None) -> BoxTarget:
        """An image without objects."""
        return cls.from_lists([], [], image_size=image_size)

    def __len__(self) -> int:
        return len(self.labels)


def _column(values: object, dtype: type, k: int, name: str) -> np.ndarray:
    arr: np.ndarray = np.asarray(values, dtype=dtype).reshape(-1)
    if len(arr) != k:
        raise DataError(f"BoxTarget.{name} has {len(arr)} entries; expected one per box ({k}).")
    return arr


@dataclass(frozen=True)
class LabelIssue:
    """Something wrong in a label file, found while reading it (or by ``check_dataset``).

    Attributes:
        code: stable snake_case kind (``unparsable_line``, ``unknown_class``, ``bad_box``,
            ``missing_image``, ``too_many_boxes``, ``unreadable_labels``, ...).
        message: what was wrong, what was expected, what was received.
        file: the label file (or annotation JSON) it was found in.
        line: 1-based line number (YOLO text files), else None.
        image: the source of the image it concerns, when known.
    """

    code: str
    message: str
    file: str = ""
    line: int | None = None
    image: str | None = None

    @property
    def where(self) -> str:
        """``file:line`` (or just the file)."""
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass
class IssueLog:
    """Collects :class:`LabelIssue`\\ s while a reader runs."""

    items: list[LabelIssue] = field(default_factory=list)

    def add(self, code: str, message: str, file: str = "", line: int | None = None, image: str | None = None) -> None:
        self.items.append(LabelIssue(code, message, file, line, image))


def stratify_labels(targets: Sequence[BoxTarget], num_classes: int) -> np.ndarray:
    """The per-image split key: the image's rarest class, or :data:`NO_OBJECTS`.

    Example:
        >>> a = BoxTarget.from_lists([[0, 0, 1, 1], [0, 0, 2, 2]], [0, 1])
        >>> b = BoxTarget.from_lists([[0, 0, 1, 1]], [0])
        >>> stratify_labels([a, b, BoxTarget.empty()], 2).tolist()
        [1, 0, -1]
    """
    present = [np.unique(t.labels[(t.labels >= 0) & (t.labels < num_classes)]) for t in targets]
    freq = np.zeros(num_classes, np.int64)
    for p in present:
        freq[p] += 1
    out = np.full(len(targets), NO_OBJECTS, np.int64)
    for i, p in enumerate(present):
        if len(p):
            out[i] = int(p[np.argmin(freq[p])])  # argmin picks the lowest index on ties
    return out


def images_per_class(targets: Sequence[BoxTarget], num_classes: int) -> np.ndarray:
    """How many images hold at least one non-crowd box of each class."""
    counts = np.zeros(num_classes, np.int64)
    for t in targets:
        counts[np.unique(t.labels[~t.crowd])] += 1
    return counts


def boxes_per_class(targets: Sequence[BoxTarget], num_classes: int) -> np.ndarray:
    """Non-crowd boxes per class."""
    if not targets:
        return np.zeros(num_classes, np.int64)
    labels = np.concatenate([t.labels[~t.crowd] for t in targets])
    return np.bincount(labels, minlength=num_classes)[:num_classes]
