"""Convert a detection dataset between COCO JSON, YOLO txt and Pascal VOC XML; masks too.

Instance data (COCO read with ``task="instance"``) keeps its polygons and RLEs in COCO
output; ``masks`` writes mask folders, and segment data goes to COCO through
:mod:`imgrec.data.convert_masks`.

Images are hard-linked into the output (copied where a link is not possible, e.g. across
file systems), never re-encoded. The output is built in a hidden sibling folder and renamed
into place only when complete: a failure (a corrupt image or mask, Ctrl-C) leaves no output
folder and no staging folder behind. What a format
cannot hold is said in ``ConvertResult.notes``: YOLO has no crowd or difficult flag (crowd
boxes are left out), VOC stores integer pixels (fractional boxes are rounded) and has no
crowd flag (crowd boxes become ``difficult``). COCO category ids are kept: in the COCO
output, and in YOLO's ``data.yaml`` as ``category_ids`` so a COCO -> YOLO -> COCO trip
restores them. YOLO coordinates are written with 12 significant digits, so boxes come back
to well under a hundredth of a pixel.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from imgrec.data.boxes import BoxTarget
from imgrec.data.dataset import ZIP_SEP, ImageDataset
from imgrec.data.labelio import oriented_size
from imgrec.data.masks import InstanceTarget
from imgrec.errors import DatasetError, ImgrecError, OutputError
from imgrec.files import staged_folder, write_bytes_atomic
from imgrec.registry import Registry


@dataclass
class ConvertResult:
    """What ``convert_dataset`` wrote.

    Attributes:
        out: the output folder (readable back with ``load_dataset``).
        format: ``coco``, ``yolo`` or ``voc``.
        images: images written; boxes: boxes written.
        linked: images hard-linked; copied: images copied.
        notes: what the format could not hold, and what was done about it.
    """

    out: Path
    format: str
    images: int = 0
    boxes: int = 0
    linked: int = 0
    copied: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    """One image as the output names it."""

    index: int
    split: str
    rel: str  # posix path relative to the split's image folder


Writer = Callable[[ImageDataset, list[_Item], Path, ConvertResult], None]
WRITERS: Registry[Writer] = Registry("label format")


def convert_dataset(ds: ImageDataset, to: str, out_dir: str | Path, *, mask_encoding: str = "rle") -> ConvertResult:
    """Write ``ds`` (a detection, instance or segment dataset) as ``to`` into ``out_dir``.

    Args:
        ds: the dataset (from ``load_dataset``); its splits, when it has them, are kept.
        to: ``coco``, ``yolo``, ``voc`` or ``masks`` (image + index-mask folders).
        out_dir: a folder that does not exist yet or is empty; written only if the whole
            conversion succeeds (it is built in a hidden sibling folder, then renamed).
        mask_encoding: segment data to COCO: ``"rle"`` (exact) or ``"polygon"``.

    Raises:
        UnknownNameError: ``to`` is not a format.
        DatasetError: ``ds`` is not a detection dataset backed by files.
        OutputError: ``out_dir`` is not empty or cannot be written.
    """
    writer = WRITERS.get(to)
    if (ds.targets is None and ds.masks is None) or ds.arrays is not None:
        raise DatasetError(
            f"{ds.name} is a {ds.task} dataset{' in memory' if ds.arrays is not None else ''}; "
            "convert needs detection or segmentation data read from files (COCO, YOLO, VOC, mask folders)."
        )
    if ds.masks is not None and to not in ("coco", "masks"):
        raise DatasetError(f"{ds.name} holds index masks, which {to} cannot hold; convert it to coco or masks.")
    _refuse_lost_labels(ds)
    out = _fresh_dir(Path(out_dir))
    result = ConvertResult(out=out, format=to)
    with staged_folder(out) as staging:
        if ds.masks is not None and to == "coco":
            from imgrec.data.convert_masks import coco_from_masks

            coco_from_masks(ds, _items(ds), staging, result, mask_encoding)
        else:
            writer(ds, _items(ds), staging, result)
    _note_issues(result, ds)
    return result


def _note_issues(result: ConvertResult, ds: ImageDataset) -> None:
    """A note of the problems the reader found and left out (bad lines, unknown classes, images
    the labels do not list, ...), counted by kind."""
    if ds.issues:
        kinds = Counter(x.code for x in ds.issues)
        counted = ", ".join(f"{code} {n}" for code, n in kinds.most_common())
        result.notes.append(f"{len(ds.issues)} problem(s) found while reading the labels were left out ({counted}); "
                            "`imgrec data check` lists them.")  # fmt: skip


LOST_LABELS = ("unreadable_image", "unreadable_labels")  # the reader kept the image but dropped all its labels


def _refuse_lost_labels(ds: ImageDataset) -> None:
    """DatasetError when the reader dropped every label of an image (its size or its label file
    could not be read): the output would hold the image as unlabeled, losing its boxes silently."""
    lost = [x for x in ds.issues if x.code in LOST_LABELS]
    if lost:
        first, why = lost[0], lost[0].message.rstrip(".")
        raise DatasetError(
            f"{len(lost)} image(s) of {ds.root or ds.name} lost their labels while reading, so the conversion would "
            f"write them unlabeled; e.g. {first.file or first.image}: {why}. Fix or remove those files "
            "(`imgrec data check` lists them); nothing was written."
        )


def list_label_formats() -> list[str]:
    """Formats ``convert_dataset`` writes."""
    return WRITERS.names()


def _targets(ds: ImageDataset) -> list[BoxTarget]:
    if ds.targets is None:
        raise DatasetError(f"{ds.name} has no box targets; expected a detection dataset.")
    return ds.targets


def _fresh_dir(out: Path) -> Path:
    """``out`` if it may be written: a new folder or an empty one (nothing is created yet)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out} already exists and is not an empty folder; expected a new or empty folder.")
    return out


