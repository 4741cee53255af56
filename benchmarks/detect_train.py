"""Detectors trained from scratch on the CPU, each within a time budget: val mAP@.5 per epoch.

The data set is built here from real photos: CIFAR-10 objects (from
``../shared/data/cifar10-jpg/cifar10_jpg.zip``, training part) upscaled and pasted at known
boxes onto crops of the coco128 photos (``../shared/data/coco128/images/train2017``): 1-4
objects per image, random scale (``--min-obj``..``--max-obj`` pixels on the long side),
position (overlap with earlier objects limited), a few classes (``--classes``). Each image is
``--width`` x 3/4 of it; it is written as a YOLO folder (images/, labels/, data.yaml) in a
temp dir (``--data DIR`` keeps it). Backgrounds 0-99 make the training images, 100-127 the
validation and test images, and every object is a different CIFAR-10 photo, so nothing seen
in training comes back in validation.

Each model then trains through ``imgrec.train(...)`` like ``imgrec train DIR --model NAME``,
in its own process (so its peak RSS is its own); the images of the held-out backgrounds are
split half for validation (mAP each epoch, the kept weights) and half for the test. The number
of epochs is set so the run fits the budget: training steps are timed first (the median of
five after two warm-ups), and one epoch costs ``steps * step time + the validation pass``;
``--epochs`` sets it instead. On a shared machine the estimate is rough: the figures say how
long it really took, and when val mAP@.5 first reached 0.5. Printed per epoch: train loss, val mAP@.5 and
mAP@[.5:.95], seconds; at the end: test mAP@.5, total time, peak RSS, load average.

Usage:
    .venv/bin/python benchmarks/detect_train.py                             # yolo-n and Faster R-CNN, 20 min each
    .venv/bin/python benchmarks/detect_train.py --models yolo-n --budget-min 5
    .venv/bin/python benchmarks/detect_train.py --train-images 40 --budget-min 1 --image-size 128   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, peak_rss_mb, print_machine

CIFAR = SHARED_DATA / "cifar10-jpg" / "cifar10_jpg.zip"
COCO = SHARED_DATA / "coco128" / "images" / "train2017"
TRAIN_BACKGROUNDS = 100  # coco128 photos 0-99 for training images, the rest for val/test


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="yolo-n,fasterrcnn_mobilenet_v3_large_fpn")
    p.add_argument("--budget-min", type=float, default=20.0, help="training time per model, minutes")
    p.add_argument("--classes", default="airplane,automobile,frog,ship")
    p.add_argument("--train-images", type=int, default=800, help="images from the training backgrounds")
    p.add_argument("--eval-images", type=int, default=200, help="images from the other backgrounds (val + test)")
    p.add_argument("--width", type=int, default=256, help="width of each generated image (height 3/4 of it)")
    p.add_argument("--min-obj", type=int, default=32)
    p.add_argument("--max-obj", type=int, default=96)
    p.add_argument("--epochs", type=int, default=None, help="instead of the budget's estimate")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=None, help="default: the model's")
    p.add_argument("--augment", default="flip")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", type=Path, default=None, help="write (or reuse) the YOLO folder here")
    p.add_argument("--only", default=None, help=argparse.SUPPRESS)  # the child process: one model
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a model option, as `imgrec train --model-arg` (e.g. rpn_post_nms_top_n_train=300)")
    return p.parse_args()


def model_args(args: argparse.Namespace) -> dict[str, str]:
    """``--model-arg KEY=VALUE`` pairs as a dict (values stay strings, the model checks them)."""
    return dict(pair.split("=", 1) for pair in args.model_arg)


# ---------------------------------------------------------------- the data set


def cifar_objects(classes: list[str], per_class: int, rng: np.random.Generator) -> dict[str, list[bytes]]:
    """``per_class`` random CIFAR-10 training JPEGs of each class (encoded bytes)."""
    with zipfile.ZipFile(CIFAR) as zf:
        names = [n for n in zf.namelist() if n.endswith(".jpg")]
        out = {}
        for cls in classes:
            mine = sorted(n for n in names if f"train/{cls}/" in n)
            if not mine:
                raise SystemExit(f"no CIFAR-10 class {cls!r} in {CIFAR}")
            pick = rng.choice(len(mine), size=min(per_class, len(mine)), replace=False)
            out[cls] = [zf.read(mine[i]) for i in pick]
    return out


def _free_spot(boxes: list[tuple[int, int, int, int]], w: int, h: int, side: int, rng: np.random.Generator) -> Any:
    """A top-left corner where a ``side`` square overlaps earlier boxes by under a third of it."""
    for _ in range(20):
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        ok = all(_overlap((x, y, x + side, y + side), b) < side * side / 3 for b in boxes)
        if ok:
            return x, y
    return None


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _background(path: Path, w: int, h: int, rng: np.random.Generator) -> Any:
    """A random crop of the photo with the aspect ratio of ``w x h``, resized to it, maybe flipped."""
    from PIL import Image

    im = Image.open(path).convert("RGB")
    scale = rng.uniform(0.6, 1.0)
    cw = int(min(im.width, im.height * w / h) * scale)
    ch = int(cw * h / w)
    x, y = int(rng.integers(0, im.width - cw + 1)), int(rng.integers(0, im.height - ch + 1))
    im = im.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BILINEAR)
    return im.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else im


def compose(bg: Any, objects: list[tuple[int, bytes]], args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    """Paste the objects onto ``bg`` in place; return their YOLO label lines."""
    import io

    from PIL import Image

    w, h = bg.size
    boxes: list[tuple[int, int, int, int]] = []
    lines = []
    for cls, data in objects:
        side = int(rng.integers(args.min_obj, args.max_obj + 1))
        spot = _free_spot(boxes, w, h, side, rng)
        if spot is None:
            continue
        obj = Image.open(io.BytesIO(data)).convert("RGB").resize((side, side), Image.BICUBIC)
        bg.paste(obj, spot)
        x, y = spot
        boxes.append((x, y, x + side, y + side))
        lines.append(f"{cls} {(x + side / 2) / w:.6f} {(y + side / 2) / h:.6f} {side / w:.6f} {side / h:.6f}\n")
    return lines


def build_dataset(root: Path, args: argparse.Namespace) -> Path:
    """The YOLO folder (kept when it exists: same arguments, same images)."""
    if (root / "data.yaml").is_file():
        return root
    rng = np.random.default_rng(args.seed)
    classes = args.classes.split(",")
    total = args.train_images + args.eval_images
    pool = cifar_objects(classes, total * 4 // len(classes) + 1, rng)
    photos = sorted(COCO.glob("*.jpg"))
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    used = dict.fromkeys(classes, 0)
    for i in range(total):
        first = i < args.train_images
        index = int(rng.integers(0, TRAIN_BACKGROUNDS)) if first else int(rng.integers(TRAIN_BACKGROUNDS, len(photos)))
        bg = _background(photos[index], args.width, args.width * 3 // 4, rng)
        objects = []
        for _ in range(int(rng.integers(1, 5))):
            k = int(rng.integers(0, len(classes)))
            objects.append((k, pool[classes[k]][used[classes[k]] % len(pool[classes[k]])]))
            used[classes[k]] += 1
        lines = compose(bg, objects, args, rng)
        name = f"{'t' if first else 'v'}{i:05d}"
        bg.save(root / "images" / f"{name}.jpg", quality=90)
        (root / "labels" / f"{name}.txt").write_text("".join(lines))
    (root / "data.yaml").write_text("names: [" + ", ".join(classes) + "]\n")
    return root


def split_file(root: Path) -> tuple[Path, int]:
    """A split manifest (training images from backgrounds 0-99; val and test from the rest, half
    each) and the number of training images."""
    from imgrec.data import load_dataset
    from imgrec.data.split import Splits

    ds = load_dataset(root)
    names = [Path(str(s)).stem for s in ds.sources]
    evals = [i for i, n in enumerate(names) if n.startswith("v")]
    indices = {"train": np.asarray([i for i, n in enumerate(names) if n.startswith("t")]),
               "val": np.asarray(evals[0::2]), "test": np.asarray(evals[1::2])}  # fmt: skip
    path = root.parent / f"{root.name}-splits.json"
    Splits.from_indices(ds, indices, 0, {"val": 0.5, "test": 0.5}).save(path)
    return path, len(indices["train"])


# ---------------------------------------------------------------- one model (child process)


def step_seconds(name: str, data: Path, args: argparse.Namespace) -> float:
    """Seconds per training step (batch of ``--batch-size``): the median of five steps after two warm-ups."""
    import torch

    from imgrec.data import load_dataset
    from imgrec.models import create_model

    ds = load_dataset(data)
    model = create_model(name, ds.classes, image_size=args.image_size, **model_args(args))
    opt = torch.optim.AdamW(model.module.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 255, (args.batch_size, args.image_size, args.image_size, 3), dtype=np.uint8)
    box = np.array([[10, 10, 60, 60], [80, 90, 150, 180]], np.float32)
    targets = [{"boxes": box, "labels": np.array([0, 1])} for _ in range(args.batch_size)]
    times = []
    for _ in range(7):
        started = time.perf_counter()
        loss = sum(model.losses(batch, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - started)
    return float(np.median(times[2:]))  # the first steps set up kernels and memory


class Progress:
    """Prints one line per epoch (the library never prints; the benchmark does)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.rows: list[dict[str, Any]] = []

    def on_train_start(self, *a: Any, **k: Any) -> None: ...
    def on_epoch_start(self, *a: Any) -> None: ...
    def on_batch_end(self, *a: Any) -> None: ...
    def on_train_end(self, *a: Any) -> None: ...

    def on_epoch_end(self, epoch: int, row: dict[str, Any]) -> None:
        elapsed = time.perf_counter() - self.started
        self.rows.append({**row, "elapsed": round(elapsed, 1)})
        print(f"    epoch {epoch:3d}  loss {row.get('train_loss', float('nan')):7.3f}  val mAP@.5 "
              f"{row.get('val_map50', float('nan')):.3f}  mAP {row.get('val_map', float('nan')):.3f}  "
              f"{row.get('seconds', 0):6.1f} s  (total {elapsed / 60:5.1f} min)", flush=True)  # fmt: skip


