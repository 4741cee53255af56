"""Small detection datasets written on the fly: COCO JSON, YOLO txt and Pascal VOC XML."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

# (file name, (width, height), [(class index, x1, y1, x2, y2, crowd)])
SAMPLES: list[tuple[str, tuple[int, int], list[tuple[int, float, float, float, float, bool]]]] = [
    ("a.jpg", (64, 48), [(0, 2.5, 3.25, 30.75, 40.0, False), (1, 10.0, 5.0, 20.0, 15.0, False)]),
    ("b.jpg", (40, 40), [(2, 0.0, 0.0, 40.0, 40.0, False), (0, 1.0, 1.0, 9.0, 9.0, True)]),
    ("c.jpg", (50, 30), []),
    ("d.jpg", (32, 32), [(1, 4.0, 4.0, 28.0, 30.0, False)]),
]
CLASSES = ["cat", "dog", "bird"]
CATEGORY_IDS = [3, 7, 42]  # deliberately not 0..N-1


def write_jpeg(path: Path, size: tuple[int, int], value: int = 90, exif_orientation: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (value, 255 - value, (value * 7) % 256))
    if exif_orientation is None:
        im.save(path, "JPEG")
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        im.save(path, "JPEG", exif=exif.tobytes())
    return path


def write_coco(root: Path, samples=SAMPLES, ids=CATEGORY_IDS) -> Path:
    """``root/annotations/instances_train.json`` + ``root/images/train/*.jpg``."""
    images, anns = [], []
    for n, (name, size, objs) in enumerate(samples):
        write_jpeg(root / "images" / "train" / name, size, 20 * n)
        images.append({"id": 100 + n, "file_name": name, "width": size[0], "height": size[1]})
        for cls, x1, y1, x2, y2, crowd in objs:
            bbox = [x1, y1, x2 - x1, y2 - y1]
            anns.append(
                {"id": len(anns) + 1, "image_id": 100 + n, "category_id": ids[cls], "bbox": bbox, "iscrowd": int(crowd)}
            )
    cats = [{"id": i, "name": c} for i, c in zip(ids, CLASSES, strict=True)]
    path = root / "annotations" / "instances_train.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


def yolo_line(cls: int, box: tuple[float, float, float, float], size: tuple[int, int]) -> str:
    x1, y1, x2, y2 = box
    w, h = size
    return f"{cls} {(x1 + x2) / 2 / w:.10f} {(y1 + y2) / 2 / h:.10f} {(x2 - x1) / w:.10f} {(y2 - y1) / h:.10f}\n"


def write_yolo(root: Path, samples=SAMPLES, names_style: str = "list") -> Path:
    """``root/images/*.jpg``, ``root/labels/*.txt`` (crowd boxes left out), ``root/data.yaml``."""
    for n, (name, size, objs) in enumerate(samples):
        write_jpeg(root / "images" / name, size, 20 * n)
        if objs:
            lines = [yolo_line(c, (x1, y1, x2, y2), size) for c, x1, y1, x2, y2, crowd in objs if not crowd]
            (root / "labels").mkdir(parents=True, exist_ok=True)
            (root / "labels" / name.replace(".jpg", ".txt")).write_text("".join(lines))
    if names_style == "list":
        (root / "data.yaml").write_text("names: [" + ", ".join(CLASSES) + "]\n")
    elif names_style == "dict":
        (root / "data.yaml").write_text("names:\n" + "".join(f"  {i}: {c}\n" for i, c in enumerate(CLASSES)))
    else:
        (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def voc_xml(name: str, size: tuple[int, int], objs: list[tuple[str, str, str, str, str, int]]) -> str:
    body = "".join(
        f"<object><name>{c}</name><truncated>0</truncated><difficult>{d}</difficult>"
        f"<bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{x}</xmax><ymax>{y}</ymax></bndbox></object>"
        for c, a, b, x, y, d in objs
    )
    return (
        f"<annotation><filename>{name}</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
        f"<depth>3</depth></size>{body}</annotation>"
    )


def write_voc(root: Path, samples=SAMPLES) -> Path:
    """``root/Annotations/*.xml`` + ``root/JPEGImages/*.jpg`` (crowd boxes marked difficult)."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    for n, (name, size, objs) in enumerate(samples):
        write_jpeg(root / "JPEGImages" / name, size, 20 * n)
        rows = [(CLASSES[c], f"{x1:g}", f"{y1:g}", f"{x2:g}", f"{y2:g}", int(cr)) for c, x1, y1, x2, y2, cr in objs]
        (root / "Annotations" / name.replace(".jpg", ".xml")).write_text(voc_xml(name, size, rows))
    return root


def write_squares_yolo(root: Path, n: int = 16, seed: int = 0, size: tuple[int, int] = (120, 90)) -> Path:
    """A learnable YOLO set: red (class 0) and blue (class 1) squares on dark noise, 1-2 per image."""
    import numpy as np
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text("names: [red, blue]\n")
    w, h = size
    for i in range(n):
        im = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 80, 3)))
        draw, lines = ImageDraw.Draw(im), []
        for _ in range(int(rng.integers(1, 3))):
            cls, side = int(rng.integers(0, 2)), int(rng.integers(18, 40))
            x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
            draw.rectangle([x, y, x + side - 1, y + side - 1], fill=(230, 30, 30) if cls == 0 else (30, 60, 230))
            lines.append(yolo_line(cls, (x, y, x + side, y + side), size))
        im.save(root / "images" / f"{i:03d}.jpg", quality=92)
        (root / "labels" / f"{i:03d}.txt").write_text("".join(lines))
    return root