def _items(ds: ImageDataset) -> list[_Item]:
    """Each image's split and path relative to the common folder of its split's images."""
    splits = [str(s) for s in ds.splits] if ds.splits is not None else [""] * len(ds)
    paths = [s.split(ZIP_SEP)[-1] for s in ds.sources]
    common: dict[str, str] = {}
    for name in set(splits):
        dirs = [os.path.dirname(p) for p, s in zip(paths, splits, strict=True) if s == name]
        common[name] = os.path.commonpath(dirs) if all(dirs) else ""
    rels = [os.path.relpath(p, common[s]).replace(os.sep, "/") for p, s in zip(paths, splits, strict=True)]
    return [_Item(i, s, r) for i, (s, r) in enumerate(zip(splits, rels, strict=True))]


# ---- files -------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    write_bytes_atomic(path, data)


def _place_image(ds: ImageDataset, i: int, dst: Path, result: ConvertResult) -> None:
    """Hard-link the image (a link appears whole, under its final name), else copy it."""
    src = ds.sources[i]
    dst.parent.mkdir(parents=True, exist_ok=True)
    if ZIP_SEP not in src:
        try:
            os.link(src, dst)
            result.linked += 1
            return
        except OSError:
            pass
        _copy(Path(src), dst)
    else:
        write_atomic(dst, ds.read_bytes(i))
    result.copied += 1


def _copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"Cannot copy {src} to {dst}: {exc.strerror or exc}") from None


def _size(ds: ImageDataset, i: int) -> tuple[int, int]:
    """(width, height) as imgrec decodes the image; the stated size when it cannot be read."""
    try:
        return oriented_size(ds.sources[i], ds.limits) if ZIP_SEP not in ds.sources[i] else _zip_size(ds, i)
    except ImgrecError as exc:
        stated = ds.targets[i].image_size if ds.targets else None
        if stated is None:
            raise DatasetError(f"Cannot read the size of {ds.sources[i]} to write its boxes: {exc}") from None
        return stated


def _zip_size(ds: ImageDataset, i: int) -> tuple[int, int]:
    from imgrec.imaging import decode

    img = decode(ds.read_bytes(i), limits=ds.limits, name=ds.sources[i])
    return int(img.shape[1]), int(img.shape[0])


