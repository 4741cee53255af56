"""Segmenters trained from scratch on the CPU within a time budget: val mIoU per epoch, peak RSS.

The data set is built here from real photos: the coco128 images
(``../shared/data/coco128/images/train2017``) holding one of a few categories (``--classes``,
default person, car, dog), with an index mask per image rasterized from the COCO polygons
(PIL; class = position in ``--classes`` + 1, objects of other categories are background,
largest painted first, crowd RLEs left out), written as a mask folder (``images/``, ``masks/``,
``classes.txt``) in a temp dir (``--data DIR`` keeps it).

Each model then trains through ``imgrec.train(...)`` like ``imgrec train DIR --model NAME``, in
its own process (so its peak RSS is its own), on a seeded split (``--val`` of the images for
val mIoU each epoch and the kept weights, no test split). The number of epochs is set so the
run fits the budget: three training steps are timed after a warm-up on a batch of the right
shape, and one epoch costs ``steps * step time + the validation pass`` (estimated at a third of
an epoch's steps); ``--epochs`` sets it instead. On a shared machine the estimate is rough: the
figures say how long it really took. Printed per epoch: train loss, val mIoU, seconds; at the
end: val mIoU, pixel accuracy, per-class IoU, total time, peak RSS, load average.

Usage:
    .venv/bin/python benchmarks/segment_train.py                               # unet-resnet18 and LR-ASPP, 20 min each
    .venv/bin/python benchmarks/segment_train.py --budget-min 6 --models unet-resnet18
    .venv/bin/python benchmarks/segment_train.py --budget-min 0.5 --image-size 64 --models unet-tiny   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, peak_rss_mb, print_machine

COCO = SHARED_DATA / "coco128"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="unet-resnet18,lraspp_mobilenet_v3_large")
    p.add_argument("--budget-min", type=float, default=20.0, help="training time per model, minutes")
    p.add_argument("--classes", default="person,car,dog")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--val", type=float, default=0.2)
    p.add_argument("--epochs", type=int, help="fixed epochs instead of the budget")
    p.add_argument("--dice-loss", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", help="keep the generated mask folder here")
    p.add_argument("--child", help=argparse.SUPPRESS)  # one model's run, in its own process
    return p.parse_args()


def build_masks(out: Path, names: list[str]) -> int:
    """The mask folder of coco128 photos holding one of ``names``; returns the image count."""
    from PIL import Image, ImageDraw

    doc = json.loads((COCO / "annotations" / "instances_train2017.json").read_text())
    cats = {c["id"]: names.index(c["name"]) + 1 for c in doc["categories"] if c["name"] in names}
    anns: dict[int, list[dict[str, Any]]] = {}
    for a in doc["annotations"]:
        if a["category_id"] in cats and isinstance(a["segmentation"], list):
            anns.setdefault(a["image_id"], []).append(a)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    for im in doc["images"]:
        if im["id"] not in anns:
            continue
        mask = Image.new("L", (im["width"], im["height"]), 0)
        draw = ImageDraw.Draw(mask)
        for a in sorted(anns[im["id"]], key=lambda a: -a["area"]):
            for poly in a["segmentation"]:
                if len(poly) >= 6:
                    draw.polygon(list(zip(poly[::2], poly[1::2], strict=True)), fill=cats[a["category_id"]])
        target = out / "images" / im["file_name"]
        if not target.exists():
            os.link(COCO / "images" / "train2017" / im["file_name"], target)
        mask.save(out / "masks" / f"{Path(im['file_name']).stem}.png")
    (out / "classes.txt").write_text("\n".join(["background", *names]) + "\n")
    return len(anns)


def step_seconds(model_name: str, classes: list[str], args: argparse.Namespace) -> float:
    """Median of three training steps (after one warm-up) on a batch of the run's shape."""
    import torch

    from imgrec.models import create_model
    from imgrec.training.segment_loop import segment_losses

    torch.set_num_threads(args.threads)
    model = create_model(model_name, classes, image_size=args.image_size)
    opt = torch.optim.AdamW(model.module.parameters(), lr=1e-4)
    x = np.random.default_rng(0).integers(0, 256, (args.batch_size, args.image_size, args.image_size, 3), np.uint8)
    y = torch.zeros((args.batch_size, args.image_size, args.image_size), dtype=torch.int64)
    model.train_mode()
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        loss = segment_losses(model.logits(model.normalize(x)), y, 255)["ce_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def child(args: argparse.Namespace) -> None:
    """One model: fit the epochs to the budget, train, print one JSON line."""
    import imgrec
    from imgrec.config import DataConfig, TrainConfig

    data = Path(args.data)
    classes = (data / "classes.txt").read_text().split()
    n_train = round(len(list((data / "images").iterdir())) * (1 - args.val))
    steps = max(1, n_train // args.batch_size)
    estimate = step_seconds(args.child, classes, args) * steps * 4 / 3  # + the validation pass
    epochs = args.epochs or max(1, int(args.budget_min * 60 / estimate))
    cfg = TrainConfig(model=args.child, epochs=epochs, batch_size=args.batch_size, image_size=args.image_size,
                      augment="flip", num_threads=args.threads, dice_loss=args.dice_loss, device="cpu")  # fmt: skip
    started = time.perf_counter()
    run = imgrec.train(data, cfg, data_config=DataConfig(val=args.val, test=0.0, task="segment"),
                       out=Path(tempfile.mkdtemp()) / "run")  # fmt: skip
    val = run.metrics["val"]
    print(json.dumps({
        "model": args.child, "epochs": epochs, "epoch_estimate_s": round(estimate, 1),
        "seconds": round(time.perf_counter() - started, 1), "params": run.meta["num_params"],
        "history": [{k: round(v, 4) for k, v in r.items() if k in ("epoch", "train_loss", "val_miou", "seconds")}
                    for r in run.history.epochs],
        "val_miou": val["miou"], "val_pixel_accuracy": val["pixel_accuracy"], "val_boundary_f1": val["boundary_f1"],
        "per_class_iou": {c: v["iou"] for c, v in val["per_class"].items()}, "val_images": val["images"],
        "kept_epoch": run.meta["training"]["kept_weights"]["epoch"], "peak_rss_mb": round(peak_rss_mb()),
        "load_avg": [round(v, 2) for v in os.getloadavg()],
    }))  # fmt: skip


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    print_machine()
    data = Path(args.data) if args.data else Path(tempfile.mkdtemp()) / "coco128-masks"
    if not (data / "classes.txt").is_file():
        print(f"images with a mask: {build_masks(data, args.classes.split(','))} -> {data}", flush=True)
    for name in args.models.split(","):
        cmd = [sys.executable, __file__, "--child", name, "--data", str(data), "--budget-min", str(args.budget_min),
               "--image-size", str(args.image_size), "--batch-size", str(args.batch_size), "--val", str(args.val),
               "--threads", str(args.threads), "--dice-loss", str(args.dice_loss)]  # fmt: skip
        if args.epochs:
            cmd += ["--epochs", str(args.epochs)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode or not lines:
            print(f"{name}: failed ({out.returncode})\n{out.stderr[-2000:]}")
            continue
        result = json.loads(lines[-1])
        for row in result.pop("history"):
            print(f"  {name} epoch {row['epoch']:>3}: loss {row['train_loss']:.4f}  val mIoU {row['val_miou']:.4f}  "
                  f"{row['seconds']:.0f} s")  # fmt: skip
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
