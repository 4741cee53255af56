"""YOLO txt labels: ``images/`` and a mirror ``labels/`` folder (``a/b.jpg`` -> ``a/b.txt``).

Class names come from ``data.yaml`` (``names`` as a list or an ``{index: name}`` mapping),
else from a ``*.names`` file or ``classes.txt`` (one name a line) in the dataset folder or
in ``labels/``. A missing label file means the image has no objects. Each line is
``cls cx cy w h``, normalized to [0, 1]; a longer line of ``cls x1 y1 x2 y2 ...`` (a
segmentation polygon) gives its bounding box.

Normalized coordinates refer to the image as displayed, which is how Ultralytics reads
them: the size is read from the header and swapped when the EXIF orientation rotates the
image by 90 degrees, so boxes are in pixels of the image as imgrec decodes it. Images
whose name starts with ``train``/``val``/``test`` folders (``images/train/...``) get those
splits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.data import labelio
from imgrec.data.boxes import BoxTarget, IssueLog
from imgrec.data.dataset import ImageDataset
from imgrec.data.labelio import describe_error, number, oriented_size, read_text, walk_files
from imgrec.data.layout import SPLIT_ALIASES, is_image_name
from imgrec.errors import DatasetError, ImgrecError, MissingInputError

_CLASS_FILES = ("classes.txt", "obj.names")


def read_yolo(source: str) -> ImageDataset:
    """A YOLO dataset folder (or its ``data.yaml``).

    Raises:
        MissingInputError: the path does not exist.
        DatasetError: no ``images/`` folder or no class names (the message says where they go).
    """
    root, cfg = _root_and_config(Path(source))
    classes, class_ids = _names(root, cfg)
    images_dir, labels_dir = root / "images", root / "labels"
    if not images_dir.is_dir():
        raise DatasetError(f"{root} has no images/ folder; expected images/ and labels/ (YOLO layout).")
    log = IssueLog()
    rels = [r for r in walk_files(images_dir) if is_image_name(r)]
    targets = [_label_target(images_dir / r, _label_path(labels_dir, r), len(classes), log) for r in rels]
    _orphan_labels(labels_dir, images_dir, {_label_rel(r) for r in rels}, log)
    splits = [SPLIT_ALIASES.get(r.split("/", 1)[0].lower(), "") if "/" in r else "" for r in rels]
    has_splits = "train" in splits and all(splits)
    return ImageDataset.for_detection(
        classes,
        [str(images_dir / r) for r in rels],
        targets,
        splits=np.asarray(splits) if has_splits else None,
        name=root.name,
        root=str(root),
        class_ids=class_ids,
        label_files=[str(_label_path(labels_dir, r)) for r in rels],
        issues=log.items,
    )


def _root_and_config(path: Path) -> tuple[Path, dict[str, Any]]:
    if not path.exists():
        raise MissingInputError(f"YOLO dataset not found: {path}")
    if path.is_file():
        return path.absolute().parent, _yaml(path)
    cfg = path / "data.yaml"
    return path.absolute(), _yaml(cfg) if cfg.is_file() else {}


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    text = read_text(path, labelio.LABEL_LIMITS.max_text_bytes, "dataset file")
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        raise DatasetError(f"{path} is not readable YAML: {exc}", code="unreadable_labels") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path} must be a YAML mapping with 'names'; received {type(data).__name__}.")
    return data


def _names(root: Path, cfg: dict[str, Any]) -> tuple[list[str], list[int] | None]:
    if "names" in cfg:
        return _yaml_names(cfg["names"], root), _category_ids(cfg.get("category_ids"), cfg)
    for folder in (root, root / "labels"):
        files = [folder / n for n in _CLASS_FILES] + sorted(folder.glob("*.names"))
        for f in files:
            if f.is_file():
                return _lines(f), None
    raise DatasetError(
        f"{root} has no class names; expected data.yaml with 'names: [cat, dog]', a *.names file or "
        "classes.txt (one name a line) in the dataset folder."
    )


def _yaml_names(names: Any, root: Path) -> list[str]:
    if isinstance(names, list) and all(isinstance(n, str | int) for n in names):
        return [str(n) for n in names]
    if isinstance(names, dict) and all(isinstance(k, int) for k in names) and sorted(names) == list(range(len(names))):
        return [str(names[k]) for k in range(len(names))]
    raise DatasetError(
        f"{root}/data.yaml: 'names' must be a list of names or a mapping 0..N-1 -> name; received {names!r:.100}."
    )


def _category_ids(ids: Any, cfg: dict[str, Any]) -> list[int] | None:
    """``category_ids`` (written by ``imgrec data convert`` from COCO) restores COCO's ids."""
    ok = isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    return list(ids) if ok and len(ids) == len(cfg["names"]) else None


