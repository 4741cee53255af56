"""A small instance dataset written on the fly (COCO JSON with polygons, a crowd RLE and a box
without a mask) and a stand-in instance Predictor that answers each image's own objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from imgrec.data.rle import encode_rle
from imgrec.tasks.instance import INSTANCE, Instance, Instances
from imgrec.transforms.preprocess import Preprocessing
from tests.detection_data import write_jpeg

CLASSES = ["cat", "dog"]
CATEGORY_IDS = [5, 9]
# (file name, (width, height), [(class index, x1, y1, x2, y2, kind)]); kind: "poly", "crowd" (an
# RLE crowd region) or "none" (a box without a segmentation).
SAMPLES: list[tuple[str, tuple[int, int], list[tuple[int, int, int, int, int, str]]]] = [
    ("a.jpg", (64, 48), [(0, 4, 4, 30, 40, "poly"), (1, 36, 8, 60, 30, "poly")]),
    ("b.jpg", (48, 48), [(1, 2, 2, 40, 44, "poly"), (0, 42, 0, 48, 10, "crowd")]),
    ("c.jpg", (56, 40), [(0, 8, 6, 48, 34, "poly"), (1, 0, 0, 6, 6, "none")]),
    ("d.jpg", (40, 40), []),
]


def write_instance_coco(root: Path, samples=SAMPLES) -> Path:
    """``root/annotations/instances_train.json`` + ``root/images/train/*.jpg``; objects are
    pentagons inside their boxes (so a mask is not its box)."""
    images, anns = [], []
    for n, (name, (w, h), objs) in enumerate(samples):
        write_jpeg(root / "images" / "train" / name, (w, h), 30 * n)
        images.append({"id": 1 + n, "file_name": name, "width": w, "height": h})
        for cls, x1, y1, x2, y2, kind in objs:
            ann = {"id": len(anns) + 1, "image_id": 1 + n, "category_id": CATEGORY_IDS[cls],
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": int(kind == "crowd")}  # fmt: skip
            poly = [x1, y1, x2, y1, x2, (y1 + y2) / 2, (x1 + x2) / 2, y2, x1, y2]
            if kind == "poly":
                ann["segmentation"] = [poly]
            elif kind == "crowd":
                rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
                ann["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode("ascii")}
            anns.append(ann)
    cats = [{"id": i, "name": c} for i, c in zip(CATEGORY_IDS, CLASSES, strict=True)]
    path = root / "annotations" / "instances_train.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


def erode(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` shrunk by ``pixels`` (4-neighbour erosion; the image border counts as inside)."""
    out = mask.copy()
    for _ in range(pixels):
        inner = out.copy()
        inner[1:] &= out[:-1]
        inner[:-1] &= out[1:]
        inner[:, 1:] &= out[:, :-1]
        inner[:, :-1] &= out[:, 1:]
        out = inner
    return out


class GroundTruthPredictor:
    """A stand-in instance Predictor: its model "finds" each image's own objects (not the crowd
    regions), boxes exact, masks the truth shrunk by ``erode`` pixels; an object without a mask
    gets its box as mask. ``classes`` may be in another order than the data's (matched by name).
    """

    task = INSTANCE
    batch_size = 2

    def __init__(self, dataset: Any, classes: list[str] | None = None, *, erode: int = 0) -> None:
        self.classes = list(classes or dataset.classes)
        self.preprocessing = Preprocessing(size=32, resize_mode="letterbox")
        self.meta = {"model": "ground-truth", "task": "instance", "classes": self.classes, "data": {"name": "tiny"}}
        self.erode = erode
        self._ds = dataset
        self._by_source = {s: i for i, s in enumerate(dataset.sources)}
        self._by_pixels: dict[bytes, int] = {}

    def options(self, **given: Any) -> dict[str, Any]:
        return INSTANCE.options(**given)

    def forward(self, batch: np.ndarray) -> list[None]:
        return [None] * len(batch)

    def postprocess(self, raw: Any, geometries: Any, names: Any, options: Any) -> list[Instances]:
        return [self.answer(self._by_source[n]) for n, _ in zip(names, raw, strict=True)]

    def predict(self, image: np.ndarray, **options: Any) -> list[Instances]:
        if not self._by_pixels:
            self._by_pixels = {self._ds.load(i).tobytes(): i for i in range(len(self._ds))}
        return [self.answer(self._by_pixels[np.asarray(image).tobytes()])]

    def answer(self, i: int) -> Instances:
        t, path = self._ds.targets[i], self._ds.sources[i]
        from PIL import Image

        with Image.open(path) as im:
            w, h = im.size
        found = []
        for k in range(len(t)):
            if t.crowd[k]:
                continue
            box = tuple(float(v) for v in t.boxes[k])
            seg = t.segments[k]
            if seg is None:
                m = np.zeros((h, w), bool)
                m[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] = True
            else:
                m = erode(seg.decode(), self.erode)
            name = self._ds.classes[int(t.labels[k])]
            found.append(Instance(box, name, 0.9 / (1 + k), self.classes.index(name), encode_rle(m), int(m.sum())))  # type: ignore[arg-type]
        return Instances(tuple(found), (w, h), path)
