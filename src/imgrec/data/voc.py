"""Pascal VOC XML: ``Annotations/*.xml`` and the images in ``JPEGImages/`` (or ``images/``).

Each XML names its image (``<filename>``; else the XML's stem with an image suffix), may
state ``<size>``, and lists ``<object>``\\ s with ``<name>``, ``<bndbox>`` (xmin, ymin,
xmax, ymax), ``<difficult>`` and ``<truncated>``. Coordinates are taken as stated (no
1-based shift, as Ultralytics and MMDetection read them), so conversions round-trip
exactly. Classes are the names found, sorted, unless ``classes.txt`` / ``labels.txt`` in
the dataset folder fixes their order. ``ImageSets/Main/{train,val,test}.txt`` give the
splits when together they cover every image once. XML is parsed with defusedxml (no DTD,
no entities) within a size limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

import numpy as np

from imgrec.data import labelio
from imgrec.data.boxes import BoxTarget, IssueLog
from imgrec.data.dataset import ImageDataset
from imgrec.data.labelio import describe_error, number, parse_xml, read_text, walk_files
from imgrec.data.layout import is_image_name
from imgrec.errors import DatasetError, ImgrecError, MissingInputError
from imgrec.imaging import IMAGE_SUFFIXES

_IMAGE_DIRS = ("JPEGImages", "images", "Images")
_CLASS_FILES = ("classes.txt", "labels.txt")


@dataclass
class _Parsed:
    """One XML file's image and objects (class names not yet indexed)."""

    xml: Path
    image: str
    size: tuple[int, int] | None
    names: list[str] = field(default_factory=list)
    boxes: list[list[float]] = field(default_factory=list)
    difficult: list[bool] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    capped: bool = False
    origins: list[int] = field(default_factory=list)


def read_voc(source: str) -> ImageDataset:
    """A Pascal VOC folder (``Annotations/`` + ``JPEGImages/``).

    Raises:
        MissingInputError: the folder does not exist.
        DatasetError: no ``Annotations/*.xml`` or no images folder.
    """
    root = Path(source).absolute()
    if not root.is_dir():
        raise MissingInputError(f"Pascal VOC folder not found: {source}")
    ann_dir, img_dir = root / "Annotations", _image_dir(root)
    xmls = sorted(ann_dir.glob("*.xml")) if ann_dir.is_dir() else []
    if not xmls:
        raise DatasetError(f"{root} has no Annotations/*.xml; expected Pascal VOC (Annotations/ and JPEGImages/).")
    log = IssueLog()
    parsed = [p for p in (_parse(x, img_dir, log) for x in xmls) if p is not None]
    classes, fixed = _classes(root, parsed)
    targets = [_target(p, {c: k for k, c in enumerate(classes)}, fixed, log) for p in parsed]
    _unlisted(img_dir, {p.image for p in parsed}, log)
    sources = [p.image for p in parsed]
    return ImageDataset.for_detection(
        classes,
        sources,
        targets,
        splits=_image_sets(root, [p.xml.stem for p in parsed]),
        name=root.name,
        root=str(root),
        label_files=[str(p.xml) for p in parsed],
        issues=log.items,
    )


def _image_dir(root: Path) -> Path:
    for name in _IMAGE_DIRS:
        if (root / name).is_dir():
            return root / name
    raise DatasetError(f"{root} has no JPEGImages/ (or images/) folder; expected the images beside Annotations/.")


def _parse(xml: Path, img_dir: Path, log: IssueLog) -> _Parsed | None:
    try:
        tree = parse_xml(xml, labelio.LABEL_LIMITS)
    except (ImgrecError, OSError) as exc:
        log.add("unreadable_labels", describe_error(exc), str(xml))
        return None
    image = _find_image(tree, xml, img_dir)
    if image is None:
        log.add("missing_image", f"no image {_text(tree, 'filename') or xml.stem + '.*'} in {img_dir}.", str(xml))
        return None
    out = _Parsed(xml, image, _size(tree))
    for n, obj in enumerate(tree.iter("object"), start=1):
        _object(obj, n, out, log)
    return out


def _text(el: Element, tag: str) -> str:
    found = el.find(tag)
    return (found.text or "").strip() if found is not None else ""