def _lines(path: Path) -> list[str]:
    text = read_text(path, labelio.LABEL_LIMITS.max_text_bytes, "class names file")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"{path} is empty; expected one class name a line.")
    return names


def _label_rel(rel: str) -> str:
    return rel.rsplit(".", 1)[0] + ".txt"


def _label_path(labels_dir: Path, rel: str) -> Path:
    return labels_dir / _label_rel(rel)


def _label_target(image: Path, label: Path, num_classes: int, log: IssueLog) -> BoxTarget:
    if not label.is_file():
        log.add(
            "unlabeled_image",
            f"{image.name} has no label file {label.name}; read as an image without objects.",
            str(label),
            image=str(image),
        )
        return BoxTarget.empty()
    try:
        text = read_text(label, labelio.LABEL_LIMITS.max_text_bytes, "label file")
    except (ImgrecError, OSError) as exc:
        log.add("unreadable_labels", describe_error(exc), str(label), image=str(image))
        return BoxTarget.empty()
    rows = list(_rows(text, label, image, num_classes, log))
    if not rows:
        return BoxTarget.empty()
    try:
        w, h = oriented_size(image)
    except ImgrecError as exc:
        log.add(
            "unreadable_image",
            f"cannot read the size of {image.name} to place its boxes: {exc}",
            str(label),
            image=str(image),
        )
        return BoxTarget.empty()
    return _to_pixels(rows, w, h)


def _rows(
    text: str, label: Path, image: Path, num_classes: int, log: IssueLog
) -> Iterator[tuple[int, tuple[int, list[float]]]]:
    kept = 0
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row = _parse_line(line, n, label, image, num_classes, log)
        if row is None:
            continue
        if kept >= labelio.LABEL_LIMITS.max_boxes:
            log.add(
                "too_many_boxes",
                f"more than {labelio.LABEL_LIMITS.max_boxes} boxes; the rest were dropped.",
                str(label),
                n,
                str(image),
            )
            return
        kept += 1
        yield n, row


def _parse_line(
    line: str, n: int, label: Path, image: Path, num_classes: int, log: IssueLog
) -> tuple[int, list[float]] | None:
    tokens = line.split()
    cls = _class_index(tokens[0])
    vals = [number(t) for t in tokens[1:]]
    where = (str(label), n, str(image))
    if cls is None or len(tokens) < 5 or (len(tokens) > 5 and len(tokens) % 2 == 0) or any(v is None for v in vals):
        log.add(
            "unparsable_line",
            f"expected 'class cx cy w h' (numbers, class an integer); received {line.strip()[:80]!r}.",
            *where,
        )
        return None
    if not 0 <= cls < num_classes:
        log.add("unknown_class", f"class {cls} is not in 0..{num_classes - 1} (the class names list).", *where)
        return None
    box = _cxcywh_or_polygon([float(v) for v in vals])  # type: ignore[arg-type]
    if box is None:
        log.add("bad_box", f"width and height must not be negative; received {line.strip()[:80]!r}.", *where)
        return None
    return cls, box


def _class_index(token: str) -> int | None:
    value = number(token)
    return int(value) if value is not None and value == int(value) else None


def _cxcywh_or_polygon(v: list[float]) -> list[float] | None:
    """Normalized x1, y1, x2, y2."""
    if len(v) == 4:
        cx, cy, w, h = v
        return None if w < 0 or h < 0 else [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    xs, ys = v[0::2], v[1::2]
    return [min(xs), min(ys), max(xs), max(ys)]


def _to_pixels(rows: list[tuple[int, tuple[int, list[float]]]], w: int, h: int) -> BoxTarget:
    norm = np.asarray([b for _, (_, b) in rows], dtype=np.float64)
    boxes = norm * np.array([w, h, w, h], dtype=np.float64)
    return BoxTarget.from_lists(boxes, [c for _, (c, _) in rows], origins=[n for n, _ in rows])  # type: ignore[arg-type]


def _orphan_labels(labels_dir: Path, images_dir: Path, expected: set[str], log: IssueLog) -> None:
    if not labels_dir.is_dir():
        return
    for rel in walk_files(labels_dir):
        if rel.endswith(".txt") and rel not in expected and rel.rsplit("/", 1)[-1] not in _CLASS_FILES:
            log.add(
                "missing_image",
                f"{rel} has no image in {images_dir} (looked for the same name with an image suffix).",
                str(labels_dir / rel),
            )
