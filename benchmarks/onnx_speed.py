"""Torch eager vs ONNX Runtime fp32 vs static int8: throughput, and the int8 accuracy cost.

Speed: resnet18, resnet50 and mobilenetv3_large_100 (untrained timm weights: speed does not
depend on them) at 224 px, batch 1 and 16, each backend called the way Predictor calls it
(``predict_proba`` on prepared uint8 batches), with the same number of threads for torch and
onnxruntime. The int8 models are calibrated on real photos (hymenoptera).

Accuracy: a model trained on real data (default cnn-bn on a Fashion-MNIST subset), exported
and quantized by imgrec.export's functions, then scored on the 10k test images by torch, ORT
fp32 and ORT int8.

Reference: the machine's fp32 matmul GFLOP/s (a large torch matmul) and ResNet-50 fp32 batch-16
throughput against 0.5 x GFLOP/s / 8.2 GFLOP per image.

Usage:
    .venv/bin/python benchmarks/onnx_speed.py                       # everything (several minutes)
    .venv/bin/python benchmarks/onnx_speed.py --models resnet18 --skip-accuracy
    .venv/bin/python benchmarks/onnx_speed.py --threads 1 --train-limit 10000 --epochs 2

Targets: ORT fp32 >= 1.0x torch eager; int8 >= 1.5x ORT fp32 and >= 2x torch eager, with a
top-1 drop <= 1 point. The machine is shared: compare ratios, and read the load average.
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
from common import SHARED_DATA, print_machine

SPEED_MODELS = ("resnet18", "resnet50", "mobilenetv3_large_100")
RESNET50_GFLOP = 8.2


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(SPEED_MODELS))
    p.add_argument("--batches", default="1,16")
    p.add_argument("--threads", type=int, default=None, help="torch and onnxruntime threads (default: physical cores)")
    p.add_argument("--iters", type=int, default=20, help="timed calls per measurement at most")
    p.add_argument("--seconds", type=float, default=8.0, help="time per measurement at most")
    p.add_argument("--calibration", type=int, default=32, help="calibration photos for the speed models")
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--acc-model", default="cnn-bn")
    p.add_argument("--train-limit", type=int, default=20000, help="Fashion-MNIST training images used")
    p.add_argument("--epochs", type=int, default=3)
    return p.parse_args()


def matmul_gflops(threads: int, n: int = 2048, rounds: int = 5) -> float:
    """Best fp32 GFLOP/s of an n x n x n torch matmul."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(rounds))
    return 2 * n**3 / best / 1e9


