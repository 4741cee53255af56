"""COCO JSON detection annotations (``images``, ``annotations``, ``categories``).

The source is the JSON file itself or a folder holding ``annotations/*.json``
(``instances_*.json`` preferred) and the images. Image files are looked for, in order, in
``images/<split>/`` (the split named by ``instances_<split>.json``), ``images/``, the
dataset folder, the JSON's folder and ``<JSON folder>/images/``.

Category ids (1-90 in COCO, any integers elsewhere) become class indices 0..N-1 in id order;
``ImageDataset.class_ids`` keeps the ids so conversion back restores them. ``bbox`` is
``[x, y, w, h]`` in pixels of the image as stored; COCO images carry no EXIF rotation, so
the boxes are taken as they are. Crowd boxes (``iscrowd``) are kept with ``crowd=True``.

``task="instance"`` also reads each object's ``segmentation`` (polygons, uncompressed or
compressed RLE; checked by :func:`~imgrec.data.rle.parse_segmentation`, kept compact) into
:class:`~imgrec.data.masks.InstanceTarget`\\ s; ``task="segment"`` renders those objects into
one index mask per image on demand (classes ``background`` + the categories; see
:mod:`imgrec.data.masks` for the overlap rule). A segmentation that cannot be used is a
``bad_segment`` issue (the box is kept, without a mask).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.data import labelio
from imgrec.data.boxes import BoxTarget, IssueLog
from imgrec.data.dataset import ImageDataset
from imgrec.data.labelio import load_json, number, oriented_size, safe_relative, walk_files
from imgrec.data.layout import SPLIT_ALIASES, is_image_name
from imgrec.errors import DatasetError, ImgrecError, MissingInputError

_NO_ID = -(2**63)  # never an id: (image_id, category_id) lookups of non-integers miss
_SPLIT_IN_NAME = re.compile(r"(train|val|valid|validation|test)(?:\d{4})?$")


@dataclass
class _Image:
    """One ``images`` entry being filled."""

    source: str
    size: tuple[int, int] | None
    split: str
    boxes: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    crowd: list[bool] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    areas: list[float] = field(default_factory=list)
    file: str = ""
    segments: list[Any] = field(default_factory=list)  # task != "detect": Segment or None per box


def read_coco(source: str, task: str = "detect") -> ImageDataset:
    """A COCO JSON file, or a folder with ``annotations/*.json`` and the images.

    Args:
        source: the JSON file or the dataset folder.
        task: ``"detect"`` (boxes), ``"instance"`` (boxes and masks) or ``"segment"``
            (an index mask per image, rendered from the objects).

    Raises:
        UsageError: another task.
        MissingInputError: the path does not exist.
        DatasetError: the JSON is unreadable or not COCO (the message says what is expected).
    """
    from imgrec.data.coco_masks import check_task, instance_dataset

    check_task(task)
    path = Path(source)
    if not path.exists():
        raise MissingInputError(f"COCO annotations not found: {source}")
    files = annotation_files(path)
    root = _dataset_root(path)
    log = IssueLog()
    classes: list[str] | None = None
    ids: list[int] = []
    images: list[_Image] = []
    for f in files:
        data = _coco_dict(f)
        names, file_ids = _categories(data, f)
        if classes is not None and (names, file_ids) != (classes, ids):
            raise DatasetError(
                f"{f} lists other categories than {files[0]}; expected the same categories in every file."
            )
        classes, ids = names, file_ids
        images += _read_file(data, f, root, {c: k for k, c in enumerate(ids)}, log, len(files) > 1, task)
    _unlisted_images(images, files, root, log)
    if task != "detect":
        return instance_dataset(task, images, classes or [], ids, root, log)
    targets = [_target(im) for im in images]
    splits = [im.split for im in images]
    return ImageDataset.for_detection(
        classes or [],
        [im.source for im in images],
        targets,
        splits=None if len(set(splits)) < 2 else np.asarray(splits),
        name=root.name,
        root=str(root),
        class_ids=ids,
        label_files=[im.file for im in images],
        issues=log.items,
    )


def annotation_files(path: Path) -> list[Path]:
    """The JSON files to read: the file itself, or ``annotations/instances_*.json`` (else ``*.json``)."""
    if path.is_file():
        return [path]
    folder = path / "annotations"
    found = sorted(folder.glob("instances_*.json")) or sorted(folder.glob("*.json"))
    if not found:
        raise DatasetError(f"{path} has no annotations/*.json; expected a COCO folder or the JSON file itself.")
    return found


def _dataset_root(path: Path) -> Path:
    if path.is_dir():
        return path.absolute()
    parent = path.absolute().parent
    return parent.parent if parent.name == "annotations" else parent


def _coco_dict(path: Path) -> dict[str, Any]:
    data = load_json(path, labelio.LABEL_LIMITS)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        got = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
        raise DatasetError(
            f"{path} is not COCO detection JSON: expected an object with lists 'images', 'annotations' and "
            f"'categories'; received {got}."
        )
    if not isinstance(data.get("annotations", []), list):
        raise DatasetError(f"{path}: 'annotations' must be a list; received {type(data['annotations']).__name__}.")
    return data


def _categories(data: dict[str, Any], path: Path) -> tuple[list[str], list[int]]:
    pairs: dict[int, str] = {}
    for c in data["categories"]:
        cid = c.get("id") if isinstance(c, dict) else None
        if not isinstance(cid, int) or isinstance(cid, bool) or not isinstance(c.get("name"), str):
            raise DatasetError(f"{path}: every category needs an integer 'id' and a string 'name'; received {c!r:.80}.")
        if cid in pairs:
            raise DatasetError(f"{path}: category id {cid} is listed twice; expected unique ids.")
        pairs[cid] = c["name"]
    if not pairs:
        raise DatasetError(f"{path} lists no categories; expected at least one in 'categories'.")
    ids = sorted(pairs)
    return [pairs[i] for i in ids], ids


def _read_file(
    data: dict[str, Any], path: Path, root: Path, index: dict[int, int], log: IssueLog, several: bool,
    task: str = "detect",
) -> list[_Image]:  # fmt: skip
    split = _split_of(path) if several else ""
    bases = _image_bases(path, root)
    by_id = _images(data["images"], path, bases, split, log)
    capped: set[int] = set()
    for n, ann in enumerate(data.get("annotations", [])):
        _annotation(ann, n, path, by_id, index, log, capped, task)
    return list(by_id.values())


def _split_of(path: Path) -> str:
    stem = path.stem.removeprefix("instances_").lower()
    m = _SPLIT_IN_NAME.search(stem)
    return SPLIT_ALIASES[m.group(1)] if m else "train"


def _image_bases(path: Path, root: Path) -> list[Path]:
    split_dir = path.stem.removeprefix("instances_")
    cands = [root / "images" / split_dir, root / "images", root, path.parent, path.parent / "images"]
    out: list[Path] = []
    for c in cands:
        if c.is_dir() and c not in out:
            out.append(c)
    return out


def _images(entries: list[Any], path: Path, bases: list[Path], split: str, log: IssueLog) -> dict[int, _Image]:
    out: dict[int, _Image] = {}
    for n, e in enumerate(entries):
        iid = e.get("id") if isinstance(e, dict) else None
        rel = safe_relative(e["file_name"]) if isinstance(e, dict) and isinstance(e.get("file_name"), str) else None
        if not isinstance(iid, int) or isinstance(iid, bool) or rel is None:
            log.add(
                "bad_image_entry",
                f"images[{n}] needs an integer 'id' and a relative 'file_name'; received {e!r:.80}.",
                str(path),
            )
        elif iid in out:
            log.add(
                "bad_image_entry", f"images[{n}]: image id {iid} is listed twice; the first entry is kept.", str(path)
            )
        else:
            found = _locate(rel, bases)
            if found is None:
                log.add(
                    "missing_image",
                    f"{rel} (image id {iid}) is not in {', '.join(map(str, bases)) or 'any folder'}.",
                    str(path),
                )
            else:
                out[iid] = _Image(found, _stated_size(e), split, file=str(path))
    return out


def _locate(rel: str, bases: list[Path]) -> str | None:
    for base in bases:
        cand = base / rel
        if cand.is_file():
            return str(cand)
    return None


def _stated_size(e: dict[str, Any]) -> tuple[int, int] | None:
    w, h = e.get("width"), e.get("height")
    if isinstance(w, int) and isinstance(h, int) and not isinstance(w, bool) and 0 < w <= 10**6 and 0 < h <= 10**6:
        return (w, h)
    return None


def _annotation(
    ann: Any, n: int, path: Path, by_id: dict[int, _Image], index: dict[int, int], log: IssueLog, capped: set[int],
    task: str = "detect",
) -> None:  # fmt: skip
    where = str(path)
    if not isinstance(ann, dict):
        log.add("bad_box", f"annotations[{n}] is a {type(ann).__name__}; expected an object.", where)
        return
    im = by_id.get(_int_key(ann.get("image_id")))
    if im is None:
        log.add(
            "unknown_image",
            f"annotations[{n}] refers to image_id {ann.get('image_id')!r:.40}, which is not listed.",
            where,
        )
        return
    label = index.get(_int_key(ann.get("category_id")))
    if label is None:
        log.add(
            "unknown_class",
            f"annotations[{n}]: category_id {ann.get('category_id')!r:.40} is not in 'categories'.",
            where,
            image=im.source,
        )
        return
    box = _xyxy(ann.get("bbox"))
    if box is None:
        log.add(
            "bad_box",
            f"annotations[{n}]: bbox must be [x, y, w, h], finite, w and h >= 0; received {ann.get('bbox')!r:.80}.",
            where,
            image=im.source,
        )
        return
    if len(im.boxes) >= labelio.LABEL_LIMITS.max_boxes:
        _cap(log, where, im, capped, ann.get("image_id"))
        return
    im.boxes.append(box)
    im.labels.append(label)
    im.crowd.append(ann.get("iscrowd") in (1, True))
    im.origins.append(n)
    im.areas.append(_area(ann.get("area"), box))
    if task != "detect":
        from imgrec.data.coco_masks import segment_of

        im.segments.append(segment_of(ann.get("segmentation"), n, _image_hw(im), log, where, im.source))


def _image_hw(im: _Image) -> tuple[int, int] | None:
    """(height, width) of the image: as stated, else read from its header (once); None when unreadable."""
    if im.size is None:
        try:
            im.size = oriented_size(im.source)
        except ImgrecError:
            return None
    return im.size[1], im.size[0]


def _area(value: Any, box: list[float]) -> float:
    """The annotation's ``area`` (a finite number >= 0), else the box's."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return (box[2] - box[0]) * (box[3] - box[1])


def _int_key(value: Any) -> int:
    """``value`` when it is an integer id, else an id no entry has."""
    return value if isinstance(value, int) and not isinstance(value, bool) else _NO_ID


def _cap(log: IssueLog, where: str, im: _Image, capped: set[int], iid: Any) -> None:
    if id(im) not in capped:
        capped.add(id(im))
        log.add(
            "too_many_boxes",
            f"image id {iid} has more than {labelio.LABEL_LIMITS.max_boxes} boxes; the rest were dropped.",
            where,
            image=im.source,
        )


def _xyxy(bbox: Any) -> list[float] | None:
    if not isinstance(bbox, list) or len(bbox) != 4:
        return None
    vals = [number(v) for v in bbox]
    if any(v is None for v in vals):
        return None
    x, y, w, h = (float(v) for v in vals)  # type: ignore[arg-type]
    if w < 0 or h < 0:
        return None
    return [x, y, x + w, y + h]


def _unlisted_images(images: list[_Image], files: list[Path], root: Path, log: IssueLog) -> None:
    """Images in the image folders that no JSON lists."""
    listed = {im.source for im in images}
    folders = {Path(im.source).parent for im in images} - {root, *(f.parent for f in files)}
    seen: set[str] = set()
    for folder in sorted(folders):
        for rel in walk_files(folder):
            full = str(folder / rel)
            if is_image_name(rel) and full not in listed and full not in seen:
                seen.add(full)
                log.add("unlabeled_image", f"{rel} is in {folder} but no annotation file lists it.", full)


def _target(im: _Image) -> BoxTarget:
    return BoxTarget.from_lists(im.boxes, im.labels, crowd=im.crowd, image_size=im.size, origins=im.origins,
                                areas=im.areas)  # fmt: skip
