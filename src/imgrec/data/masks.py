"""Segmentation targets: instance masks per object, and index masks read on demand.

``instance`` datasets hold one :class:`InstanceTarget` per image: a
:class:`~imgrec.data.boxes.BoxTarget` (so every detection tool works on it: checks, split
keys, conversion to YOLO/VOC boxes) plus each object's :class:`~imgrec.data.rle.Segment`
(polygons or compressed RLE, decoded on demand).

``segment`` datasets hold one :class:`MaskTarget` per image: where its index mask comes from
(a mask file, or the objects of a COCO file rendered into classes) and how the stored values
become class indices (as stored, or through a colour map). Nothing is decoded while a dataset
is read; :meth:`MaskTarget.load` decodes one mask, in the pixels of the image as imgrec decodes
it (EXIF orientation applied, like boxes). Pixels of :data:`IGNORE_INDEX` (255; 65535 when a
dataset has more than 255 classes) count for nothing in training and metrics.

Rendering objects into an index mask (COCO -> ``segment``): class index = category index + 1
(0 is ``background``, every pixel no object covers); crowd regions are painted first, then the
objects from the largest to the smallest, so a small object in front of a large one (a cup on
a table) stays visible wherever they overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgrec.data.boxes import BoxTarget
from imgrec.data.rle import Segment
from imgrec.errors import DataError, ImageTooLargeError
from imgrec.imaging import DEFAULT_LIMITS, DecodeLimits
from imgrec.imaging.masks import colors_to_index, load_mask

IGNORE_INDEX = 255
IGNORE_INDEX_16 = 65535
BACKGROUND = "background"


def ignore_index_for(num_classes: int) -> int:
    """255, or 65535 when the class indices reach 255."""
    return IGNORE_INDEX if num_classes <= IGNORE_INDEX else IGNORE_INDEX_16


@dataclass(frozen=True)
class InstanceTarget(BoxTarget):
    """The objects of one image with their masks.

    Attributes:
        segments: one :class:`Segment` (or None: the object has a box only) per box.

    Example:
        >>> from imgrec.data.rle import parse_segmentation
        >>> seg = parse_segmentation([[0, 0, 4, 0, 4, 2]], (3, 5))
        >>> t = InstanceTarget.from_segments([[0, 0, 4, 2]], [1], [seg])
        >>> len(t), t.masks().shape
        (1, (1, 3, 5))
    """

    segments: tuple[Segment | None, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        segs = tuple(self.segments)
        if len(segs) != len(self.labels):
            raise DataError(f"InstanceTarget has {len(segs)} segments for {len(self.labels)} boxes; expected one each.")
        object.__setattr__(self, "segments", segs)

    @classmethod
    def from_segments(
        cls, boxes: Sequence[Sequence[float]], labels: Sequence[int], segments: Sequence[Segment | None],
        **flags: Any,
    ) -> InstanceTarget:  # fmt: skip
        """Build from lists (``flags``: the :meth:`BoxTarget.from_lists` keywords)."""
        base = BoxTarget.from_lists(boxes, labels, **flags)
        return cls(**{f: getattr(base, f) for f in _BOX_FIELDS}, segments=tuple(segments))

    def masks(self, size: tuple[int, int] | None = None) -> np.ndarray:
        """bool ``(K, H, W)`` masks (objects without a segment are empty). Costs K x H x W bytes:
        for large images decode one object at a time with ``segments[k].decode()``."""
        h, w = size or self._size()
        out = np.zeros((len(self), h, w), bool)
        for k, s in enumerate(self.segments):
            if s is not None:
                out[k] = s.decode()
        return out

    def _size(self) -> tuple[int, int]:
        for s in self.segments:
            if s is not None:
                return s.size
        if self.image_size is None:
            raise DataError("InstanceTarget.masks needs the image size: no segment and no stated size.")
        return self.image_size[1], self.image_size[0]


_BOX_FIELDS = ("boxes", "labels", "crowd", "difficult", "image_size", "truncated", "origins", "areas")


@dataclass(frozen=True)
class MaskTarget:
    """Where one image's index mask comes from; decoded by :meth:`load`.

    Attributes:
        file: the mask file (index, palette or colour PNG), or None.
        objects: objects to render instead (COCO); class = object label + 1.
        image_size: ``(width, height)`` the annotation states (COCO), else None.
        ignore_index: the value that marks pixels to ignore.
        color_map: ``((r, g, b), class index)`` pairs: colour masks, and palette masks whose
            palette entries are to be read by colour, map through it; other colours become
            ``ignore_index``. None: the stored values are the class indices (an RGB mask must then
            be gray, r = g = b = the index; another is refused).
        present: classes known to be in the mask without decoding it (COCO), else None.
        found: classes found by decoding the mask once (``scan_mask_classes``, run by a split
            that needs them), else None. A cache: not part of the dataset's fingerprint.
    """

    file: str | None = None
    objects: InstanceTarget | None = field(default=None, repr=False)
    image_size: tuple[int, int] | None = None
    ignore_index: int = IGNORE_INDEX
    color_map: tuple[tuple[tuple[int, int, int], int], ...] | None = None
    present: tuple[int, ...] | None = None
    found: tuple[int, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if (self.file is None) == (self.objects is None):
            raise DataError("A MaskTarget needs exactly one of a mask file and objects to render.")

    @property
    def classes(self) -> tuple[int, ...] | None:
        """The classes known to be in the mask (``present``, else ``found``), or None when unknown."""
        return self.present if self.present is not None else self.found

    @property
    def render_size(self) -> tuple[int, int] | None:
        """``(width, height)`` the objects are rendered at, known without decoding anything; None for a
        mask file (or objects of no known size)."""
        if self.objects is None:
            return None
        return (int(self.image_size[0]), int(self.image_size[1])) if self.image_size else objects_size(self.objects)

    def load(self, limits: DecodeLimits = DEFAULT_LIMITS) -> np.ndarray:
        """The ``(H, W)`` uint8 (uint16 beyond 255 classes) index mask."""
        return self.read(limits)[0]

    def read(self, limits: DecodeLimits = DEFAULT_LIMITS) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        """:meth:`load`, plus the colours a colour/palette mask holds that ``color_map`` lacks.

        Raises:
            ImageTooLargeError: objects whose stated image size is over ``limits.max_pixels`` (such an
                image could not be decoded either; rendering it would take that many bytes per object).
        """
        if self.objects is not None:
            w, h = size = self.render_size or self.objects._size()[::-1]  # unknown: _size says so
            if w * h > limits.max_pixels:
                raise ImageTooLargeError(f"The annotation states a {w}x{h} image: over the limit of "
                                         f"{limits.max_pixels} pixels; expected the image's own size.")  # fmt: skip
            return render_objects(self.objects, size, self.ignore_index), []
        assert self.file is not None
        decoded = load_mask(self.file, limits=limits)
        cmap = dict(self.color_map) if self.color_map is not None else None
        if decoded.is_color and cmap is None:
            return gray_colors(decoded.values, self.file), []
        if decoded.is_color:
            return colors_to_index(decoded.values, cmap or {}, self.ignore_index)
        if cmap is not None and decoded.palette is not None:
            return _palette_to_index(decoded.values, decoded.palette, cmap, self.ignore_index)
        return decoded.values, []


def gray_colors(colors: np.ndarray, name: str) -> np.ndarray:
    """An RGB mask read without a colour map: its values, when it is gray (an index mask saved as RGB);
    else a DataError (its colours cannot be told apart from classes without the map).

    Example:
        >>> gray_colors(np.full((1, 2, 3), 7, np.uint8), "m.png").tolist()
        [[7, 7]]
    """
    first = colors[..., 0]
    if (first == colors[..., 1]).all() and (first == colors[..., 2]).all():
        return np.ascontiguousarray(first)
    h, w = colors.shape[:2]
    sample = colors[:: max(1, h // 64), :: max(1, w // 64)]  # a few colours to name, not all of them
    found = np.unique(sample.reshape(-1, 3), axis=0)[:4].tolist()
    raise DataError(
        f"{name} is a colour mask ({', '.join(f'rgb{tuple(c)}' for c in found)} ...) but the dataset gives no "
        "colours for its classes; expected index masks (8-bit gray or palette PNG: value = class index), or a "
        "colour per class: labelmap.txt (CVAT's 'name:r,g,b::') or classes.txt lines 'name r g b'."
    )


def objects_size(objects: InstanceTarget) -> tuple[int, int] | None:
    """``(width, height)`` of the image the objects were annotated on: the stated size, else their
    segments' (None when neither is known)."""
    if objects.image_size is not None:
        return int(objects.image_size[0]), int(objects.image_size[1])
    h, w = next((s.size for s in objects.segments if s is not None), (0, 0))
    return (w, h) if h else None