def _f32(v: float) -> float:
    """The shortest decimal that reads back as the same float32."""
    return float(np.format_float_positional(np.float32(v), unique=True, trim="-"))


def _note(result: ConvertResult, count: int, text: str) -> None:
    if count:
        result.notes.append(text.format(n=count))


# ---- YOLO --------------------------------------------------------------------------------


@WRITERS.register("yolo")
def _write_yolo(ds: ImageDataset, items: list[_Item], out: Path, result: ConvertResult) -> None:
    targets = _targets(ds)
    crowd = difficult = 0
    for it in items:
        t = targets[it.index]
        keep = ~t.crowd
        crowd += int(t.crowd.sum())
        difficult += int((t.difficult & keep).sum())
        lines = _yolo_lines(t, keep, _size(ds, it.index)) if keep.any() else []
        rel = f"{it.split}/{it.rel}" if it.split else it.rel
        write_atomic(out / "labels" / (rel.rsplit(".", 1)[0] + ".txt"), "".join(lines).encode())
        _place_image(ds, it.index, out / "images" / rel, result)
        result.images += 1
        result.boxes += int(keep.sum())
    write_atomic(out / "data.yaml", _data_yaml(ds, {it.split for it in items}))
    _note(result, crowd, "YOLO has no crowd flag: {n} crowd box(es) were left out.")
    _note(result, difficult, "YOLO has no difficult flag: {n} difficult box(es) were written as ordinary boxes.")


def _yolo_lines(t: BoxTarget, keep: np.ndarray, size: tuple[int, int]) -> list[str]:
    w, h = size
    b = t.boxes[keep].astype(np.float64)
    cx, cy = (b[:, 0] + b[:, 2]) / 2 / w, (b[:, 1] + b[:, 3]) / 2 / h
    bw, bh = (b[:, 2] - b[:, 0]) / w, (b[:, 3] - b[:, 1]) / h
    rows = zip(t.labels[keep].tolist(), cx, cy, bw, bh, strict=True)
    return [f"{c} {x:.12g} {y:.12g} {ww:.12g} {hh:.12g}\n" for c, x, y, ww, hh in rows]


def _data_yaml(ds: ImageDataset, splits: set[str]) -> bytes:
    import yaml

    cfg: dict[str, Any] = {}
    if splits - {""}:
        cfg.update({s: f"images/{s}" for s in ("train", "val", "test") if s in splits})
    else:
        cfg.update({"train": "images", "val": "images"})
    cfg["nc"] = ds.num_classes
    cfg["names"] = list(ds.classes)
    if ds.class_ids is not None:
        cfg["category_ids"] = list(ds.class_ids)
    return yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True).encode()


# ---- COCO --------------------------------------------------------------------------------


@WRITERS.register("coco")
def _write_coco(ds: ImageDataset, items: list[_Item], out: Path, result: ConvertResult) -> None:
    targets = _targets(ds)
    ids = ds.class_ids if ds.class_ids is not None else list(range(1, ds.num_classes + 1))
    categories = [{"id": int(c), "name": n, "supercategory": ""} for c, n in zip(ids, ds.classes, strict=True)]
    next_ann = 1
    for split in sorted({it.split for it in items}):
        images, anns = [], []
        for it in (x for x in items if x.split == split):
            w, h = _size(ds, it.index)
            rel = f"{split}/{it.rel}" if split else it.rel
            images.append({"id": it.index + 1, "file_name": it.rel, "width": w, "height": h})
            anns += _coco_annotations(targets[it.index], it.index + 1, ids, next_ann)
            next_ann += len(targets[it.index])
            _place_image(ds, it.index, out / "images" / rel, result)
        doc = {"images": images, "annotations": anns, "categories": categories}
        name = f"instances_{split}.json" if split else "instances.json"
        write_atomic(out / "annotations" / name, json.dumps(doc, ensure_ascii=False).encode())
        result.images += len(images)
        result.boxes += len(anns)
    if ds.task != "instance":
        result.notes.append("COCO output holds boxes only (no segmentation masks).")


