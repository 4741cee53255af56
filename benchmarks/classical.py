"""Train a classical (scikit-learn) model on a real dataset; print accuracy, wall time, peak memory.

Datasets (read with imgrec's own readers, prepared with the model's preprocessing):

- ``fashion-mnist``: ../shared/data/fashion-mnist, 60k train / 10k test, 28 px.
- ``digits``: scikit-learn's 8x8 digits upscaled to 32 px (bilinear), a seeded stratified
  75/25 split.
- ``cifar10``: ../shared/data/cifar10-jpg/cifar10_jpg.zip, 50k train / 10k test, 32 px.

Usage:
    .venv/bin/python benchmarks/classical.py --dataset fashion-mnist           # hog-pixels-svm
    .venv/bin/python benchmarks/classical.py --dataset digits --model hog-svm
    .venv/bin/python benchmarks/classical.py --dataset cifar10 --limit 10000 --arg C=5
    .venv/bin/python benchmarks/classical.py --dataset fashion-mnist --threads 1

``--threads`` caps the BLAS/OpenMP threads (threadpoolctl). On a busy machine with few
cores, 1 thread is often much faster than the default: idle threads spin while waiting.
Fit time includes feature extraction; decoding and resizing are timed apart ("prepare").
Wall times depend on what else runs on the machine; the load average is printed.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, peak_rss_mb, print_machine

DEFAULT_MODEL = {"fashion-mnist": "hog-pixels-svm", "digits": "hog-svm", "cifar10": "hog-lbp-color-svm"}
DEFAULT_SIZE = {"fashion-mnist": 28, "digits": 32, "cifar10": 32}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=sorted(DEFAULT_MODEL), default="fashion-mnist")
    p.add_argument("--model", default=None, help="default: the best one for the dataset")
    p.add_argument("--limit", type=int, default=0, help="use only N training images (seeded)")
    p.add_argument("--size", type=int, default=None, help="input side; default: the data's")
    p.add_argument("--arg", action="append", default=[], help="model option KEY=VALUE")
    p.add_argument("--threads", type=int, default=None, help="BLAS/OpenMP threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results to this file")
    return p.parse_args()


def model_args(pairs: list[str]) -> dict[str, Any]:
    """``["C=10", "pca=None"]`` -> ``{"C": 10, "pca": None}`` (values as Python literals)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def load_split(dataset: str, seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """The dataset and its train / test item indices."""
    from imgrec.data import load_dataset, split_dataset

    if dataset == "digits":
        ds = load_dataset("digits")
        splits = split_dataset(ds, val=0.0, test=0.25, seed=seed)
        return ds, splits.indices["train"], splits.indices["test"]
    path = SHARED_DATA / ("fashion-mnist" if dataset == "fashion-mnist" else "cifar10-jpg/cifar10_jpg.zip")
    ds = load_dataset(path)
    if ds.splits is None:
        raise SystemExit(f"{path} is not pre-split into train/test")
    return ds, np.flatnonzero(ds.splits == "train"), np.flatnonzero(ds.splits == "test")


def prepare(ds: Any, idx: np.ndarray, model: Any) -> tuple[np.ndarray, np.ndarray]:
    """Decode and prepare the items ``idx`` with the model's preprocessing."""
    from imgrec.data import materialize

    got = materialize(ds.subset(idx), model.preprocessing, workers=4)
    if got.bad:
        print(f"  skipped {len(got.bad)} unreadable items, e.g. {got.bad[0]}")
    return got.images, got.labels


def threads_limit(n: int | None) -> contextlib.AbstractContextManager[Any]:
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from imgrec.models import create_model

    name = args.model or DEFAULT_MODEL[args.dataset]
    res: dict[str, Any] = {"dataset": args.dataset, "model": name, "threads": args.threads}
    t0 = time.perf_counter()
    ds, train_idx, test_idx = load_split(args.dataset, args.seed)
    if args.limit and args.limit < len(train_idx):
        rng = np.random.default_rng(args.seed)
        train_idx = np.sort(rng.choice(train_idx, args.limit, replace=False))
    model = create_model(name, ds.classes, image_size=args.size or DEFAULT_SIZE[args.dataset], **model_args(args.arg))
    x_train, y_train = prepare(ds, train_idx, model)
    x_test, y_test = prepare(ds, test_idx, model)
    res.update(train=len(y_train), test=len(y_test), size=model.preprocessing.size)
    res["prepare_s"] = round(time.perf_counter() - t0, 1)
    with threads_limit(args.threads):
        t1 = time.perf_counter()
        model.fit(x_train, y_train)
        t2 = time.perf_counter()
        proba = model.predict_proba(x_test)
        t3 = time.perf_counter()
    res.update(fit_s=round(t2 - t1, 1), predict_s=round(t3 - t2, 1), fit_predict_s=round(t3 - t1, 1))
    res["accuracy"] = round(float((proba.argmax(1) == y_test).mean()), 4)
    res["proba_row_sum_max_error"] = float(np.abs(proba.sum(1) - 1).max())
    res["model_args"] = model.model_args
    res["pipeline"] = [f"{n}:{type(s).__name__}" for n, s in model.pipeline.steps]
    res["num_params"] = model.num_params()
    res["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return res


def main() -> None:
    args = parse_args()
    print("machine:")
    print_machine()
    print(f"  load average: {os.getloadavg()}")
    res = run(args)
    print(json.dumps(res, indent=2, default=str))
    print(f"  load average after: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