def _seconds(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def photos(size: int, n: int) -> np.ndarray:
    """Real photos (hymenoptera val) prepared at ``size``."""
    from imgrec.data import load_dataset, materialize
    from imgrec.transforms.preprocess import Preprocessing

    ds = load_dataset(SHARED_DATA / "hymenoptera" / "val")
    prep = Preprocessing(size=size)
    idx = np.random.default_rng(0).choice(len(ds), size=min(n, len(ds)), replace=False)
    return materialize(ds.subset(idx), prep).images


def export_pair(model: Any, folder: Path, calibration: np.ndarray, threads: int) -> tuple[Any, Any, dict[str, Any]]:
    """fp32 and int8 OnnxClassifiers of a torch classifier, made by imgrec.export's own functions."""
    from imgrec.export import onnx_export, quantize
    from imgrec.models.onnx_backend import load_onnx_file

    started = time.perf_counter()
    onnx_export.export_torch(model, folder / "raw.onnx")
    onnx_export.write_with_metadata(folder / "raw.onnx", folder / "model.onnx", onnx_export.metadata(model))
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    quantize.quantize_int8(folder / "model.onnx", folder / "raw8.onnx", calibration)
    props = onnx_export.metadata(model, {"quantization": quantize.SCHEME})
    onnx_export.write_with_metadata(folder / "raw8.onnx", folder / "model.int8.onnx", props)
    info = {"export_s": round(export_s, 1), "quantize_s": round(time.perf_counter() - started, 1),
            "fp32_mb": round((folder / "model.onnx").stat().st_size / 1e6, 2),
            "int8_mb": round((folder / "model.int8.onnx").stat().st_size / 1e6, 2)}
    return load_onnx_file(folder / "model.onnx", threads), load_onnx_file(folder / "model.int8.onnx", threads), info


def throughput(model: Any, images: np.ndarray, batch: int, iters: int, seconds: float) -> dict[str, float]:
    from imgrec.evaluation.speed import time_calls

    x = np.ascontiguousarray(np.concatenate([images] * (-(-batch // len(images))))[:batch])
    t = np.asarray(time_calls(lambda: model.predict_proba(x), warmup=1, max_iters=iters, max_seconds=seconds))
    return {"images_per_s": round(batch / float(np.median(t)), 2), "p50_ms": round(1000 * float(np.median(t)), 2),
            "calls": len(t)}


def speed_section(args: argparse.Namespace, threads: int) -> dict[str, Any]:
    from imgrec.models import create_model

    out: dict[str, Any] = {}
    calib = photos(224, args.calibration)
    batches = [int(b) for b in args.batches.split(",")]
    for name in args.models.split(","):
        torch_model = create_model(name, [f"c{i}" for i in range(10)], image_size=224)
        with tempfile.TemporaryDirectory() as tmp:
            fp32, int8, info = export_pair(torch_model, Path(tmp), calib, threads)
            rows = {}
            for b in batches:
                rows[b] = {k: throughput(m, calib, b, args.iters, args.seconds)
                           for k, m in (("torch", torch_model), ("ort_fp32", fp32), ("ort_int8", int8))}
                r = {k: v["images_per_s"] for k, v in rows[b].items()}
                rows[b]["ratios"] = {"fp32_vs_torch": round(r["ort_fp32"] / r["torch"], 2),
                                     "int8_vs_fp32": round(r["ort_int8"] / r["ort_fp32"], 2),
                                     "int8_vs_torch": round(r["ort_int8"] / r["torch"], 2)}
                print(f"  {name} batch {b}: {json.dumps(rows[b])}", flush=True)
        out[name] = {**info, "batches": rows, "load_average": round(os.getloadavg()[0], 2)}
    return out


def fashion_arrays(limit: int) -> tuple[list[str], tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    from imgrec.data import load_dataset, materialize
    from imgrec.transforms.preprocess import Preprocessing

    ds = load_dataset(SHARED_DATA / "fashion-mnist")
    prep = Preprocessing(size=28, grayscale=True)
    parts = []
    for split in ("train", "test"):
        idx = np.flatnonzero(ds.splits == split)
        idx = np.random.default_rng(0).permutation(idx)[:limit] if split == "train" else idx
        m = materialize(ds.subset(idx), prep)
        parts.append((m.images, m.labels))
    return ds.classes, parts[0], parts[1]


def accuracy_section(args: argparse.Namespace, threads: int) -> dict[str, Any]:
    from imgrec.config import TrainConfig
    from imgrec.models import create_model
    from imgrec.training.loop import fit_torch, seed_everything

    classes, (x_tr, y_tr), (x_te, y_te) = fashion_arrays(args.train_limit)
    seed_everything(0)
    model = create_model(args.acc_model, classes, image_size=28, grayscale=True)
    cfg = TrainConfig(model=args.acc_model, epochs=args.epochs, batch_size=128, device="cpu", num_threads=threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        fit_torch(model, (x_tr, y_tr), None, cfg, run_dir=Path(run_dir))
    train_s = time.perf_counter() - started
    calib = x_tr[np.random.default_rng(1).choice(len(x_tr), 256, replace=False)]
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8, info = export_pair(model, Path(tmp), calib, threads)
        acc = {k: round(float(np.mean(m.predict(x_te) == y_te)), 4)
               for k, m in (("torch", model), ("ort_fp32", fp32), ("ort_int8", int8))}
        speed = {b: {k: throughput(m, x_te[:64], b, args.iters, args.seconds)["images_per_s"]
                     for k, m in (("torch", model), ("ort_fp32", fp32), ("ort_int8", int8))} for b in (1, 16)}
    drop = round(100 * (acc["ort_fp32"] - acc["ort_int8"]), 2)
    return {"model": args.acc_model, "train_images": len(y_tr), "epochs": args.epochs, "train_s": round(train_s, 1),
            "test_images": len(y_te), "top1": acc, "int8_drop_points": drop, "images_per_s": speed, **info}


def main() -> None:
    args = parse_args()
    import torch

    from imgrec.models.onnx_backend import physical_cores

    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    report: dict[str, Any] = {"threads": threads, "load_average_start": [round(v, 2) for v in os.getloadavg()]}
    gflops = matmul_gflops(threads)
    report["matmul_fp32_gflops"] = round(gflops, 1)
    print(f"fp32 matmul: {gflops:.1f} GFLOP/s with {threads} thread(s)", flush=True)
    report["speed"] = speed_section(args, threads)
    if "resnet50" in report["speed"]:
        r50 = report["speed"]["resnet50"]["batches"].get(16, {}).get("ort_fp32", {}).get("images_per_s")
        t50 = report["speed"]["resnet50"]["batches"].get(16, {}).get("torch", {}).get("images_per_s")
        report["resnet50_reference"] = {"expected_images_per_s": round(0.5 * gflops / RESNET50_GFLOP, 2),
                                        "ort_fp32_images_per_s": r50, "torch_images_per_s": t50}
        print(f"ResNet-50 fp32 batch 16: ORT {r50} img/s, torch {t50} img/s; "
              f"0.5 x {gflops:.1f} / {RESNET50_GFLOP} = {0.5 * gflops / RESNET50_GFLOP:.2f} img/s", flush=True)
    if not args.skip_accuracy:
        report["accuracy"] = accuracy_section(args, threads)
    report["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(report, indent=2))
    print("machine:")
    print_machine()


if __name__ == "__main__":
    main()
