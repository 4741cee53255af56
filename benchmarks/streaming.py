"""Training from files, cached in memory or streamed: epoch time, peak memory, same numbers.

Trains ``cnn-bn`` through ``imgrec.train`` (as ``imgrec train DIR --cache MODE``) on a
seeded subset of the CIFAR-10 JPEG archive in ../shared/data, once per cache mode, each in its
own process, and prints per mode: the scan (first decoding pass), the mean epoch time, the
peak RSS, and the training losses (which must be equal: both modes feed the same arrays).

Usage:
    .venv/bin/python benchmarks/streaming.py                        # 10000 images, 2 epochs, ram vs off
    .venv/bin/python benchmarks/streaming.py --images 50000 --epochs 1 --image-size 64
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, peak_rss_mb, print_machine

CIFAR = SHARED_DATA / "cifar10-jpg" / "cifar10_jpg.zip"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=10000, help="training images taken from the archive's train/")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2, help="decoding threads")
    p.add_argument("--modes", default="ram,off")
    p.add_argument("--only", default=None, help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    return p.parse_args()


def write_subset(out: Path, n: int) -> Path:
    """``n`` JPEGs of the archive's train/ (every k-th, all classes) as a class-folder dataset."""
    with zipfile.ZipFile(CIFAR) as zf:
        names = sorted(x for x in zf.namelist() if "/train/" in f"/{x}" and x.endswith(".jpg"))
        step = max(1, len(names) // n)
        for name in names[::step][:n]:
            cls = name.split("/")[-2]
            (out / cls).mkdir(parents=True, exist_ok=True)
            (out / cls / Path(name).name).write_bytes(zf.read(name))
    return out


def run_one(mode: str, data: Path, args: argparse.Namespace) -> dict:
    import torch

    import imgrec
    from imgrec.config import DataConfig, TrainConfig

    torch.set_num_threads(args.threads)
    cfg = TrainConfig(model="cnn-bn", epochs=args.epochs, batch_size=args.batch_size, image_size=args.image_size,
                      augment="flip", num_threads=args.threads, seed=0)  # fmt: skip
    dcfg = DataConfig(val=0.1, test=0.0, cache=mode, workers=args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run = imgrec.train(data, cfg, data_config=dcfg, out=Path(tmp) / "run")
        total = time.perf_counter() - started
    epochs = [r["seconds"] for r in run.history.epochs]
    return {"mode": mode, "total_s": round(total, 1), "epoch_s": [round(s, 1) for s in epochs],
            "train_loss": [r["train_loss"] for r in run.history.epochs], "val_accuracy": run.metrics["val"]["accuracy"],
            "peak_rss_mb": round(peak_rss_mb()), "load_average": os.getloadavg()}  # fmt: skip


def main() -> None:
    args = parse_args()
    if args.only:
        print("RESULT " + json.dumps(run_one(args.only, args.data, args)))
        return
    print_machine()
    tmp = Path(tempfile.mkdtemp(prefix="imgrec-stream-"))
    try:
        data = write_subset(tmp / "data", args.images)
        results = []
        for mode in args.modes.split(","):
            cmd = [sys.executable, __file__, "--only", mode, "--data", str(data), "--epochs", str(args.epochs),
                   "--image-size", str(args.image_size), "--batch-size", str(args.batch_size),
                   "--threads", str(args.threads), "--workers", str(args.workers)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(next(x for x in out.splitlines() if x.startswith("RESULT "))[7:]))
            print(json.dumps(results[-1]), flush=True)
        print(f"\n{'mode':6} {'total s':>8} {'epoch s':>16} {'val acc':>8} {'peak RSS MB':>12}")
        for r in results:
            print(f"{r['mode']:6} {r['total_s']:8.1f} {r['epoch_s']!s:>16} {r['val_accuracy']:8.4f} "
                  f"{r['peak_rss_mb']:12d}")  # fmt: skip
        same = len({json.dumps(r["train_loss"]) for r in results}) == 1
        print(f"training losses identical across modes: {same}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
