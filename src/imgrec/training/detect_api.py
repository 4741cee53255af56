"""``imgrec.train`` for detection: the same run directory, splits, checkpoints and report as a
classifier's run, with boxes. ``train()`` comes here when the data or the model is a detection one."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imgrec.config import DataConfig, TrainConfig
from imgrec.data import ImageDataset
from imgrec.errors import ConfigError, DatasetError
from imgrec.evaluation import evaluate_detection, write_detection_report
from imgrec.inference import Predictor
from imgrec.models import create_model, get_model_spec, read_meta, save_model
from imgrec.training.callbacks import Callback
from imgrec.training.selection import kept_weights
from imgrec.transforms.augment import create_augmenter

log = logging.getLogger(__name__)
VAL_OPTIONS: dict[str, Any] = {"conf": 0.001, "iou": 0.65, "max_det": 100}  # the usual mAP settings


def check_detection_pair(ds: ImageDataset, model_name: str) -> None:
    """A detector needs boxes, and boxes need a detector; say which is missing."""
    spec = get_model_spec(model_name)
    task = spec.task
    if "pretrained-only" in spec.tags:
        raise ConfigError(f"{model_name} is a pretrained detector imgrec cannot train. Use it as it is: `imgrec "
                          f"faces detect photos/ --detector {model_name}` (or `imgrec faces evaluate`).")  # fmt: skip
    if ds.task != "detect" and task == "detect":
        raise ConfigError(
            f"{model_name} is a detector, but {ds.name} is a {ds.task} dataset (no boxes). Give COCO JSON, "
            "YOLO labels or Pascal VOC XML (see `imgrec data check`)."
        )
    if ds.task == "detect" and task != "detect":
        raise ConfigError(
            f"{ds.name} is a detection dataset (boxes), but {model_name} is a {task} model. Pick a detector: "
            "`imgrec models --task detect`."
        )
    if not ds.targets or not any(len(t.boxes) for t in ds.targets):
        raise DatasetError(f"{ds.name} has no boxes to train on.")


def build_detector(cfg: TrainConfig, ds: ImageDataset) -> Any:
    """The detector of ``cfg`` for ``ds``'s classes (before any run folder exists)."""
    from imgrec.training.loop import seed_everything

    seed_everything(cfg.seed)
    args = {**cfg.model_args, "pretrained": cfg.pretrained, "weights": cfg.weights,
            "backbone_weights": cfg.backbone_weights}  # fmt: skip
    return create_model(cfg.model, ds.classes, image_size=cfg.image_size, **args)


def fit_and_evaluate(
    model: Any, parts: Any, cfg: TrainConfig, run_dir: Path, callbacks: Sequence[Callback], resume: bool,
    cycles: list[int],
) -> tuple[Any, dict[str, Any], float]:  # fmt: skip
    """Train, then evaluate the kept weights on val and test; returns (history, results, seconds)."""
    from imgrec.training.detect_loop import fit_detector

    monitor = cfg.monitor if cfg.monitor.startswith("val_map") else "val_map"
    cfg = dataclasses.replace(cfg, monitor=monitor)
    started = time.perf_counter()
    history = fit_detector(model, parts.train, parts.val, cfg, run_dir=run_dir, callbacks=callbacks, resume=resume,
                           augment=create_augmenter(cfg.augment), cycles=cycles, validate=_validate)  # fmt: skip
    seconds = time.perf_counter() - started
    predictor = Predictor(model, {"task": "detect"}, run_dir)
    results = {name: evaluate_detection(predictor, part, **VAL_OPTIONS)
               for name, part in (("val", parts.val), ("test", parts.test)) if len(part)}  # fmt: skip
    return history, results, seconds


def _validate(model: Any, val: ImageDataset) -> dict[str, float]:
    result = evaluate_detection(Predictor(model, {"task": "detect"}), val, **VAL_OPTIONS)
    return {"val_map": float(result.metrics["map"] or 0.0), "val_map50": float(result.metrics["map50"] or 0.0)}


def save_detection_run(
    model: Any, run_dir: Path, cfg: TrainConfig, ds: ImageDataset, parts: Any, results: dict[str, Any],
    history: Any, seconds: float,
) -> dict[str, Any]:  # fmt: skip
    """model.json (with the figures and the kept epoch), metrics.json and the report."""
    summary = {split: {k: r.metrics.get(k) for k in ("map", "map50", "map75")} for split, r in results.items()}
    monitor = cfg.monitor if cfg.monitor.startswith("val_map") else "val_map"
    meta = {
        "training": {**cfg.to_dict(), "monitor": monitor, "kept_weights": kept_weights(history.epochs, monitor)},
        "data": {"name": ds.name, "root": ds.root, "fingerprint": ds.fingerprint(), "task": "detect",
                 "splits": {k: len(getattr(parts, k)) for k in ("train", "val", "test")},
                 "instance_counts": ds.instance_counts(), "class_counts": ds.class_counts()},
        "metrics": summary,
        "timing": {"train_seconds": round(seconds, 3)},
    }
    save_model(model, run_dir, meta)
    meta = read_meta(run_dir)
    write_detection_report(run_dir, meta=meta, results=results, history=history.epochs, dataset=parts.test or parts.val,
                           predictor=Predictor(model, meta, run_dir))  # fmt: skip
    log.info("run written to %s", run_dir)
    return meta


def build(cfg: TrainConfig, ds: ImageDataset, resume: bool = False) -> Any:
    """:func:`build_detector` under the step name ``train()`` calls for every task module."""
    return build_detector(cfg, ds)


check_pair, save_run = check_detection_pair, save_detection_run  # the step names train() calls

__all__ = ["DataConfig", "build_detector", "check_detection_pair", "fit_and_evaluate", "save_detection_run"]