def run_one(name: str, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    import imgrec
    from imgrec.config import DataConfig, TrainConfig

    torch.set_num_threads(args.threads)
    splits, n_train = split_file(data)
    steps = -(-n_train // args.batch_size)
    step = 0.0 if args.epochs else step_seconds(name, data, args)
    val_s = args.eval_images / 2 * step / args.batch_size * 0.6  # inference: about 0.3 of a training step per image
    epochs = args.epochs or max(1, int(args.budget_min * 60 / (steps * step * 1.1 + val_s)))
    print(f"  {name}: {step:.2f} s per step of {args.batch_size}, {steps} steps per epoch -> {epochs} epochs",
          flush=True)  # fmt: skip
    cfg = TrainConfig(model=name, epochs=epochs, batch_size=args.batch_size, image_size=args.image_size,
                      lr=args.lr, augment=args.augment, num_threads=args.threads, seed=args.seed,
                      warmup_epochs=min(1.0, epochs / 10), model_args=model_args(args))  # fmt: skip
    progress = Progress()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run = imgrec.train(data, cfg, data_config=DataConfig(), out=Path(tmp) / "run", splits=splits,
                           callbacks=[progress])  # type: ignore[list-item]  # fmt: skip
        seconds = time.perf_counter() - started
        metrics = run.meta.get("metrics", {})
    best = max((r.get("val_map50", 0.0) for r in progress.rows), default=0.0)
    reached = next((r["elapsed"] for r in progress.rows if r.get("val_map50", 0.0) >= 0.5), None)
    return {"model": name, "epochs": epochs, "step_seconds": round(step, 3), "train_minutes": round(seconds / 60, 2),
            "best_val_map50": round(best, 4), "minutes_to_map50_0.5": reached and round(reached / 60, 1),
            "test": metrics.get("test"), "val": metrics.get("val"),
            "peak_rss_mb": round(peak_rss_mb()), "load_average": os.getloadavg(), "history": progress.rows}  # fmt: skip


# ---------------------------------------------------------------- main


def child(name: str, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one model in a fresh process; its figures come back as the last line of its output."""
    cmd = [sys.executable, __file__, "--only", name, "--data", str(data), *_passed(args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    last = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            last = line[7:]
        else:
            print(line, end="", flush=True)
    if proc.wait() != 0 or not last:
        return {"model": name, "error": f"exit code {proc.returncode}"}
    return json.loads(last)


def _passed(args: argparse.Namespace) -> list[str]:
    keep = ("budget_min", "epochs", "classes", "train_images", "eval_images", "image_size", "batch_size", "lr",
            "augment", "threads", "seed", "width", "min_obj", "max_obj")  # fmt: skip
    out = []
    for k in keep:
        v = getattr(args, k)
        if v is not None:
            out += [f"--{k.replace('_', '-')}", str(v)]
    for pair in args.model_arg:
        out += ["--model-arg", pair]
    return out


def summary(results: list[dict[str, Any]]) -> None:
    print("\n  model                               epochs  best val mAP@.5  test mAP@.5  test mAP  train min  "
          "peak RSS MB")  # fmt: skip
    for r in results:
        if "error" in r:
            print(f"  {r['model']:36s} failed: {r['error']}")
            continue
        test = r.get("test") or {}
        print(f"  {r['model']:36s} {r['epochs']:6d}  {r['best_val_map50']:15.3f}  {test.get('map50') or 0:11.3f}  "
              f"{test.get('map') or 0:8.3f}  {r['train_minutes']:9.1f}  {r['peak_rss_mb']:11.0f}")  # fmt: skip


def main() -> None:
    args = parse_args()
    if args.only:
        result = run_one(args.only, args.data, args)
        print("RESULT " + json.dumps(result, default=str), flush=True)
        return
    print_machine()
    print(f"  load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = build_dataset(args.data or Path(tmp) / "pasted", args)
        print(f"  data: {data} ({args.train_images} + {args.eval_images} images, classes {args.classes})", flush=True)
        results = [child(name, data, args) for name in args.models.split(",")]
    summary(results)
    print(f"  load average at end: {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