def _palette_to_index(
    values: np.ndarray, palette: np.ndarray, cmap: dict[tuple[int, int, int], int], fill: int
) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    used = np.unique(values)
    colors = palette[used][None]  # (1, U, 3): map only the palette entries in use
    lut_used, unknown = colors_to_index(colors, cmap, fill)
    lut = np.full(256, fill, lut_used.dtype)
    lut[used] = lut_used[0]
    return lut[values], unknown


def render_objects(objects: InstanceTarget, size: tuple[int, int], ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Paint the objects' masks into an index mask of ``size`` = ``(width, height)``.

    Class = label + 1 (0 = background). Crowd regions first, then the largest object to the
    smallest (smaller objects stay on top). One object is decoded at a time.

    Example:
        >>> from imgrec.data.rle import parse_segmentation
        >>> big = parse_segmentation([[0, 0, 4, 0, 4, 2, 0, 2]], (2, 4))
        >>> small = parse_segmentation([[1, 0, 2, 0, 2, 1, 1, 1]], (2, 4))
        >>> t = InstanceTarget.from_segments([[0, 0, 4, 2], [1, 0, 2, 1]], [0, 2], [big, small])
        >>> render_objects(t, (4, 2)).tolist()
        [[1, 3, 1, 1], [1, 1, 1, 1]]
    """
    w, h = size
    dtype = np.uint8 if max(ignore_index, int(objects.labels.max(initial=0)) + 1) < 256 else np.uint16
    out = np.zeros((h, w), dtype)
    for k in paint_order(objects):
        seg = objects.segments[k]
        if seg is None or seg.size != (h, w):
            continue
        out[seg.decode()] = int(objects.labels[k]) + 1
    return out


def paint_order(objects: InstanceTarget) -> list[int]:
    """Crowd regions first, then by area, largest first (ties: annotation order)."""
    areas = [s.area() if s is not None else 0 for s in objects.segments]
    return sorted(range(len(objects)), key=lambda k: (not bool(objects.crowd[k]), -areas[k], k))


def present_classes(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class pixel counts of an index mask (values outside the classes are left out).

    Example:
        >>> present_classes(np.array([[0, 1], [255, 1]], np.uint8), 3).tolist()
        [1, 2, 0]
    """
    counts = np.bincount(mask.reshape(-1), minlength=num_classes)
    return counts[:num_classes]


def mask_stratify_labels(targets: Sequence[MaskTarget], num_classes: int) -> np.ndarray:
    """The split key of each image: its rarest known class other than background, else -1."""
    from imgrec.data.boxes import NO_OBJECTS

    present = [np.asarray([c for c in (t.classes or ()) if 0 < c < num_classes], np.int64) for t in targets]
    freq = np.zeros(num_classes, np.int64)
    for p in present:
        freq[np.unique(p)] += 1
    out = np.full(len(targets), NO_OBJECTS, np.int64)
    for i, p in enumerate(present):
        if len(p):
            out[i] = int(p[np.argmin(freq[p])])
    return out


def images_with_class(targets: Sequence[MaskTarget], num_classes: int) -> np.ndarray:
    """Images whose mask is known (from the annotations, or from a scan) to hold each class."""
    counts = np.zeros(num_classes, np.int64)
    for t in targets:
        known = [c for c in set(t.classes or ()) if 0 <= c < num_classes]
        counts[known] += 1
    return counts