def _find_image(tree: Element, xml: Path, img_dir: Path) -> str | None:
    name = Path(_text(tree, "filename").replace("\\", "/")).name  # never a path out of the folder
    cands = [img_dir / name] if name and name not in (".", "..") else []
    cands += [img_dir / (xml.stem + s) for s in (*IMAGE_SUFFIXES, *(s.upper() for s in IMAGE_SUFFIXES))]
    return next((str(c) for c in cands if c.is_file()), None)


def _size(tree: Element) -> tuple[int, int] | None:
    size = tree.find("size")
    if size is None:
        return None
    w, h = number(_text(size, "width")), number(_text(size, "height"))
    if w is None or h is None or w < 1 or h < 1 or w != int(w) or h != int(h):
        return None
    return int(w), int(h)


def _object(obj: Element, n: int, out: _Parsed, log: IssueLog) -> None:
    name, bnd = _text(obj, "name"), obj.find("bndbox")
    where = (str(out.xml), None, out.image)
    coords = [number(_text(bnd, k)) for k in ("xmin", "ymin", "xmax", "ymax")] if bnd is not None else [None]
    if not name or any(v is None for v in coords):
        log.add(
            "bad_box",
            f"object {n}: expected <name> and numeric <bndbox> xmin ymin xmax ymax; "
            f"received name={name!r:.40}, {coords}.",
            *where,
        )
        return
    x1, y1, x2, y2 = (float(v) for v in coords)  # type: ignore[arg-type]
    if x2 < x1 or y2 < y1:
        log.add("bad_box", f"object {n} ({name}): xmax < xmin or ymax < ymin ({x1:g}, {y1:g}, {x2:g}, {y2:g}).", *where)
        return
    if len(out.boxes) >= labelio.LABEL_LIMITS.max_boxes:
        if not out.capped:
            log.add(
                "too_many_boxes", f"more than {labelio.LABEL_LIMITS.max_boxes} objects; the rest were dropped.", *where
            )
            out.capped = True
        return
    out.names.append(name)
    out.boxes.append([x1, y1, x2, y2])
    out.difficult.append(_flag(obj, "difficult"))
    out.truncated.append(_flag(obj, "truncated"))
    out.origins.append(n)


def _flag(obj: Element, tag: str) -> bool:
    value = number(_text(obj, tag))
    return bool(value) if value is not None else False


def _classes(root: Path, parsed: list[_Parsed]) -> tuple[list[str], bool]:
    for name in _CLASS_FILES:
        f = root / name
        if f.is_file():
            text = read_text(f, labelio.LABEL_LIMITS.max_text_bytes, "class names file")
            names = [line.strip() for line in text.splitlines() if line.strip()]
            if names:
                return names, True
    return sorted({n for p in parsed for n in p.names}), False


def _target(p: _Parsed, index: dict[str, int], fixed: bool, log: IssueLog) -> BoxTarget:
    keep = [k for k, n in enumerate(p.names) if n in index]
    for n in sorted({n for n in p.names if n not in index}):
        log.add("unknown_class", f"class {n!r} is not in the class names file.", str(p.xml), image=p.image)
    return BoxTarget.from_lists(
        [p.boxes[k] for k in keep],
        [index[p.names[k]] for k in keep],
        difficult=[p.difficult[k] for k in keep],
        truncated=[p.truncated[k] for k in keep],
        origins=[p.origins[k] for k in keep],
        image_size=p.size,
    )


def _unlisted(img_dir: Path, listed: set[str], log: IssueLog) -> None:
    for rel in walk_files(img_dir):
        full = str(img_dir / rel)
        if is_image_name(rel) and full not in listed:
            log.add("unlabeled_image", f"{rel} has no annotation file in Annotations/.", full)


def _image_sets(root: Path, stems: list[str]) -> np.ndarray | None:
    main = root / "ImageSets" / "Main"
    lists: dict[str, set[str]] = {}
    for split in ("train", "val", "test"):
        f = main / f"{split}.txt"
        if f.is_file():
            text = read_text(f, labelio.LABEL_LIMITS.max_text_bytes, "image set")
            lists[split] = {line.split()[0] for line in text.splitlines() if line.strip()}
    if "train" not in lists:
        return None
    found = [[s for s, ids in lists.items() if stem in ids] for stem in stems]
    if any(len(f) != 1 for f in found):
        return None  # not a partition of the images: ignore it
    return np.asarray([f[0] for f in found])
