"""``imgrec.train`` for semantic segmentation: the same run directory, splits, checkpoints and
report as the other tasks, with masks. ``train()`` comes here when the data or the model is a
``segment`` one; the steps have the names :mod:`imgrec.training.detect_api` gives them."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imgrec.config import TrainConfig
from imgrec.data import ImageDataset
from imgrec.data.mask_scan import scan_mask_classes
from imgrec.errors import ConfigError, DatasetError
from imgrec.evaluation import evaluate_segmentation, write_segmentation_report
from imgrec.inference import Predictor
from imgrec.models import create_model, get_model_spec, read_meta, save_model
from imgrec.training.callbacks import Callback
from imgrec.training.selection import kept_weights
from imgrec.transforms.augment import create_augmenter

log = logging.getLogger(__name__)
MONITORS = ("val_miou", "val_pixel_accuracy")


def check_pair(ds: ImageDataset, model_name: str) -> None:
    """A segmenter needs masks, and masks need a segmenter; say which is missing."""
    task = get_model_spec(model_name).task
    if ds.task != "segment" and task == "segment":
        raise ConfigError(
            f"{model_name} is a segmentation model, but {ds.name} is a {ds.task} dataset (no masks). Give a mask "
            "folder (images/ + masks/ + classes.txt), Pascal VOC segmentation, or COCO with --task segment."
        )
    if ds.task == "segment" and task != "segment":
        raise ConfigError(
            f"{ds.name} is a segmentation dataset (masks), but {model_name} is a {task} model. Pick a segmenter: "
            "`imgrec models --task segment`."
        )
    if len(ds.classes) < 2:
        raise DatasetError(f"{ds.name} has {len(ds.classes)} class; segmentation needs at least 2 (e.g. background).")


def build(cfg: TrainConfig, ds: ImageDataset, resume: bool = False) -> Any:
    """The segmenter of ``cfg`` for ``ds``'s classes (before any run folder exists)."""
    from imgrec.training.loop import seed_everything

    seed_everything(cfg.seed)
    args = dict(cfg.model_args)
    if not resume:  # a resumed run's weights come from its checkpoint: no download, no weights file
        args.update(pretrained=cfg.pretrained, weights=cfg.weights, backbone_weights=cfg.backbone_weights)
    return create_model(cfg.model, ds.classes, image_size=cfg.image_size, **args)


def _monitor(cfg: TrainConfig) -> Any:  # one of MONITORS (a TrainConfig.monitor literal)
    return cfg.monitor if cfg.monitor in MONITORS else "val_miou"


def fit_and_evaluate(
    model: Any, parts: Any, cfg: TrainConfig, run_dir: Path, callbacks: Sequence[Callback], resume: bool,
    cycles: list[int],
) -> tuple[Any, dict[str, Any], float]:  # fmt: skip
    """Train, then evaluate the kept weights on val and test; returns (history, results, seconds)."""
    from imgrec.training.epochs import split_figures
    from imgrec.training.segment_loop import fit_segmenter

    cfg = dataclasses.replace(cfg, monitor=_monitor(cfg))
    started = time.perf_counter()
    history = fit_segmenter(model, parts.train, parts.val, cfg, run_dir=run_dir, callbacks=callbacks, resume=resume,
                            augment=create_augmenter(cfg.augment), cycles=cycles, validate=_validate)  # fmt: skip
    seconds = time.perf_counter() - started
    predictor = Predictor(model, {"task": "segment"}, run_dir)
    # val's unreadable images were warned about by the first epoch's validation (still listed in metrics.json)
    results = split_figures(lambda part: evaluate_segmentation(predictor, part, warn=part is not parts.val), parts)
    return history, results, seconds


def _validate(model: Any, val: ImageDataset) -> tuple[dict[str, float], list[tuple[str, str]]]:
    """An epoch's figures and the unreadable items (the training run warns about them once)."""
    result = evaluate_segmentation(Predictor(model, {"task": "segment"}), val, boundary=False, warn=False)
    m = result.metrics
    figures = {"val_miou": float(m["miou"] or 0.0), "val_pixel_accuracy": float(m["pixel_accuracy"] or 0.0)}
    return figures, result.bad


def save_run(
    model: Any, run_dir: Path, cfg: TrainConfig, ds: ImageDataset, parts: Any, results: dict[str, Any],
    history: Any, seconds: float,
) -> dict[str, Any]:  # fmt: skip
    """model.json (with the figures and the kept epoch), metrics.json and the report."""
    scan_mask_classes(ds)  # a split from a manifest (a resumed run's, --splits) decoded none of them
    keys = ("miou", "pixel_accuracy", "mean_dice", "boundary_f1")
    summary = {split: {k: r.metrics.get(k) for k in keys} for split, r in results.items()}
    monitor = _monitor(cfg)
    meta = {
        "training": {**cfg.to_dict(), "monitor": monitor, "kept_weights": kept_weights(history.epochs, monitor)},
        "data": {"name": ds.name, "root": ds.root, "fingerprint": ds.fingerprint(), "task": "segment",
                 **parts.record(),  # the split sizes, and why val or test is not the size asked
                 "class_counts": ds.class_counts(), "ignore_index": ds.ignore_index},
        "metrics": summary,
        "timing": {"train_seconds": round(seconds, 3)},
    }  # fmt: skip
    save_model(model, run_dir, meta)
    meta = read_meta(run_dir)
    write_segmentation_report(run_dir, meta=meta, results=results, history=history.epochs,
                              dataset=parts.test or parts.val, predictor=Predictor(model, meta, run_dir))  # fmt: skip
    log.info("run written to %s", run_dir)
    return meta
