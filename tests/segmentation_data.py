"""Small segmentation datasets made from COCO128's real polygons, rasterized here with PIL
(independently of imgrec's pycocotools path): mask folders and Pascal VOC segmentation layouts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tests.conftest import shared_data_path


def coco128() -> tuple[Path, dict]:
    """The COCO128 folder and its parsed annotation file."""
    root = shared_data_path("coco128")
    doc = json.loads((root / "annotations" / "instances_train2017.json").read_text())
    return root, doc


def polygon_masks(doc: dict, n: int) -> list[tuple[str, np.ndarray]]:
    """(file name, index mask) of the first ``n`` images: class = rank of the category id + 1,
    objects painted largest first with PIL (crowd RLEs left out), 0 = background."""
    ids = sorted(c["id"] for c in doc["categories"])
    rank = {cid: k + 1 for k, cid in enumerate(ids)}
    out = []
    for im in doc["images"][:n]:
        anns = [a for a in doc["annotations"] if a["image_id"] == im["id"] and isinstance(a["segmentation"], list)]
        mask = Image.new("L", (im["width"], im["height"]), 0)
        draw = ImageDraw.Draw(mask)
        for a in sorted(anns, key=lambda a: -a["area"]):
            for poly in a["segmentation"]:
                draw.polygon([(poly[i], poly[i + 1]) for i in range(0, len(poly), 2)], fill=rank[a["category_id"]])
        out.append((im["file_name"], np.asarray(mask)))
    return out


def class_names(doc: dict) -> list[str]:
    cats = sorted(doc["categories"], key=lambda c: c["id"])
    return ["background", *[c["name"] for c in cats]]


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def save_palette_png(path: Path, mask: np.ndarray, palette: np.ndarray | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.astype(np.uint8).tobytes())
    pal = palette if palette is not None else np.stack([np.arange(256)] * 3, axis=1)
    im.putpalette(np.asarray(pal, np.uint8).reshape(-1).tolist())
    im.save(path)


def write_mask_folder(root: Path, n: int = 6, *, splits: bool = False) -> tuple[Path, list[np.ndarray]]:
    """``root/images/*.jpg`` (COCO128 photos) + ``root/masks/*.png`` (palette PNGs) + classes.txt."""
    src, doc = coco128()
    masks = polygon_masks(doc, n)
    for k, (name, mask) in enumerate(masks):
        sub = ("train/" if k % 3 else "val/") if splits else ""
        link(src / "images" / "train2017" / name, root / "images" / f"{sub}{name}")
        save_palette_png(root / "masks" / f"{sub}{Path(name).stem}.png", mask)
    (root / "classes.txt").write_text("\n".join(class_names(doc)) + "\n")
    return root, [m for _, m in masks]


def write_voc_segmentation(root: Path, n: int = 4) -> tuple[Path, list[np.ndarray]]:
    """A Pascal VOC segmentation layout with two image sets (COCO128 photos, masks as VOC palette PNGs)."""
    from imgrec.imaging.masks import label_palette

    src, doc = coco128()
    masks = polygon_masks(doc, n)
    stems = []
    for name, mask in masks:
        stem = Path(name).stem
        stems.append(stem)
        link(src / "images" / "train2017" / name, root / "JPEGImages" / name)
        save_palette_png(root / "SegmentationClass" / f"{stem}.png", mask, label_palette())
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("\n".join(stems[: n // 2]) + "\n")
    (sets / "val.txt").write_text("\n".join(stems[n // 2 :]) + "\n")
    (root / "classes.txt").write_text("\n".join(class_names(doc)) + "\n")
    return root, [m for _, m in masks]


def polygon_masks_of(doc: dict, names: tuple[str, ...], n: int) -> list[tuple[str, np.ndarray]]:
    """(file name, index mask) of the first ``n`` images holding one of the categories ``names``:
    class = position in ``names`` + 1, objects of other categories are background, largest painted first."""
    cats = {c["id"]: names.index(c["name"]) + 1 for c in doc["categories"] if c["name"] in names}
    by_image: dict[int, list[dict]] = {}
    for a in doc["annotations"]:
        if a["category_id"] in cats and isinstance(a["segmentation"], list):
            by_image.setdefault(a["image_id"], []).append(a)
    out = []
    for im in doc["images"]:
        anns = by_image.get(im["id"])
        if not anns:
            continue
        mask = Image.new("L", (im["width"], im["height"]), 0)
        draw = ImageDraw.Draw(mask)
        for a in sorted(anns, key=lambda a: -a["area"]):
            for poly in a["segmentation"]:
                if len(poly) >= 6:
                    draw.polygon([(poly[i], poly[i + 1]) for i in range(0, len(poly), 2)], fill=cats[a["category_id"]])
        out.append((im["file_name"], np.asarray(mask)))
        if len(out) == n:
            break
    return out


def write_few_class_masks(root: Path, names: tuple[str, ...] = ("person", "car"), n: int = 12) -> Path:
    """A mask folder of COCO128 photos with a few classes: ``images/``, ``masks/`` (palette PNGs),
    ``classes.txt`` = background + ``names``."""
    src, doc = coco128()
    for name, mask in polygon_masks_of(doc, names, n):
        link(src / "images" / "train2017" / name, root / "images" / name)
        save_palette_png(root / "masks" / f"{Path(name).stem}.png", mask)
    (root / "classes.txt").write_text("\n".join(["background", *names]) + "\n")
    return root


def write_few_class_coco(root: Path, names: tuple[str, ...] = ("person", "car"), n: int = 12) -> Path:
    """A COCO folder (``annotations/instances.json`` + ``images/``) of the first ``n`` COCO128 photos
    holding one of ``names``, with only those categories' objects (polygons and crowd RLEs as they are)."""
    src, doc = coco128()
    cats = [c for c in doc["categories"] if c["name"] in names]
    ids = {c["id"] for c in cats}
    anns = [a for a in doc["annotations"] if a["category_id"] in ids]
    held = {a["image_id"] for a in anns}
    images = [im for im in doc["images"] if im["id"] in held][:n]
    kept = {im["id"] for im in images}
    for im in images:
        link(src / "images" / "train2017" / im["file_name"], root / "images" / im["file_name"])
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    out = {"images": images, "categories": cats, "annotations": [a for a in anns if a["image_id"] in kept]}
    (root / "annotations" / "instances.json").write_text(json.dumps(out))
    return root
