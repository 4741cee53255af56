"""Offline transfer learning: pretrain resnet18 on CIFAR-10, fine-tune it on ants/bees.

1. Pretrains ``resnet18`` from scratch on a class-balanced subset of
   ``../shared/data/cifar10-jpg/cifar10_jpg.zip`` with ``imgrec.train`` and keeps the run's
   ``weights.safetensors``; its accuracy on a subset of the CIFAR-10 test images is reported.
2. Trains ``resnet18`` on ``../shared/data/hymenoptera`` (245 train photos, ants vs bees)
   with the same seed, image size and schedule in up to three settings:
   ``scratch`` (random init), ``finetune`` (``weights=`` the CIFAR file, everything trained)
   and ``frozen`` (``weights=`` the CIFAR file, ``freeze="backbone"``: only the new head).

The hymenoptera ``val/`` folder (153 photos) is used as the **test set**: it is relabeled
``test`` before splitting, so no checkpoint is picked on it. By default nothing is held
out for validation either (``--val-fraction 0``): every run trains for the fixed number of
epochs and the last epoch's weights are evaluated. Likewise for the CIFAR-10 pretraining.

Usage:
    .venv/bin/python benchmarks/transfer.py --json /tmp/transfer.json
    .venv/bin/python benchmarks/transfer.py --per-class 50 --pre-epochs 1 --ft-epochs 1  # smoke

Defaults (1500 CIFAR-10 training images at 64 px for 4 epochs, then 4 epochs per ants/bees
setting at 112 px) take about 20 minutes on 2 shared CPU cores; on a GPU raise ``--per-class``
and the epochs. Wall time depends on what else runs on the machine; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, machine_info, peak_rss_mb, print_machine, timer

SETTINGS = ("scratch", "finetune", "frozen")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--cifar", default=str(SHARED_DATA / "cifar10-jpg" / "cifar10_jpg.zip"))
    p.add_argument("--target", default=str(SHARED_DATA / "hymenoptera"))
    p.add_argument("--per-class", type=int, default=150, help="CIFAR-10 training images per class")
    p.add_argument("--test-per-class", type=int, default=50, help="CIFAR-10 test images per class")
    p.add_argument("--pre-size", type=int, default=64, help="pretraining image side (px)")
    p.add_argument("--pre-epochs", type=int, default=4)
    p.add_argument("--pre-batch", type=int, default=64)
    p.add_argument("--ft-size", type=int, default=112, help="fine-tuning image side (px)")
    p.add_argument("--ft-epochs", type=int, default=4)
    p.add_argument("--ft-batch", type=int, default=32)
    p.add_argument("--ft-lr", type=float, default=None, help="fine-tuning lr; default: the model's")
    p.add_argument("--val-fraction", type=float, default=0.0, help="of the train photos, for checkpoint picking")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma list of {', '.join(SETTINGS)}")
    p.add_argument("--pretrained-weights", default=None, help="skip pretraining: use this .safetensors")
    p.add_argument("--threads", type=int, default=None, help="torch threads; default: all cores")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="where run folders go; default: a temp folder")
    p.add_argument("--json", default=None, help="write the figures here")
    return p.parse_args()


def cifar_subset(path: str, per_class: int, test_per_class: int, seed: int) -> Any:
    """A class-balanced subset of the pre-split CIFAR-10 zip (train and test items)."""
    import imgrec

    ds = imgrec.load_dataset(path)
    rng = np.random.default_rng(seed)
    picked = []
    for split, n in (("train", per_class), ("test", test_per_class)):
        for c in range(len(ds.classes)):
            idx = np.flatnonzero((ds.splits == split) & (ds.labels == c))
            picked.append(rng.choice(idx, size=min(n, len(idx)), replace=False))
    return ds.subset(np.sort(np.concatenate(picked)))


def target_dataset(path: str) -> Any:
    """The ants/bees folder with its ``val/`` photos relabeled as the test split."""
    import imgrec

    ds = imgrec.load_dataset(path)
    if ds.splits is None:
        raise SystemExit(f"{path} is not pre-split into train/ val/")
    ds.splits = np.where(ds.splits == "val", "test", ds.splits)
    return ds


def train_once(data: Any, cfg: Any, val_fraction: float, seed: int, out: Path) -> dict[str, Any]:
    """One ``imgrec.train`` run; its test figures, wall seconds and the peak RSS so far."""
    import imgrec

    times: dict[str, float] = {}
    with timer(times, "wall"):
        run = imgrec.train(data, cfg, data_config=imgrec.DataConfig(val=val_fraction, test=0.0, seed=seed), out=out)
    test = run.metrics.get("test", {})
    return {
        "accuracy": round(float(test.get("accuracy", float("nan"))), 4),
        "macro_f1": round(float(test.get("macro_f1", float("nan"))), 4),
        "train_seconds": run.meta["timing"]["train_seconds"],
        "wall_seconds": times["wall"],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "splits": run.meta["data"]["splits"],
        "run_dir": str(run.path),
    }


def pretrain(args: argparse.Namespace, work: Path) -> tuple[str, dict[str, Any]]:
    """Train on the CIFAR-10 subset; the weights file and the figures."""
    import imgrec

    data = cifar_subset(args.cifar, args.per_class, args.test_per_class, args.seed)
    cfg = imgrec.TrainConfig(
        model=args.model, image_size=args.pre_size, epochs=args.pre_epochs, batch_size=args.pre_batch,
        augment="standard", seed=args.seed, num_threads=args.threads,
    )
    figures = train_once(data, cfg, 0.0, args.seed, work / "cifar10-pretrain")
    return str(work / "cifar10-pretrain" / "weights.safetensors"), figures


def finetune_config(args: argparse.Namespace, setting: str, weights: str) -> Any:
    """The same schedule for every setting; only the starting weights and freezing differ."""
    import imgrec

    return imgrec.TrainConfig(
        model=args.model, image_size=args.ft_size, epochs=args.ft_epochs, batch_size=args.ft_batch,
        lr=args.ft_lr, augment="standard", seed=args.seed, num_threads=args.threads,
        weights=None if setting == "scratch" else weights,
        freeze="backbone" if setting == "frozen" else "none",
    )


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'setting':<22}{'test acc':>9}{'macro F1':>10}{'train s':>9}{'wall s':>8}{'peak RSS MB':>13}")
    for name, r in rows.items():
        print(
            f"{name:<22}{r['accuracy']:>9.4f}{r['macro_f1']:>10.4f}{r['train_seconds']:>9.1f}"
            f"{r['wall_seconds']:>8.1f}{r['peak_rss_mb']:>13.1f}"
        )


def main() -> None:
    args = parse_args()
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise SystemExit(f"unknown settings {sorted(unknown)}; choose from {', '.join(SETTINGS)}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="imgrec-transfer-"))
    print("machine:")
    print_machine()
    print(f"  load average: {os.getloadavg()}")
    started = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    weights = args.pretrained_weights
    if weights is None and settings != ["scratch"]:
        weights, rows["cifar10-pretrain"] = pretrain(args, work)
        print(f"pretrained: {rows['cifar10-pretrain']}", flush=True)
    target = target_dataset(args.target)
    for setting in settings:
        cfg = finetune_config(args, setting, str(weights))
        rows[f"ants-bees {setting}"] = train_once(target, cfg, args.val_fraction, args.seed, work / setting)
        print(f"{setting}: {rows[f'ants-bees {setting}']}", flush=True)
    print_table(rows)
    total = round(time.perf_counter() - started, 1)
    print(f"\ntotal wall: {total} s; load average now: {os.getloadavg()}; run folders in {work}")
    if args.json:
        report = {"args": vars(args), "machine": machine_info(), "results": rows, "total_seconds": total}
        Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