def _coco_annotations(t: BoxTarget, image_id: int, ids: list[int], first: int) -> list[dict[str, Any]]:
    out = []
    for k in range(len(t)):
        x1, y1, x2, y2 = (_f32(v) for v in t.boxes[k])
        w, h = _f32(x2 - x1), _f32(y2 - y1)
        out.append(
            {
                "id": first + k,
                "image_id": image_id,
                "category_id": int(ids[int(t.labels[k])]),
                "bbox": [x1, y1, w, h],
                "area": _f32(w * h) if t.areas is None else _f32(t.areas[k]),
                "iscrowd": int(t.crowd[k]),
                "segmentation": _segmentation(t, k),
            }
        )
    return out


def _segmentation(t: BoxTarget, k: int) -> Any:
    seg = t.segments[k] if isinstance(t, InstanceTarget) else None
    return [] if seg is None else seg.to_json()


# ---- VOC ---------------------------------------------------------------------------------


@WRITERS.register("voc")
def _write_voc(ds: ImageDataset, items: list[_Item], out: Path, result: ConvertResult) -> None:
    targets = _targets(ds)
    names = _voc_names(items)
    rounded = crowd = 0
    sets: dict[str, list[str]] = {}
    for it, name in zip(items, names, strict=True):
        t = targets[it.index]
        stem = name.rsplit(".", 1)[0]
        rounded += int((np.abs(t.boxes - np.round(t.boxes)) > 1e-6).any(axis=1).sum())
        crowd += int(t.crowd.sum())
        xml = _voc_xml(ds, t, name, _size(ds, it.index))
        write_atomic(out / "Annotations" / f"{stem}.xml", xml)
        _place_image(ds, it.index, out / "JPEGImages" / name, result)
        sets.setdefault(it.split, []).append(stem)
        result.images += 1
        result.boxes += len(t)
    write_atomic(out / "classes.txt", "".join(f"{c}\n" for c in ds.classes).encode())
    for split, stems in sets.items():
        if split:
            write_atomic(out / "ImageSets" / "Main" / f"{split}.txt", "".join(f"{s}\n" for s in stems).encode())
    _note(
        result,
        rounded,
        "VOC stores integer pixels: {n} box(es) with fractional corners were rounded to the nearest pixel.",
    )
    _note(result, crowd, "VOC has no crowd flag: {n} crowd box(es) were written as difficult.")
    if ds.class_ids is not None:
        result.notes.append("VOC has no class ids: the category ids are not kept (classes.txt keeps the order).")


def _voc_names(items: list[_Item]) -> list[str]:
    """Flat, unique file names (VOC keeps all images in one folder)."""
    names: list[str] = []
    seen: set[str] = set()
    for it in items:
        name = it.rel.replace("/", "_")
        if name.rsplit(".", 1)[0] in seen:
            name = f"{it.split or 'x'}_{it.index}_{name}"
        seen.add(name.rsplit(".", 1)[0])
        names.append(name)
    return names


def _voc_xml(ds: ImageDataset, t: BoxTarget, name: str, size: tuple[int, int]) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = name
    el = ET.SubElement(root, "size")
    for tag, v in (("width", size[0]), ("height", size[1]), ("depth", 3)):
        ET.SubElement(el, tag).text = str(v)
    ET.SubElement(root, "segmented").text = "0"
    for k in range(len(t)):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = ds.classes[int(t.labels[k])]
        ET.SubElement(obj, "pose").text = "Unspecified"
        trunc = bool(t.truncated[k]) if t.truncated is not None else False
        ET.SubElement(obj, "truncated").text = str(int(trunc))
        ET.SubElement(obj, "difficult").text = str(int(t.difficult[k] or t.crowd[k]))
        box = ET.SubElement(obj, "bndbox")
        for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), t.boxes[k].tolist(), strict=True):
            ET.SubElement(box, tag).text = str(round(v))
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


def _write_masks(ds: ImageDataset, items: list[_Item], out: Path, result: ConvertResult) -> None:
    from imgrec.data.convert_masks import write_masks

    write_masks(ds, items, out, result)


WRITERS.add("masks", _write_masks)
