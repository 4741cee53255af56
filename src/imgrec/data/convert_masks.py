"""Conversions with masks: to mask folders (``--to masks``), and index masks to COCO.

``masks``: every image hard-linked into ``images/[split/]``, its index mask written as a
palette PNG (Pascal VOC colours; 16-bit PNG beyond 256 values) into ``masks/[split/]``, and
``classes.txt``. From ``instance`` or COCO data the objects are rendered (class = category
+ 1, ``background`` first; overlaps: see :mod:`imgrec.data.masks`).

``coco`` from a ``segment`` dataset: each connected region of a class (8-connected) becomes one
annotation; ``encoding="rle"`` (the default) writes compressed RLE, exact to the pixel;
``"polygon"`` writes OpenCV's outer contours (what most labelling tools read; the outline
runs through boundary pixel centres, so about half a pixel is lost around every region), and
regions with holes are written as RLE anyway. Class k gets category id k (class 0, when it is
``background``, is not written): reading the result back as ``segment`` gives the same
classes and masks. Ignored pixels (the ignore index) cannot be said in COCO: they become
background (a note says how many).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgrec.data.dataset import ImageDataset
from imgrec.data.masks import BACKGROUND, InstanceTarget, objects_size, render_objects
from imgrec.data.rle import encode_rle, has_holes, polygons_from_mask
from imgrec.errors import DatasetError
from imgrec.imaging.masks import encode_mask_png, label_palette

if TYPE_CHECKING:
    from imgrec.data.convert import ConvertResult, _Item

MASK_ENCODINGS = ("rle", "polygon")


def write_masks(ds: ImageDataset, items: list[_Item], out: Path, result: ConvertResult) -> None:
    """The mask-folder writer (registered as ``masks``)."""
    from imgrec.data.convert import _place_image, _size, write_atomic

    names = _mask_classes(ds)
    palette = label_palette()
    misfits: list[str] = []
    for it in items:
        rel = f"{it.split}/{it.rel}" if it.split else it.rel
        mask = _index_mask(ds, it.index, _size)
        if isinstance(mask, str):
            misfits.append(f"{it.rel}: {mask}")
            continue
        write_atomic(out / "masks" / (rel.rsplit(".", 1)[0] + ".png"), encode_mask_png(mask, palette))
        _place_image(ds, it.index, out / "images" / rel, result)
        result.images += 1
        result.boxes += len(ds.targets[it.index]) if ds.targets is not None else 0
    write_atomic(out / "classes.txt", "".join(f"{c}\n" for c in names).encode())
    if misfits:
        result.notes.append(f"{len(misfits)} image(s) left out: their annotations state another size than the "
                            f"image's, so their objects cannot be drawn on it (e.g. {'; '.join(misfits[:3])}); "
                            "imgrec data check lists them.")  # fmt: skip
    if ds.masks is None:
        result.notes.append(
            "Objects were rendered into index masks (0 = background, category k = class k + 1): where objects "
            "overlap the smaller one is kept, and objects of one class are no longer told apart."
        )


def _mask_classes(ds: ImageDataset) -> list[str]:
    if ds.masks is not None:
        return list(ds.classes)
    if ds.task != "instance":
        raise DatasetError(f"{ds.name} is a {ds.task} dataset; masks need instance (COCO with masks) or segment data.")
    return [BACKGROUND, *ds.classes]


def _index_mask(ds: ImageDataset, i: int, size_of: Any) -> np.ndarray | str:
    """The item's index mask; for objects annotated on another size than the image's, why not (a message)."""
    if ds.masks is not None and ds.masks[i].objects is None:
        return ds.load_mask(i)  # a mask file, converted as it is
    objects = ds.masks[i].objects if ds.masks is not None else ds.targets[i] if ds.targets is not None else None
    if not isinstance(objects, InstanceTarget):
        raise DatasetError(f"{ds.sources[i]} has no object masks; read the data with task='instance'.")
    size = size_of(ds, i)
    stated = ds.masks[i].render_size if ds.masks is not None else objects_size(objects)
    if stated is not None and stated != tuple(size):
        return f"states {stated[0]}x{stated[1]}, the image is {size[0]}x{size[1]}"
    return ds.load_mask(i) if ds.masks is not None else render_objects(objects, size)


def coco_from_masks(
    ds: ImageDataset, items: list[_Item], out: Path, result: ConvertResult, encoding: str = "rle"
) -> None:
    """Write a ``segment`` dataset as COCO JSON (one annotation per connected region of a class)."""
    from imgrec.data.convert import _place_image, write_atomic

    if encoding not in MASK_ENCODINGS:
        raise DatasetError(f"Mask encoding must be one of {', '.join(MASK_ENCODINGS)}; received {encoding!r}.")
    first = 1 if ds.classes and ds.classes[0].lower() == BACKGROUND else 0
    ids = list(range(len(ds.classes))) if first else list(range(1, len(ds.classes) + 1))
    categories = [{"id": ids[k], "name": ds.classes[k], "supercategory": ""} for k in range(first, len(ds.classes))]
    ann_id, ignored, holes = 1, 0, 0
    for split in sorted({it.split for it in items}):
        images, anns = [], []
        for it in (x for x in items if x.split == split):
            mask = ds.load_mask(it.index)
            h, w = mask.shape
            images.append({"id": it.index + 1, "file_name": it.rel, "width": w, "height": h})
            ignored += int((mask == ds.ignore_index).sum())
            for ann, holed in _regions(mask, first, ids, encoding):
                anns.append({"id": ann_id, "image_id": it.index + 1, **ann})
                ann_id += 1
                holes += holed
            _place_image(ds, it.index, out / "images" / (f"{split}/{it.rel}" if split else it.rel), result)
        doc = {"images": images, "annotations": anns, "categories": categories}
        write_atomic(out / "annotations" / (f"instances_{split}.json" if split else "instances.json"),
                     json.dumps(doc, ensure_ascii=False).encode())  # fmt: skip
        result.images += len(images)
        result.boxes += len(anns)
    _notes(result, ignored, holes, encoding, first)


def _regions(mask: np.ndarray, first: int, ids: list[int], encoding: str) -> list[tuple[dict[str, Any], bool]]:
    import cv2
    from pycocotools import mask as mask_utils

    out = []
    for c in np.unique(mask).tolist():
        if c < first or c >= len(ids):
            continue
        n, comp = cv2.connectedComponents((mask == c).astype(np.uint8), connectivity=8)
        for k in range(1, n):
            region = comp == k
            rle = encode_rle(region)
            holed = encoding == "rle" or has_holes(region)
            polys = [] if holed else polygons_from_mask(region)
            seg: Any = {"size": rle["size"], "counts": rle["counts"].decode("ascii")} if holed or not polys else polys
            x, y, bw, bh = (float(v) for v in mask_utils.toBbox(rle))
            ann = {"category_id": ids[c], "segmentation": seg, "area": float(mask_utils.area(rle)),
                   "bbox": [x, y, bw, bh], "iscrowd": 0}  # fmt: skip
            out.append((ann, encoding == "polygon" and holed))
    return out


def _notes(result: ConvertResult, ignored: int, holes: int, encoding: str, first: int) -> None:
    if ignored:
        result.notes.append(f"COCO has no ignore label: {ignored} ignored pixel(s) were written as background.")
    if holes:
        result.notes.append(f"{holes} region(s) with holes were written as RLE (COCO polygons cannot hold holes).")
    if encoding == "polygon":
        result.notes.append("Polygons follow boundary pixel centres: about half a pixel is lost around each region "
                            "(encoding='rle' keeps every pixel).")  # fmt: skip
    if not first:
        result.notes.append("The first class is not 'background': class k was written as category k + 1; "
                            "reading it back as segment data puts 'background' first.")  # fmt: skip
