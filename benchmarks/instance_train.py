"""Mask R-CNN trained from scratch on the CPU within a time budget: mask AP next to box AP on the
same run (same weights, same val images, same detections), per epoch and at the end; peak RSS.

The data set is built here from real pixels: Fashion-MNIST garments (``--classes``, default
trouser, bag, sneaker, dress) pasted onto real photos (the coco128 images, their longer side
resized to ``--image-size``), 1 to 4 per photo at 2x to 4x their 28-pixel size, each alpha-blended
by its own ink so its mask is exact (ink > 40 of 255); a later garment covers an earlier one and
its mask is cut accordingly. Written as JPEG + COCO JSON (``annotations/instances.json``, compressed RLE) in a temp dir
(``--data DIR`` keeps it). COCO128's own polygons are too few (128 photos, 80 classes) for a
from-scratch Mask R-CNN to reach a measurable AP in minutes on two cores.

The model then trains through ``imgrec.train(...)`` like ``imgrec train DIR --task instance
--model NAME``, with val mask AP each epoch picking the kept weights. The number of epochs is set so
the run fits the budget: three training steps are timed after a warm-up, and one epoch costs
``steps * step time`` plus the validation pass (estimated at a third of it); ``--epochs`` sets it
instead. On a shared machine the estimate is rough: the figures say how long it really took.

Usage:
    .venv/bin/python benchmarks/instance_train.py                                  # 20 min, MobileNetV3 Mask R-CNN
    .venv/bin/python benchmarks/instance_train.py --budget-min 10 --model maskrcnn_resnet50_fpn_v2
    .venv/bin/python benchmarks/instance_train.py --epochs 1 --train-images 8 --val-images 4   # smoke
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, peak_rss_mb, print_machine

FASHION = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
INK = 40  # of 255: a garment pixel belongs to its mask from here


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="maskrcnn_mobilenet_v3_large_fpn")
    p.add_argument("--budget-min", type=float, default=20.0, help="training time, minutes")
    p.add_argument("--classes", default="trouser,bag,sneaker,dress")
    p.add_argument("--train-images", type=int, default=240)
    p.add_argument("--val-images", type=int, default=60)
    p.add_argument("--image-size", type=int, default=320)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--epochs", type=int, help="fixed epochs instead of the budget")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", help="keep the generated data set here")
    return p.parse_args()


def garments(classes: list[str]) -> dict[int, np.ndarray]:
    """Fashion-MNIST training images of the chosen classes, by class index in ``classes``."""
    raw = gzip.decompress((SHARED_DATA / "fashion-mnist" / "train-images-idx3-ubyte.gz").read_bytes())
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
    labels = np.frombuffer(gzip.decompress((SHARED_DATA / "fashion-mnist" / "train-labels-idx1-ubyte.gz").read_bytes()),
                           np.uint8, offset=8)  # fmt: skip
    return {k: images[labels == FASHION.index(name)] for k, name in enumerate(classes)}


def backgrounds(side: int) -> list[np.ndarray]:
    """The coco128 photos, their longer side resized to ``side``."""
    from PIL import Image

    out = []
    for path in sorted((SHARED_DATA / "coco128" / "images" / "train2017").glob("*.jpg")):
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = side / max(im.size)
            out.append(np.asarray(im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))))
    return out


def paste(photo: np.ndarray, items: list[tuple[int, np.ndarray]], rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """``photo`` with the garments pasted at random places; returns it and (class, mask) per garment."""
    import cv2

    out, masks = photo.astype(np.float32), []
    h, w = photo.shape[:2]
    for k, item in items:
        s = int(28 * rng.uniform(2.0, 4.0))
        ink = cv2.resize(item, (s, s), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        if s >= min(h, w):
            continue
        y, x = int(rng.integers(0, h - s)), int(rng.integers(0, w - s))
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        region = out[y : y + s, x : x + s]
        region[:] = region * (1 - ink[..., None]) + colour * ink[..., None]
        full = np.zeros((h, w), bool)
        full[y : y + s, x : x + s] = ink * 255 > INK
        masks = [(c, m & ~full) for c, m in masks]  # covered parts of earlier garments are hidden
        masks.append((k, full))
    return out.astype(np.uint8), [(c, m) for c, m in masks if m.sum() >= 16]


def build(folder: Path, classes: list[str], n: int, side: int, seed: int = 0) -> int:
    """Write ``n`` pasted photos and their COCO JSON into ``folder``; returns the object count."""
    from PIL import Image

    from imgrec.data.rle import encode_rle

    rng = np.random.default_rng(seed)
    pool, photos = garments(classes), backgrounds(side)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        items = [(k := int(rng.integers(len(classes))), pool[k][int(rng.integers(len(pool[k])))])
                 for _ in range(int(rng.integers(1, 5)))]  # fmt: skip
        image, found = paste(photos[i % len(photos)], items, rng)
        name = f"{i:05d}.jpg"
        Image.fromarray(image).save(folder / "images" / name, quality=92)
        images.append({"id": i + 1, "file_name": name, "width": image.shape[1], "height": image.shape[0]})
        for k, mask in found:
            ys, xs = np.nonzero(mask)
            rle = encode_rle(mask)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": k + 1, "iscrowd": 0,
                                "area": int(mask.sum()), "segmentation": {**rle, "counts": rle["counts"].decode()},
                                "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                                         int(ys.max() - ys.min() + 1)]})  # fmt: skip
    categories = [{"id": k + 1, "name": c} for k, c in enumerate(classes)]
    (folder / "annotations").mkdir(exist_ok=True)
    (folder / "annotations" / "instances.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                                       "categories": categories}))  # fmt: skip
    return len(annotations)


def step_seconds(model_name: str, classes: list[str], args: argparse.Namespace, data: Path) -> float:
    """Median time of one training step on a real batch, after a warm-up step."""
    import torch

    from imgrec.data import load_dataset
    from imgrec.data.stream import stream_batches
    from imgrec.models import create_model
    from imgrec.training.instance_api import instance_targets

    torch.set_num_threads(args.threads)
    model = create_model(model_name, classes, image_size=args.image_size, **TUNING)
    ds = load_dataset(data, task="instance")
    batch = next(iter(stream_batches(ds, model.preprocessing, range(args.batch_size), args.batch_size)))
    images, targets = instance_targets(ds, batch, None, np.random.default_rng(0))
    opt = torch.optim.AdamW(model.module.parameters(), 1e-4)
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        loss = sum(model.losses(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


# torchvision's sampling counts are tuned for 800-px photos with many objects; for a few objects
# on 320 px this keeps the same quality at a fraction of the cost (benchmarks/detect_train.py).
TUNING: dict[str, Any] = {"rpn_post_nms_top_n_train": 300, "box_batch_size_per_image": 64}


def train(args: argparse.Namespace, data: Path, classes: list[str]) -> dict[str, Any]:
    import imgrec
    from imgrec.config import DataConfig, TrainConfig

    steps = max(1, args.train_images // args.batch_size)
    estimate = step_seconds(args.model, classes, args, data) * steps * 4 / 3  # + the validation pass
    epochs = args.epochs or max(1, int(args.budget_min * 60 / estimate))
    cfg = TrainConfig(model=args.model, epochs=epochs, batch_size=args.batch_size, image_size=args.image_size,
                      augment="flip", num_threads=args.threads, device="cpu", model_args=TUNING)  # fmt: skip
    val = args.val_images / (args.train_images + args.val_images)
    started = time.perf_counter()
    run = imgrec.train(data, cfg, data_config=DataConfig(val=val, test=0.0, task="instance"),
                       out=Path(tempfile.mkdtemp()) / "run")  # fmt: skip
    m = run.metrics["val"]
    return {
        "model": args.model, "epochs": epochs, "epoch_estimate_s": round(estimate, 1),
        "seconds": round(time.perf_counter() - started, 1), "history": run.history.epochs if run.history else [],
        **{k: m.get(k) for k in ("map", "map50", "map75", "mask_map", "mask_map50", "mask_map75")},
        "per_class": {c: {"box_ap": v.get("ap"), "mask_ap": v.get("mask_ap")} for c, v in m["per_class"].items()},
        "kept_epoch": run.meta["training"]["kept_weights"]["epoch"], "peak_rss_mb": round(peak_rss_mb()),
        "load_avg": [round(v, 2) for v in os.getloadavg()],
    }  # fmt: skip


def main() -> None:
    args = parse_args()
    print_machine()
    classes = args.classes.split(",")
    data = Path(args.data) if args.data else Path(tempfile.mkdtemp()) / "pasted-fashion"
    if not (data / "annotations" / "instances.json").is_file():
        n = build(data, classes, args.train_images + args.val_images, args.image_size)
        print(f"{args.train_images + args.val_images} photos, {n} garments -> {data}", flush=True)
    result = train(args, data, classes)
    for row in result.pop("history"):
        print(f"  epoch {int(row['epoch']):>3}: loss {row['train_loss']:.4f}  val box AP {row.get('val_map', 0):.4f}  "
              f"val mask AP {row.get('val_mask_map', 0):.4f}  {row['seconds']:.0f} s")  # fmt: skip
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
