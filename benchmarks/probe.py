"""Small data, good results, offline: linear-probe on an imported MobileNetV2 vs from-scratch models.

The ants/bees photos (``../shared/data/hymenoptera``: 245 train, 153 val) are trained on
through ``imgrec.train`` exactly as ``imgrec train`` does, val/ being the split every figure is
measured on. Models, side by side in one run:

- ``linear-probe``: logistic regression on the 1280-d penultimate features of the ONNX-zoo
  MobileNetV2 int8 (``imgrec import``-ed first; the import is timed too);
- ``hog-svm``: the classical baseline;
- ``cnn-small`` and ``resnet18`` from scratch (no pretrained weights exist offline).

Wall time covers everything a user waits for: decoding, embedding, fitting, evaluating and
writing the run (not the interpreter start). Each model trains in its own process, so the peak
memory printed is that model's own. Goal (issue 7): linear-probe >= 0.90 val accuracy in under 2 minutes.

Usage:
    .venv/bin/python benchmarks/probe.py [--models linear-probe,hog-svm,cnn-small,resnet18] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, peak_rss_mb, print_machine

MODELS = ("linear-probe", "hog-svm", "cnn-small", "resnet18")
BACKBONE = SHARED_DATA / "models" / "imagenet-embeddings" / "mobilenetv2-12-int8.onnx"
LABELS = SHARED_DATA / "models" / "labels" / "imagenet_labels_1001.txt"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED_DATA / "hymenoptera"))
    p.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    p.add_argument("--backbone", default=str(BACKBONE), help="ONNX/TFLite classifier to import as the backbone")
    p.add_argument("--head", default="logistic", choices=("logistic", "svm"))
    p.add_argument("--cnn-epochs", type=int, default=30)
    p.add_argument("--resnet-epochs", type=int, default=15)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: one model in its own process (own peak RSS)
    p.add_argument("--backbone-run", help=argparse.SUPPRESS)
    return p.parse_args()


def config(name: str, args: argparse.Namespace, backbone: Path | None) -> Any:
    import imgrec

    if name == "linear-probe":
        return imgrec.TrainConfig(model=name, backbone=str(backbone), model_args={"head": args.head})
    if name == "cnn-small":
        return imgrec.TrainConfig(model=name, epochs=args.cnn_epochs, image_size=64, augment="standard",
                                  num_threads=args.threads)  # fmt: skip
    if name == "resnet18":
        return imgrec.TrainConfig(model=name, epochs=args.resnet_epochs, image_size=112, augment="standard",
                                  batch_size=32, num_threads=args.threads)  # fmt: skip
    return imgrec.TrainConfig(model=name)


def run_one(name: str, args: argparse.Namespace, work: Path, backbone: Path | None) -> dict[str, Any]:
    import imgrec

    start = time.perf_counter()
    run = imgrec.train(args.data, config(name, args, backbone), out=work / name)
    seconds = time.perf_counter() - start
    val = run.metrics["val"]
    return {"val_accuracy": round(val["accuracy"], 4), "val_macro_f1": round(val["macro_f1"], 4),
            "wall_s": round(seconds, 1), "peak_rss_mb": round(peak_rss_mb())}  # fmt: skip


def in_child(name: str, args: argparse.Namespace, work: Path, backbone: Path | None) -> dict[str, Any]:
    """Train one model in a fresh process, so its peak memory is its own."""
    import subprocess

    cmd = [sys.executable, __file__, "--child", name, "--data", args.data, "--head", args.head,
           "--cnn-epochs", str(args.cnn_epochs), "--resnet-epochs", str(args.resnet_epochs),
           "--backbone-run", str(backbone or ""), "--json", str(work / f"{name}.json")]  # fmt: skip
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    subprocess.run(cmd, check=True)
    return dict(json.loads((work / f"{name}.json").read_text()))


def main() -> None:
    args = parse_args()
    if args.child:
        work = Path(args.json).parent
        figures = run_one(args.child, args, work, Path(args.backbone_run) if args.backbone_run else None)
        Path(args.json).write_text(json.dumps(figures))
        return
    print_machine()
    from imgrec.models.importer import ImportOptions, import_model

    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        backbone = None
        if "linear-probe" in names:
            start = time.perf_counter()
            backbone = import_model(args.backbone, ImportOptions(classes=LABELS), work / "backbone")
            rows["import"] = {"wall_s": round(time.perf_counter() - start, 2)}
        for name in names:
            rows[name] = in_child(name, args, work, backbone)
            print(f"{name:14s} {json.dumps(rows[name])}", flush=True)
    print(f"\n{'model':14s} {'val acc':>8s} {'macro F1':>9s} {'wall s':>8s} {'peak MB':>8s}")
    for name, r in rows.items():
        if "val_accuracy" in r:
            figures = f"{r['val_accuracy']:8.4f} {r['val_macro_f1']:9.4f} {r['wall_s']:8.1f} {r['peak_rss_mb']:8d}"
            print(f"{name:14s} {figures}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
